import type { Config } from '../config/config.ts';
import { CasConflictError, LeaseLostError, StorageError } from '../errors.ts';
import type { HeldLock, LeaseLock } from './lock.ts';
import { nextPointer, type Pointer, type PointerStore, recordedPointer } from './pointer.ts';
import type { BuiltSnapshot, Change, Clock, SnapshotBuilder, SnapshotObjects } from './ports.ts';
import { isGarbage } from './retention.ts';

/**
 * The publish protocol (docs/architecture.md, "The publish protocol"):
 *   A  lock: read pointer v0; release
 *   B  no lock: build the new snapshot from v0 and upload it to a new immutable key
 *   C  lock: re-read; unchanged → conditional swap v0→v1; moved → release and rebase (redo B)
 *   D  no lock: delete what no pointer can name any more (retention: versions and minutes)
 * The conditional swap is the fence; the lease only avoids wasted work. Every outcome is decided
 * by the stored pointer (see conditional-write.ts), and nothing is deleted that the pointer names
 * or retains.
 * Starvation guard (FINAL_REBASE_LOCKED, on by default): the last of MAX_CAS_RETRIES rebases runs
 * A-C under one lock, so a publish whose build is slower than the gap between others' commits
 * still lands. `single-phase` holds one lock across A-C: the old design, the benchmark baseline.
 */
export type FaultPoint = 'after-upload' | 'holding-lock' | 'after-swap';
export type PublishPhase = 'read-pointer' | 'build' | 'commit' | 'rebase' | 'cleanup';

export interface PublishDeps {
  pointers: PointerStore;
  lock: LeaseLock;
  builder: SnapshotBuilder;
  snapshots: SnapshotObjects;
  clock: Clock;
  config: Pick<
    Config,
    'maxCasRetries' | 'snapshotRetention' | 'snapshotRetentionMinutes' | 'lockStrategy' | 'finalRebaseLocked'
  >;
  /** Test-only crash points between phases. */
  faults?: (point: FaultPoint) => Promise<void> | void;
  onPhase?: (phase: PublishPhase, attempt: number) => void;
}

export interface PublishResult {
  collection: string;
  runId: string | null;
  /** `no-change`: the change changed nothing, so no version was published (its ids were recorded). */
  status: 'published' | 'already-applied' | 'no-change';
  strategy: Config['lockStrategy'];
  previousVersion: number;
  snapshotVersion: number;
  snapshotKey: string | null;
  recordCount: number;
  dimension: number | null;
  lockAcquireMs: number;
  lockHoldMs: number;
  /** the longest single hold: what other writers may have waited behind. */
  maxLockHoldMs: number;
  lockCollisions: number;
  casRetries: number;
  /** The publish landed on its final rebase, run under the lock (the starvation guard). */
  lockedRebase: boolean;
  publishMs: number;
  missingIds: string[];
  appliedMessageIds: string[];
  failedMessages: { messageId: string; reason: string }[];
  deletedObjects: number;
}

class LockAccounting {
  acquireMs = 0;
  holdMs = 0;
  maxHoldMs = 0;
  collisions = 0;

  constructor(private readonly lock: LeaseLock) {}

  /** Runs `body` under the collection lock and adds the wait and hold times to the totals. */
  async with<T>(collection: string, body: (held: HeldLock) => Promise<T>): Promise<T> {
    const held = await this.lock.acquire(collection);
    this.acquireMs += held.acquireMs;
    this.collisions += held.collisions;
    try {
      return await body(held);
    } finally {
      const heldMs = await held.release();
      this.holdMs += heldMs;
      this.maxHoldMs = Math.max(this.maxHoldMs, heldMs);
    }
  }
}

type Outcome = 'published' | 'no-change' | 'already-applied' | 'moved' | 'lease-lost';
interface Attempt {
  base: Pointer;
  built?: BuiltSnapshot;
  outcome: Exclude<Outcome, 'lease-lost'>;
  /** The stored pointer after the attempt: ours when published, the newer head otherwise. */
  head: Pointer;
}

/** How often a built snapshot is committed again under a fresh lease when the lease ran out before the swap. */
const COMMITS_PER_BUILD = 3;

