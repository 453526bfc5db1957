import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChromaSnapshotBuilder } from './chroma/snapshot-builder.ts';
import { type Config, loadConfig } from './config/config.ts';
import { logger, recordMetrics } from './observability/observability.ts';
import { LeaseLock } from './protocol/lock.ts';
import { PointerStore } from './protocol/pointer.ts';
import { type Clock, type ItemStore, systemClock } from './protocol/ports.ts';
import type { PublishDeps } from './protocol/publish.ts';
import { type AwsContext, createAwsContext } from './storage/aws-clients.ts';
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
  return {
    config,
    aws,
    clock,
    items,
    objects,
    pointers: new PointerStore(items, clock),
    lock: new LeaseLock(items, {
      leaseSeconds: config.lockDurationSeconds,
      heartbeatSeconds: config.heartbeatIntervalSeconds,
      waitSeconds: config.lockWaitSeconds,
      clock,
      onHeartbeatFailure: ({ collection, owner, error, remainingMs }) => {
        logger.warn('lock heartbeat failed', {
          collection,
          owner,
          remainingMs,
          error: (error as Error).message,
        });
        recordMetrics({ HeartbeatFailures: 1 });
      },
    }),
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
    pointers: rt.pointers,
    lock: rt.lock,
    builder: rt.builder,
    snapshots: rt.snapshots,
    clock: rt.clock,
    config: rt.config,
    ...extra,
  };
}
