import { type BuiltSnapshot, buildSnapshot, type Change } from '../chroma/snapshot-builder.ts';
import type { Config } from '../config/config.ts';
import { CasConflictError, LeaseLostError, StorageError } from '../errors.ts';
import { parseSnapshotKey, type SnapshotStore } from '../storage/snapshot-store.ts';
import type { HeldLock, LeaseLock } from './lock.ts';
import { appliedMessageIds, nextPointer, type Pointer, type PointerStore } from './pointer.ts';

/**
 * The publish protocol (DESIGN.md section 4):
 *   A  lock: read pointer v0; release
 *   B  no lock: build the new snapshot from v0 and upload it to a new immutable key
 *   C  lock: re-read; unchanged → conditional swap v0→v1; moved → release and rebase (redo B)
 *   D  no lock: delete unpublished uploads and versions past retention
 * The conditional swap is the fence; the lease only avoids wasted work.
 * Starvation guard (FINAL_REBASE_LOCKED, on by default): the last of MAX_CAS_RETRIES rebases runs
 * A-C under one lock, so a publish whose build is slower than the gap between others' commits (a
 * large batch run against a busy stream) still lands; the lock is then held for one build.
 * `single-phase` holds one lock across A-C: the old design, kept as the benchmark baseline.
 */
export type FaultPoint = 'after-upload' | 'holding-lock' | 'after-swap';
export type PublishPhase = 'read-pointer' | 'build' | 'commit' | 'rebase' | 'cleanup';

export interface PublishDeps {
  pointers: PointerStore;
  lock: LeaseLock;
  snapshots: SnapshotStore;
  config: Pick<Config, 'maxCasRetries' | 'snapshotRetention' | 'lockStrategy' | 'finalRebaseLocked'>;
  workDir: string;
  /** Test-only crash points between phases. */
  faults?: (point: FaultPoint) => Promise<void> | void;
  onPhase?: (phase: PublishPhase, attempt: number) => void;
}