export async function publish(deps: PublishDeps, collection: string, change: Change): Promise<PublishResult> {
  const started = performance.now();
  const locks = new LockAccounting(deps.lock);
  const singlePhase = deps.config.lockStrategy === 'single-phase';
  const result = (attempt: Attempt, casRetries: number, extra: Partial<PublishResult>): PublishResult => ({
    collection,
    runId: change.runId ?? null,
    status: attempt.outcome === 'moved' ? 'already-applied' : attempt.outcome,
    strategy: deps.config.lockStrategy,
    previousVersion: attempt.outcome === 'published' ? attempt.base.version : attempt.head.version,
    snapshotVersion: attempt.head.version,
    snapshotKey: attempt.head.snapshotKey,
    recordCount: attempt.head.recordCount,
    dimension: attempt.head.dimension,
    lockAcquireMs: round(locks.acquireMs),
    lockHoldMs: round(locks.holdMs),
    maxLockHoldMs: round(locks.maxHoldMs),
    lockCollisions: locks.collisions,
    casRetries,
    lockedRebase: false,
    publishMs: round(performance.now() - started),
    missingIds: attempt.built?.stats.missingIds ?? [],
    appliedMessageIds:
      attempt.outcome === 'already-applied' ? [] : (attempt.built?.stats.appliedMessageIds ?? []),
    failedMessages: attempt.outcome === 'already-applied' ? [] : (attempt.built?.stats.failedMessages ?? []),
    deletedObjects: 0,
    ...extra,
  });

  for (let attempt = 0; ; attempt++) {
    deps.onPhase?.(attempt === 0 ? 'read-pointer' : 'rebase', attempt);
    const lockedRebase =
      !singlePhase && deps.config.finalRebaseLocked && attempt > 0 && attempt >= deps.config.maxCasRetries;
    const tried =
      singlePhase || lockedRebase
        ? await lockedAttempt(deps, locks, collection, change, attempt)
        : await twoPhaseAttempt(deps, locks, collection, change, attempt);

    if (tried.outcome === 'published' || tried.outcome === 'no-change') {
      if (tried.outcome === 'published') await deps.faults?.('after-swap');
      deps.onPhase?.('cleanup', attempt);
      const deletedObjects = tried.outcome === 'published' ? await cleanup(deps, tried.head) : 0;
      return result(tried, attempt, { lockedRebase, deletedObjects });
    }
    await discard(deps, tried.built, tried.head);
    if (tried.outcome === 'already-applied') return result(tried, attempt, {});
    if (lockedRebase && !singlePhase) {
      throw new LeaseLostError(
        `"${collection}": the locked rebase (attempt ${attempt + 1}) lost its lease during the build and the pointer moved to version ${tried.head.version}; retry the publish`,
      );
    }
    if (attempt >= deps.config.maxCasRetries) {
      throw new CasConflictError(
        `pointer of "${collection}" moved on every attempt (${attempt + 1} attempts, now at version ${tried.head.version}); retry the publish`,
      );
    }
  }
}

/** Single-phase, and the starvation guard's last rebase: read, build and swap under one lock. */
async function lockedAttempt(
  deps: PublishDeps,
  locks: LockAccounting,
  collection: string,
  change: Change,
  attempt: number,
): Promise<Attempt> {
  const tried = await locks.with(collection, async (held) => {
    const base = await deps.pointers.read(collection);
    if (isApplied(base, change)) return { base, outcome: 'already-applied' as const, head: base };
    const built = await build(deps, base, change, attempt);
    return { base, built, ...(await commit(deps, held, base, built, change)) };
  });
  if (tried.outcome !== 'lease-lost') return tried as Attempt;
  // The build outlived the lease: commit it under a fresh one if the pointer has not moved.
  return commitWithLease(deps, locks, tried.base, tried.built!, change);
}

async function twoPhaseAttempt(
  deps: PublishDeps,
  locks: LockAccounting,
  collection: string,
  change: Change,
  attempt: number,
): Promise<Attempt> {
  const base = await locks.with(collection, () => deps.pointers.read(collection));
  if (isApplied(base, change)) return { base, outcome: 'already-applied', head: base };
  let built: BuiltSnapshot;
  try {
    built = await build(deps, base, change, attempt);
  } catch (error) {
    // The base snapshot may have been retired by newer publishes while we read it: that is a move.
    if (!(error instanceof StorageError)) throw error;
    const head = await deps.pointers.read(collection);
    if (head.revision === base.revision) throw error;
    return { base, outcome: 'moved', head };
  }
  await deps.faults?.('after-upload');
  return commitWithLease(deps, locks, base, built, change);
}

