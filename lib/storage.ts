import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BUCKET_PREFIXES } from './function-specs.ts';

export interface StorageProps {
  /** Days before a run's temporary objects under runs/ expire if Cleanup never ran. */
  runsExpirationDays: number;
  /** Days a deleted or overwritten object version is kept (versioning is on for recovery). */
  noncurrentVersionDays: number;
  /** RETAIN by default; DESTROY removes the buckets only once they are empty (no auto-delete Lambda). */
  removalPolicy: RemovalPolicy;
}

/**
 * The bucket (input/, runs/, snapshots/) and the table holding pointer and lock items. Snapshots
 * are never expired by lifecycle: the publish protocol keeps the last SNAPSHOT_RETENTION versions
 * and the pointer must never name a deleted key.
 */
export class Storage extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(90) }],
      removalPolicy: props.removalPolicy,
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'embedflow-bucket/',
      lifecycleRules: [
        {
          id: 'expire-run-temporaries',
          prefix: BUCKET_PREFIXES.runs,
          expiration: Duration.days(props.runsExpirationDays),
        },
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
          expiredObjectDeleteMarker: true,
        },
      ],
      removalPolicy: props.removalPolicy,
    });

    // Set on the CloudFormation resource: `eventBridgeEnabled` would add a notifications custom-resource Lambda.
    (this.bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'ttl',
      removalPolicy: props.removalPolicy,
    });
  }
}
