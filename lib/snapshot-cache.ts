import type { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import { Construct } from 'constructs';

export interface EfsSnapshotCacheProps {
  removalPolicy: RemovalPolicy;
}

/**
 * Optional shared snapshot cache: an EFS access point that the publishing functions mount, so a
 * warm snapshot version survives between invocations and is shared across them. It needs a VPC;
 * isolated subnets with S3 and DynamoDB gateway endpoints are enough (no NAT, no internet).
 */
export class EfsSnapshotCache extends Construct {
  readonly mountPath = '/mnt/embedflow-cache';
  readonly vpc: ec2.Vpc;
  readonly subnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  readonly functionSecurityGroup: ec2.SecurityGroup;
  readonly accessPoint: efs.AccessPoint;

  constructor(scope: Construct, id: string, props: EfsSnapshotCacheProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    this.vpc.addFlowLog('FlowLog');

    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'embedflow functions that mount the snapshot cache',
      allowAllOutbound: false,
    });
    // Isolated subnets reach nothing but the VPC: HTTPS goes to S3 and DynamoDB through the gateway
    // endpoints; the NFS rule to the file system is added when a function mounts it.
    this.functionSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'S3 and DynamoDB gateway endpoints',
    );

    const fileSystem = new efs.FileSystem(this, 'FileSystem', {
      vpc: this.vpc,
      vpcSubnets: this.subnets,
      encrypted: true,
      throughputMode: efs.ThroughputMode.ELASTIC,
      lifecyclePolicy: efs.LifecyclePolicy.AFTER_14_DAYS,
      removalPolicy: props.removalPolicy,
    });
    this.accessPoint = fileSystem.addAccessPoint('AccessPoint', {
      path: '/embedflow-cache',
      createAcl: { ownerUid: '1001', ownerGid: '1001', permissions: '750' },
      posixUser: { uid: '1001', gid: '1001' },
    });
  }
}
