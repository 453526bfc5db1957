import { AppliedRecords } from '../../../lambdas/core/protocol/applied.ts';
import { CommitLog } from '../../../lambdas/core/protocol/commit-log.ts';
import {
  BUILD_LEASE,
  type HeldLock,
  LeaseLock,
  type LockOptions,
} from '../../../lambdas/core/protocol/lock.ts';
import { PointerStore } from '../../../lambdas/core/protocol/pointer.ts';
import type { Clock, ItemStore } from '../../../lambdas/core/protocol/ports.ts';
import type { PublishDeps } from '../../../lambdas/core/protocol/publish.ts';
import { FastClock } from './clocks.ts';
import { MemoryItemStore } from './memory-item-store.ts';
import { MemoryChangeSets, MemorySnapshotBuilder, MemorySnapshots } from './memory-snapshots.ts';

/**
 * The publish protocol wired to in-memory adapters: one shared store and snapshot objects
 * (the "cloud"), and per-publisher deps that may each have their own clock (skew) and lock options.
 */
export interface MemoryWorld {
  items: MemoryItemStore;
  snapshots: MemorySnapshots;
  builder: MemorySnapshotBuilder;
  changeSets: MemoryChangeSets;
  clock: Clock;
  deps(overrides?: DepsOverrides): PublishDeps;
}

export interface DepsOverrides extends Partial<Omit<PublishDeps, 'config' | 'lock'>> {
  clock?: Clock;
  /** This publisher's connection to the table (its own faults: see MemoryItemStore.connection). */
  items?: ItemStore;
  /** A connection for the lock alone (heartbeats failing while pointer reads work). */
  lockItems?: ItemStore;
  lock?: Partial<LockOptions>;
  config?: Partial<PublishDeps['config']>;
}

export const TEST_CONFIG: PublishDeps['config'] = {
  maxCasRetries: 3,
  snapshotRetention: 5,
  snapshotRetentionMinutes: 60,
  lockStrategy: 'two-phase',
  ioConcurrency: 4,
  publishWaitSeconds: 3600,
  buildBudgetSeconds: 3600,
};

export function memoryWorld(options: { random?: () => number; clock?: Clock } = {}): MemoryWorld {
  const random = options.random ?? Math.random;
  const clock = options.clock ?? new FastClock();
  const items = new MemoryItemStore(() => 'none', random);
  const snapshots = new MemorySnapshots(random);
  const builder = new MemorySnapshotBuilder(snapshots, random);
  const changeSets = new MemoryChangeSets(random, () => clock.now());
  return {
    items,
    snapshots,
    builder,
    changeSets,
    clock,
    deps({
      clock: own = clock,
      items: connection = items,
      lockItems = connection,
      lock = {},
      config = {},
      ...rest
    } = {}) {
      const lease = { leaseSeconds: 60, heartbeatSeconds: 15, waitSeconds: 3600, clock: own, ...lock };
      return {
        items: connection,
        pointers: new PointerStore(connection, own),
        lock: new LeaseLock(lockItems, lease),
        buildLease: new LeaseLock(lockItems, { ...lease, naming: BUILD_LEASE }),
        log: new CommitLog(connection, own, 15),
        applied: new AppliedRecords(connection, { runDays: 14, messageDays: 4 }),
        changeSets,
        builder,
        snapshots,
        clock: own,
        config: { ...TEST_CONFIG, ...config },
        ...rest,
      };
    },
  };
}

/** The ids in a collection's live snapshot, sorted. */
export async function liveIds(world: MemoryWorld, collection: string): Promise<string[]> {
  const { snapshotKey } = await world.deps().pointers.read(collection);
  return [...world.snapshots.read(snapshotKey!).keys()].sort();
}

/** A lease that never lapses: for driving a build directly, without a lock in the way. */
export function heldForever(collection: string): HeldLock {
  return {
    collection,
    owner: 'test',
    fence: 0,
    acquiredAt: 0,
    acquireMs: 0,
    collisions: 0,
    heartbeatFailures: 0,
    valid: () => true,
    assertHeld: () => undefined,
    release: async () => 0,
  };
}