/** Phase C for an already built snapshot; a lease that ran out before the swap costs a new lock, not a rebuild. */
async function commitWithLease(
  deps: PublishDeps,
  locks: LockAccounting,
  base: Pointer,
  built: BuiltSnapshot,
  change: Change,
): Promise<Attempt> {
  for (let tries = 1; ; tries++) {
    const done = await locks.with(base.collection, async (held) => ({
      held: { fence: held.fence, failures: held.heartbeatFailures },
      ...(await commit(deps, held, base, built, change)),
    }));
    if (done.outcome !== 'lease-lost') return { base, built, outcome: done.outcome, head: done.head! };
    if (tries >= COMMITS_PER_BUILD) {
      throw new LeaseLostError(
        `"${base.collection}": the lease ran out before the swap ${tries} times in a row (fence ${done.held.fence}, ${done.held.failures} failed heartbeats); is DynamoDB throttling?`,
      );
    }
  }
}

function build(deps: PublishDeps, base: Pointer, change: Change, attempt: number): Promise<BuiltSnapshot> {
  deps.onPhase?.('build', attempt);
  return deps.builder.build(base, change);
}

/** Phase C, under the lock: a re-read and one conditional write, decided by what is stored. */
async function commit(
  deps: PublishDeps,
  held: HeldLock,
  base: Pointer,
  built: BuiltSnapshot,
  change: Change,
): Promise<{ outcome: Outcome; head?: Pointer }> {
  deps.onPhase?.('commit', 0);
  if (!held.valid()) return { outcome: 'lease-lost' };
  const head = await deps.pointers.read(base.collection);
  if (isApplied(head, change)) return { outcome: 'already-applied', head };
  if (head.revision !== base.revision) return { outcome: 'moved', head };
  // Between the re-read and the write: where a paused holder whose lease expired would sit.
  await deps.faults?.('holding-lock');
  if (!held.valid()) return { outcome: 'lease-lost' };
  const messageIds = built.stats.appliedMessageIds ?? [];
  const runId = change.runId ?? null;
  const retention = {
    versions: deps.config.snapshotRetention,
    minutes: deps.config.snapshotRetentionMinutes,
  };
  const now = new Date(deps.clock.now());
  let next: Pointer;
  if (built.key) {
    next = nextPointer(
      base,
      { key: built.key, recordCount: built.recordCount, dimension: built.dimension, runId },
      retention,
      messageIds,
      now,
    );
  } else if (runId || messageIds.length > 0) {
    // Nothing changed, but the run or the messages are done: record them so they are never applied later.
    next = recordedPointer(base, runId, messageIds, now);
  } else {
    return { outcome: 'no-change', head };
  }
  const swap = await deps.pointers.swap(base, next);
  if (swap.swapped) return { outcome: built.key ? 'published' : 'no-change', head: next };
  return { outcome: isApplied(swap.head, change) ? 'already-applied' : 'moved', head: swap.head };
}

/** A run already in the pointer, or a stream change whose every message is applied already. */
function isApplied(pointer: Pointer, change: Change): boolean {
  if (change.runId !== undefined) return pointer.recentRunIds.includes(change.runId);
  if (!change.messageIds || change.messageIds.length === 0) return false;
  const applied = new Set(pointer.recentMessageIds);
  return change.messageIds.every((id) => applied.has(id));
}

/** An upload that was not published goes at once if no pointer can name it; otherwise phase D takes it later. */
async function discard(deps: PublishDeps, built: BuiltSnapshot | undefined, head: Pointer): Promise<void> {
  if (!built?.key) return;
  if (isGarbage(built.key, head, deps.clock.now(), deps.config.snapshotRetentionMinutes)) {
    await deps.snapshots.deleteKeys([built.key]);
  }
}

/** Phase D: deletes every snapshot object that is garbage for the (fresh) pointer; see retention.ts. */
export async function cleanup(
  deps: Pick<PublishDeps, 'snapshots' | 'clock' | 'config'>,
  pointer: Pointer,
): Promise<number> {
  const keys = await deps.snapshots.listKeys(pointer.collection);
  const now = deps.clock.now();
  const garbage = keys.filter((key) => isGarbage(key, pointer, now, deps.config.snapshotRetentionMinutes));
  await deps.snapshots.deleteKeys(garbage);
  const dropped = new Set(garbage);
  await deps.snapshots.pruneCache(
    pointer.collection,
    keys.filter((key) => !dropped.has(key)),
  );
  return garbage.length;
}

const round = (ms: number) => Math.round(ms * 100) / 100;
