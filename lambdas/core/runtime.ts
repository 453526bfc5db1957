import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, loadConfig } from './config/config.ts';
import { LeaseLock } from './protocol/lock.ts';
import { PointerStore } from './protocol/pointer.ts';
import type { PublishDeps } from './protocol/publish.ts';
import { type AwsContext, createAwsContext } from './storage/aws-clients.ts';
import { ObjectStore } from './storage/object-store.ts';
import { SnapshotStore } from './storage/snapshot-store.ts';

/**
 * Everything a handler needs, wired once from the environment: the adapters over S3 and DynamoDB
 * and the validated configuration. Config is parsed first so a bad variable fails before any I/O.
 */
export interface Runtime {
  config: Config;
  aws: AwsContext;
  objects: ObjectStore;
  pointers: PointerStore;
  lock: LeaseLock;
  snapshots: SnapshotStore;
  workDir: string;
}

type Env = Record<string, string | undefined>;

export function createRuntime(env: Env = process.env): Runtime {
  const config = loadConfig(env);
  const aws = createAwsContext(env);
  const objects = new ObjectStore(aws.s3, aws.bucket);
  return {
    config,
    aws,
    objects,
    pointers: new PointerStore(aws.dynamo, aws.table),
    lock: new LeaseLock(aws.dynamo, aws.table, {
      leaseSeconds: config.lockDurationSeconds,
      heartbeatSeconds: config.heartbeatIntervalSeconds,
      waitSeconds: config.lockWaitSeconds,
    }),
    snapshots: new SnapshotStore(objects, env.SNAPSHOT_CACHE_DIR ?? join(tmpdir(), 'embedflow-cache')),
    workDir: env.EMBEDFLOW_WORK_DIR ?? join(tmpdir(), 'embedflow-work'),
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
    snapshots: rt.snapshots,
    config: rt.config,
    workDir: rt.workDir,
    ...extra,
  };
}