export interface PublishResult {
  collection: string;
  runId: string;
  status: 'published' | 'already-applied';
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

type Commit =
  | { outcome: 'published'; pointer: Pointer }
  | { outcome: 'already-applied' | 'moved'; head: Pointer };

export async function publish(deps: PublishDeps, collection: string, change: Change): Promise<PublishResult> {
  const started = performance.now();
  const locks = new LockAccounting(deps.lock);
  const singlePhase = deps.config.lockStrategy === 'single-phase';
  const result = (
    status: PublishResult['status'],
    base: Pointer,
    pointer: Pointer,
    extra: Partial<PublishResult>,
  ) => ({
    collection,
    runId: change.runId,
    status,
    strategy: deps.config.lockStrategy,
    previousVersion: status === 'published' ? base.version : pointer.version,
    snapshotVersion: pointer.version,
    snapshotKey: pointer.snapshotKey,
    recordCount: pointer.recordCount,
    dimension: pointer.dimension,
    lockAcquireMs: round(locks.acquireMs),
    lockHoldMs: round(locks.holdMs),
    maxLockHoldMs: round(locks.maxHoldMs),
    lockCollisions: locks.collisions,
    casRetries: 0,
    lockedRebase: false,
    publishMs: round(performance.now() - started),
    missingIds: [],
    deletedObjects: 0,
    ...extra,
  });

  for (let attempt = 0; ; attempt++) {
    deps.onPhase?.(attempt === 0 ? 'read-pointer' : 'rebase', attempt);
    const lockedRebase =
      !singlePhase && deps.config.finalRebaseLocked && attempt > 0 && attempt >= deps.config.maxCasRetries;
    const attemptOutcome =
      singlePhase || lockedRebase
        ? await locks.with(collection, async (held) => {
            const base = await deps.pointers.read(collection);
            if (isApplied(base, change))
              return { base, commit: { outcome: 'already-applied', head: base } as Commit };
            const built = await build(deps, base, change, attempt);
            return { base, built, commit: await commit(deps, held, base, built, change) };
          })
        : await twoPhaseAttempt(deps, locks, collection, change, attempt);

    const { base, built, commit: done } = attemptOutcome;
    if (done.outcome === 'published') {
      await deps.faults?.('after-swap');
      deps.onPhase?.('cleanup', attempt);
      const deletedObjects = await cleanup(deps, done.pointer);
      return result('published', base, done.pointer, {
        casRetries: attempt,
        lockedRebase,
        missingIds: built?.stats.missingIds ?? [],
        deletedObjects,
      });
    }
    if (built) await deps.snapshots.objects.deleteKeys([built.key]);
    if (done.outcome === 'already-applied')
      return result('already-applied', base, done.head, { casRetries: attempt });
    if (attempt >= deps.config.maxCasRetries) {
      throw new CasConflictError(
        `pointer of "${collection}" moved on every attempt (${attempt + 1} attempts, now at version ${done.head.version}); retry the publish`,
      );
    }
  }
}

async function twoPhaseAttempt(
  deps: PublishDeps,
  locks: LockAccounting,
  collection: string,
  change: Change,
  attempt: number,
): Promise<{ base: Pointer; built?: BuiltSnapshot; commit: Commit }> {
  const base = await locks.with(collection, () => deps.pointers.read(collection));
  if (isApplied(base, change)) return { base, commit: { outcome: 'already-applied', head: base } };
  let built: BuiltSnapshot;
  try {
    built = await build(deps, base, change, attempt);
  } catch (error) {
    // The base snapshot may have been retired by newer publishes while we read it: that is a move.
    if (!(error instanceof StorageError)) throw error;
    const head = await deps.pointers.read(collection);
    if (head.version === base.version) throw error;
    return { base, commit: { outcome: 'moved', head } };
  }
  await deps.faults?.('after-upload');
  const done = await locks.with(collection, (held) => commit(deps, held, base, built, change));
  return { base, built, commit: done };
}

function build(deps: PublishDeps, base: Pointer, change: Change, attempt: number): Promise<BuiltSnapshot> {
  deps.onPhase?.('build', attempt);
  return buildSnapshot(deps.snapshots, base, change, deps.workDir);
}

/** Phase C, under the lock: only a re-read and one conditional write. */
async function commit(
  deps: PublishDeps,
  held: HeldLock,
  base: Pointer,
  built: BuiltSnapshot,
  change: Change,
): Promise<Commit> {
  deps.onPhase?.('commit', 0);
  try {
    held.assertHeld();
  } catch (error) {
    if (error instanceof LeaseLostError)
      return { outcome: 'moved', head: await deps.pointers.read(base.collection) };
    throw error;
  }
  const head = await deps.pointers.read(base.collection);
  if (isApplied(head, change)) return { outcome: 'already-applied', head };
  if (head.version !== base.version) return { outcome: 'moved', head };
  // Between the re-read and the write: where a paused holder whose lease expired would sit.
  await deps.faults?.('holding-lock');
  const pointer = nextPointer(
    base,
    { key: built.key, recordCount: built.recordCount, dimension: built.dimension, runId: change.runId },
    held.fence,
    deps.config.snapshotRetention,
    built.stats.appliedMessageIds,
  );
  if (await deps.pointers.swap(base.version, pointer)) return { outcome: 'published', pointer };
  return { outcome: 'moved', head: await deps.pointers.read(base.collection) };
}

/** A run already in the pointer, or a stream change whose every message is applied already. */
function isApplied(pointer: Pointer, change: Change): boolean {
  if (pointer.recentRunIds.includes(change.runId)) return true;
  if (!change.messageIds || change.messageIds.length === 0) return false;
  const applied = appliedMessageIds(pointer);
  return change.messageIds.every((id) => applied.has(id));
}

/**
 * Phase D: every snapshot key at or below the current version that the pointer does not retain
 * is garbage (a crashed or losing publisher's upload, or a version past retention): no future
 * pointer can name it, since versions only grow.
 */
export async function cleanup(deps: Pick<PublishDeps, 'snapshots'>, pointer: Pointer): Promise<number> {
  const retained = new Set(pointer.history.map((entry) => entry.key));
  const keys = await deps.snapshots.listKeys(pointer.collection);
  const garbage = keys.filter((key) => {
    const parsed = parseSnapshotKey(key);
    return parsed !== null && parsed.version <= pointer.version && !retained.has(key);
  });
  await deps.snapshots.objects.deleteKeys(garbage);
  await deps.snapshots.pruneCache(pointer.collection, [...retained]);
  return garbage.length;
}

const round = (ms: number) => Math.round(ms * 100) / 100;
