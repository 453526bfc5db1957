import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChromaSnapshotBuilder } from './chroma/snapshot-builder.ts';
import { type Config, loadConfig } from './config/config.ts';
import { logger, recordMetrics } from './observability/observability.ts';
import { AppliedRecords } from './protocol/applied.ts';
import { CommitLog } from './protocol/commit-log.ts';
import { BUILD_LEASE, type HeartbeatFailure, LeaseLock } from './protocol/lock.ts';
import { PointerStore } from './protocol/pointer.ts';
import { type Clock, type ItemStore, systemClock } from './protocol/ports.ts';
import type { PublishDeps } from './protocol/publish.ts';
import { type AwsContext, createAwsContext } from './storage/aws-clients.ts';
import { S3ChangeSetStore } from './storage/change-set-store.ts';
import { DynamoItemStore } from './storage/dynamo-item-store.ts';
import { ObjectStore } from './storage/object-store.ts';
import { SnapshotStore } from './storage/snapshot-store.ts';

/**
 * Everything a handler needs, wired once from the environment: the adapters over S3 and DynamoDB
 * and the validated configuration. Config is parsed first so a bad variable fails before any I/O.
 */
export interface Runtime {
  config: Config;
  aws: AwsContext;
  clock: Clock;
  items: ItemStore;
  objects: ObjectStore;
  pointers: PointerStore;
  lock: LeaseLock;
  buildLease: LeaseLock;
  log: CommitLog;
  applied: AppliedRecords;
  changeSets: S3ChangeSetStore;
  snapshots: SnapshotStore;
  builder: ChromaSnapshotBuilder;
  workDir: string;
}

type Env = Record<string, string | undefined>;

export function createRuntime(env: Env = process.env, clock: Clock = systemClock): Runtime {
  const config = loadConfig(env);
  const aws = createAwsContext(env);
  const objects = new ObjectStore(aws.s3, aws.bucket);
  const items = new DynamoItemStore(aws.dynamo, aws.table);
  const snapshots = new SnapshotStore(objects, env.SNAPSHOT_CACHE_DIR ?? join(tmpdir(), 'embedflow-cache'));
  const workDir = env.EMBEDFLOW_WORK_DIR ?? join(tmpdir(), 'embedflow-work');
  const lease = {
    leaseSeconds: config.lockDurationSeconds,
    heartbeatSeconds: config.heartbeatIntervalSeconds,
    waitSeconds: config.lockWaitSeconds,
    clock,
    onHeartbeatFailure: ({ collection, owner, error, remainingMs }: HeartbeatFailure) => {
      logger.warn('lock heartbeat failed', {
        collection,
        owner,
        remainingMs,
        error: (error as Error).message,
      });
      recordMetrics({ HeartbeatFailures: 1 });
    },
  };
  return {
    config,
    aws,
    clock,
    items,
    objects,
    pointers: new PointerStore(items, clock),
    lock: new LeaseLock(items, lease),
    buildLease: new LeaseLock(items, { ...lease, naming: BUILD_LEASE }),
    log: new CommitLog(items, clock, Math.max(config.runIdRetentionDays, config.messageIdRetentionDays) + 1),
    applied: new AppliedRecords(items, {
      runDays: config.runIdRetentionDays,
      messageDays: config.messageIdRetentionDays,
    }),
    changeSets: new S3ChangeSetStore(objects),
    snapshots,
    builder: new ChromaSnapshotBuilder(snapshots, workDir),
    workDir,
  };
}

let cached: Runtime | undefined;

/** One runtime per Lambda container (and per local process). */
export function runtime(): Runtime {
  cached ??= createRuntime();
  return cached;
}

/** Forgets the cached runtime so the next call re-reads the environment (tests, the local runner). */
export function resetRuntime(): void {
  cached = undefined;
}

export function publishDeps(rt: Runtime, extra: Partial<PublishDeps> = {}): PublishDeps {
  return {
    items: rt.items,
    pointers: rt.pointers,
    lock: rt.lock,
    buildLease: rt.buildLease,
    log: rt.log,
    applied: rt.applied,
    changeSets: rt.changeSets,
    builder: rt.builder,
    snapshots: rt.snapshots,
    clock: rt.clock,
    config: rt.config,
    onRejected: (collection, outcome) => {
      logger.warn('log entry did not apply (whole or in part)', { collection, ...outcome });
      recordMetrics({ MessagesRejected: outcome.failedMessages?.length ?? 1 });
    },
    ...extra,
  };
}
