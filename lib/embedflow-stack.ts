import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { DEFINITION_PATH } from '../local/package-paths.ts';
import { Alarms, METRICS_NAMESPACE, SERVICE_NAME } from './alarms.ts';
import { CompactionQueue } from './compaction-queue.ts';
import type { FunctionId } from './function-specs.ts';
import { resolveSettings, type Settings } from './settings.ts';
import { EfsSnapshotCache } from './snapshot-cache.ts';
import { Storage } from './storage.ts';
import { Triggers } from './triggers.ts';
import { WorkflowFunctions } from './workflow-functions.ts';
import { WorkflowStateMachine } from './workflow-state-machine.ts';

export { DEFINITION_PATH };

export interface EmbedflowStackProps extends StackProps {
  /** Handler tunables (README, Configuration); unset ones come from CDK context, then the defaults. */
  settings?: Settings;
  /** Run the chunk Map as a Distributed Map (child executions) for very large runs. */
  distributedChunkMap?: boolean;
  /** Mount an EFS access point as the publishers' snapshot cache (adds a VPC). */
  efsCache?: boolean;
  /** A schedule expression for recurring runs, e.g. `rate(1 hour)`; needs `scheduledInput`. */
  schedule?: string;
  scheduledInput?: Record<string, unknown>;
  /** False skips esbuild and npm (template tests): the functions get placeholder code. */
  bundle?: boolean;
  definitionPath?: string;
  memorySizes?: Partial<Record<FunctionId, number>>;
  /** Days before orphaned objects under runs/ expire (default 7). */
  runsExpirationDays?: number;
  /** LockHoldMs p99 alarm threshold (default 1000 ms). */
  lockHoldP99ThresholdMs?: number;
  alarmTopicArn?: string;
  /** RETAIN (default) keeps the bucket, table and logs when the stack is deleted. */
  removalPolicy?: RemovalPolicy;
  logRetention?: logs.RetentionDays;
}

/** Stack props from CDK context (`cdk deploy -c distributedChunkMap=true -c schedule='rate(1 hour)'`). */
export function propsFromContext(scope: Construct): EmbedflowStackProps {
  const context = (key: string): unknown => scope.node.tryGetContext(key);
  const flag = (key: string) => {
    const value = context(key);
    return value === undefined ? undefined : value === true || value === 'true';
  };
  const text = (key: string) => {
    const value = context(key);
    return value === undefined ? undefined : String(value);
  };
  const scheduledInput = context('scheduledInput');
  return {
    distributedChunkMap: flag('distributedChunkMap'),
    efsCache: flag('efsCache'),
    schedule: text('schedule'),
    scheduledInput:
      typeof scheduledInput === 'string'
        ? (JSON.parse(scheduledInput) as Record<string, unknown>)
        : (scheduledInput as Record<string, unknown> | undefined),
    alarmTopicArn: text('alarmTopicArn'),
    removalPolicy: text('removalPolicy') === 'destroy' ? RemovalPolicy.DESTROY : undefined,
  };
}

/** Everything `cdk deploy` creates: storage, functions, the state machine, triggers, stream, alarms. */
export class EmbedflowStack extends Stack {
  readonly storage: Storage;
  readonly functions: WorkflowFunctions;
  readonly workflow: WorkflowStateMachine;
  readonly compaction: CompactionQueue;
  readonly triggers: Triggers;
  readonly alarms: Alarms;
  readonly snapshotCache?: EfsSnapshotCache;

  constructor(scope: Construct, id: string, props: EmbedflowStackProps = {}) {
    super(scope, id, props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const settings = resolveSettings(this, props.settings);

    this.storage = new Storage(this, 'Storage', {
      runsExpirationDays: props.runsExpirationDays ?? 7,
      noncurrentVersionDays: 30,
      removalPolicy,
    });
    if (props.efsCache) this.snapshotCache = new EfsSnapshotCache(this, 'SnapshotCache', { removalPolicy });

    this.functions = new WorkflowFunctions(this, 'Functions', {
      bucket: this.storage.bucket,
      table: this.storage.table,
      environment: {
        ...settings,
        BUCKET_NAME: this.storage.bucket.bucketName,
        TABLE_NAME: this.storage.table.tableName,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      },
      bundle: props.bundle ?? true,
      memorySizes: props.memorySizes,
      snapshotCache: this.snapshotCache,
      logRetention,
      removalPolicy,
    });

    this.workflow = new WorkflowStateMachine(this, 'Workflow', {
      definitionPath: props.definitionPath ?? DEFINITION_PATH,
      substitutions: this.functions.substitutions(),
      invokedFunctions: this.functions.workflowFunctions(),
      distributedChunkMap: props.distributedChunkMap ?? false,
      mapMaxConcurrency: Number(settings.MAP_MAX_CONCURRENCY),
      logRetention,
      removalPolicy,
    });

    this.compaction = new CompactionQueue(this, 'Compaction', {
      consumer: this.functions.byId.CompactionStream,
      maxReceiveCount: 5,
      batchSize: 100,
      maxBatchingWindow: Duration.seconds(20),
    });

    const starter = this.functions.byId.StartRun;
    starter.addEnvironment('STATE_MACHINE_ARN', this.workflow.stateMachine.stateMachineArn);
    this.workflow.grantRunStarts(starter);
    this.triggers = new Triggers(this, 'Triggers', {
      bucket: this.storage.bucket,
      starter,
      schedule: props.schedule,
      scheduledInput: props.scheduledInput,
    });

    this.alarms = new Alarms(this, 'Alarms', {
      stateMachine: this.workflow.stateMachine,
      deadLetterQueues: {
        Compaction: this.compaction.deadLetterQueue,
        Trigger: this.triggers.deadLetterQueue,
      },
      lockHoldP99ThresholdMs: props.lockHoldP99ThresholdMs ?? 1000,
      casConflictPeriods: 3,
      alarmTopicArn: props.alarmTopicArn,
    });

    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn });
    new CfnOutput(this, 'BucketName', { value: this.storage.bucket.bucketName });
    new CfnOutput(this, 'TableName', { value: this.storage.table.tableName });
    new CfnOutput(this, 'CompactionQueueUrl', { value: this.compaction.queue.queueUrl });
  }
}
