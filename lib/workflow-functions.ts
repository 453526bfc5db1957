import { join } from 'node:path';
import { Duration, type RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { PACKAGE_ROOT } from '../local/package-paths.ts';
import { CHROMA_PACKAGES, prepareChromaRuntime } from './chroma-runtime.ts';
import { FUNCTION_SPECS, type FunctionId, type FunctionSpec } from './function-specs.ts';
import { accessStatements, acknowledgePrefixWildcards } from './grants.ts';
import type { EfsSnapshotCache } from './snapshot-cache.ts';

export const PROJECT_ROOT = PACKAGE_ROOT;
/** The Node the tests run on (the `node` devDependency, `engines`): production and tests agree. */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;
/** esbuild's name for the same Node: `nodejs24.x` → `node24`. */
const BUNDLE_TARGET = LAMBDA_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, 'node$1');
export const DEFAULT_SNAPSHOT_CACHE_DIR = '/tmp/embedflow-cache';

/** ESM output still meets CommonJS dependencies that call `require`: give them one. */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __embedflowCreateRequire } from 'node:module'; const require = __embedflowCreateRequire(import.meta.url);";

/** Deployed only by mistake: a stack synthesised for template tests has no real code. */
const UNBUNDLED_CODE =
  "exports.handler = async () => { throw new Error('embedflow was synthesised without bundling: redeploy with bundling'); };";

export interface WorkflowFunctionsProps {
  bucket: s3.Bucket;
  table: dynamodb.Table;
  /** Settings and names every handler receives. */
  environment: Record<string, string>;
  /** False synthesises placeholder code: template tests need neither esbuild nor npm. */
  bundle: boolean;
  memorySizes?: Partial<Record<FunctionId, number>>;
  snapshotCache?: EfsSnapshotCache;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
}

/** Every Lambda of the workflow and the stream consumer, built from FUNCTION_SPECS. */
export class WorkflowFunctions extends Construct {
  readonly byId = {} as Record<FunctionId, lambda.Function>;
  private chromaRuntimeDir?: string;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: WorkflowFunctionsProps,
  ) {
    super(scope, id);
    for (const spec of FUNCTION_SPECS) this.byId[spec.id] = this.createFunction(spec);
  }

  /** Placeholder → function ARN, for DefinitionSubstitutions. */
  substitutions(): Record<string, string> {
    const entries = FUNCTION_SPECS.flatMap((spec: FunctionSpec) =>
      spec.placeholder ? [[spec.placeholder, this.byId[spec.id as FunctionId].functionArn]] : [],
    );
    return Object.fromEntries(entries);
  }

  /** The functions the state machine invokes (the stream consumer is not one of them). */
  workflowFunctions(): lambda.Function[] {
    return FUNCTION_SPECS.filter((spec: FunctionSpec) => spec.placeholder).map((spec) => this.byId[spec.id]);
  }

  private createFunction(spec: FunctionSpec): lambda.Function {
    const cache = spec.usesSnapshotCache ? this.props.snapshotCache : undefined;
    const logGroup = new logs.LogGroup(this, `${spec.id}Logs`, {
      retention: this.props.logRetention,
      removalPolicy: this.props.removalPolicy,
    });
    const role = this.createRole(spec, logGroup, cache !== undefined);
    const common: lambda.FunctionOptions = {
      description: spec.description,
      architecture: lambda.Architecture.X86_64,
      memorySize: this.props.memorySizes?.[spec.id as FunctionId] ?? spec.memoryMb,
      timeout: Duration.seconds(spec.timeoutSeconds),
      ephemeralStorageSize: spec.ephemeralStorageMb ? Size.mebibytes(spec.ephemeralStorageMb) : undefined,
      role,
      logGroup,
      environment: {
        ...this.props.environment,
        SNAPSHOT_CACHE_DIR: cache ? cache.mountPath : DEFAULT_SNAPSHOT_CACHE_DIR,
        ...(this.props.bundle && { NODE_OPTIONS: '--enable-source-maps' }),
      },
      ...(cache && {
        vpc: cache.vpc,
        vpcSubnets: cache.subnets,
        securityGroups: [cache.functionSecurityGroup],
        filesystem: lambda.FileSystem.fromEfsAccessPoint(cache.accessPoint, cache.mountPath),
      }),
    };
    if (!this.props.bundle) {
      return new lambda.Function(this, spec.id, {
        ...common,
        runtime: LAMBDA_RUNTIME,
        code: lambda.Code.fromInline(UNBUNDLED_CODE),
        handler: 'index.handler',
      });
    }
    return new NodejsFunction(this, spec.id, {
      ...common,
      runtime: LAMBDA_RUNTIME,
      entry: join(PROJECT_ROOT, 'lambdas', 'handlers', spec.handlerFile),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      bundling: {
        format: OutputFormat.ESM,
        target: BUNDLE_TARGET,
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        sourceMap: true,
        // The SDK is bundled, not taken from the runtime: the version tested locally is the one deployed.
        externalModules: spec.runsChroma ? [...CHROMA_PACKAGES] : [],
        // apache-arrow declares `sideEffects: false` yet registers its Node stream adapters as a side
        // effect of its entry point: honouring the flag drops them ("toNodeStream not available").
        esbuildArgs: { '--ignore-annotations': true },
        logLevel: LogLevel.WARNING,
        forceDockerBundling: false,
        ...(spec.runsChroma && {
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (_inputDir: string, outputDir: string) => [
              `cp -R "${this.chromaRuntime()}/node_modules" "${outputDir}/node_modules"`,
            ],
          },
        }),
      },
    });
  }

  /** A role per function: its own log group, its row of FUNCTION_SPECS, and a VPC's needs if it mounts EFS. */
  private createRole(spec: FunctionSpec, logGroup: logs.ILogGroup, inVpc: boolean): iam.Role {
    const role = new iam.Role(this, `${spec.id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `embedflow ${spec.id}: ${spec.description}`,
    });
    logGroup.grantWrite(role);
    for (const statement of accessStatements(spec.access, this.props.bucket, this.props.table)) {
      role.addToPrincipalPolicy(statement);
    }
    acknowledgePrefixWildcards(role, spec.access, this.props.bucket, spec.id);
    if (inVpc) {
      role.addManagedPolicy(
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'),
      );
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          'A function in a VPC must create and delete its network interfaces; this AWS policy is the documented minimum for that.',
      });
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          "CDK's Lambda EFS integration grants elasticfilesystem:ClientMount on * with a condition naming this stack's access point.",
      });
    }
    return role;
  }

  /** Installed lazily and only when this stack is really bundled (not for `cdk ls` or skipped stacks). */
  private chromaRuntime(): string {
    if (!Stack.of(this).bundlingRequired) return '/nonexistent-chroma-runtime';
    this.chromaRuntimeDir ??= prepareChromaRuntime(
      PROJECT_ROOT,
      join(PROJECT_ROOT, 'node_modules', '.cache', 'embedflow'),
    );
    return this.chromaRuntimeDir;
  }
}
