import { belongsTo, type ChangeSetStore } from './change-sets.ts';
import type { Pointer } from './pointer.ts';
import { idsKeyOf, isSnapshotArchive } from './ports.ts';
import type { PublicationDeps } from './publication.ts';
import { isGarbage } from './retention.ts';

/**
 * Phase D: deletes every snapshot object that is garbage for the (fresh) pointer (see
 * retention.ts), and change sets that no pending entry names and that are older than
 * CHANGESET_GRACE_MS (an hour, so clocks an hour apart still agree). The grace keeps a published
 * entry's change set for a builder whose swap was just lost, so it can replay it onto its open
 * copy, and covers a change set written a moment ago whose entry is being appended.
 */
export async function cleanup(
  deps: Pick<PublicationDeps, 'snapshots' | 'clock' | 'config' | 'changeSets' | 'log'>,
  pointer: Pointer,
): Promise<number> {
  const now = deps.clock.now();
  // Snapshots and change sets are independent: both are swept at once.
  const [snapshotsDeleted, changeSetsDeleted] = await Promise.all([
    sweepSnapshots(deps, pointer, now),
    sweepChangeSets(deps, pointer, now),
  ]);
  return snapshotsDeleted + changeSetsDeleted;
}

async function sweepSnapshots(
  deps: Pick<PublicationDeps, 'snapshots' | 'config'>,
  pointer: Pointer,
  now: number,
): Promise<number> {
  const listed = await deps.snapshots.listKeys(pointer.collection);
  const snapshots = listed.filter(isSnapshotArchive);
  const garbage = snapshots.filter((key) =>
    isGarbage(key, pointer, now, deps.config.snapshotRetentionMinutes),
  );
  const dropped = new Set(garbage);
  // A snapshot's id list goes with it (and one whose snapshot is gone goes too).
  const kept = new Set(snapshots.filter((key) => !dropped.has(key)).map(idsKeyOf));
  const idLists = listed.filter((key) => key.endsWith('.ids.gz') && !kept.has(key));
  await deps.snapshots.deleteKeys([...garbage, ...idLists]);
  await deps.snapshots.pruneCache(
    pointer.collection,
    snapshots.filter((key) => !dropped.has(key)),
  );
  return garbage.length;
}

/**
 * Change sets stay an hour past their publication, so a busy stream keeps thousands of them: they
 * are listed for the sweep at most every CHANGESET_SWEEP_INTERVAL_MS per collection and store
 * (per warm Lambda), not on every build. Sweeping later only deletes later.
 */
export const CHANGESET_SWEEP_INTERVAL_MS = 5 * 60_000;
const lastSweeps = new WeakMap<ChangeSetStore, Map<string, number>>();

async function sweepChangeSets(
  deps: Pick<PublicationDeps, 'changeSets' | 'log'>,
  pointer: Pointer,
  now: number,
): Promise<number> {
  const sweeps = lastSweeps.get(deps.changeSets) ?? new Map<string, number>();
  lastSweeps.set(deps.changeSets, sweeps);
  const last = sweeps.get(pointer.collection);
  if (last !== undefined && now - last >= 0 && now - last < CHANGESET_SWEEP_INTERVAL_MS) return 0;
  sweeps.set(pointer.collection, now);
  const [pendingEntries, stored] = await Promise.all([
    deps.log.pending(pointer.collection, pointer.publishedSeq),
    deps.changeSets.list(pointer.collection),
  ]);
  const pending = pendingEntries.map((entry) => entry.changeSet);
  const stale = stored
    .filter(
      (object) =>
        !pending.some((key) => belongsTo(key, object.key)) && now - object.modifiedAt > CHANGESET_GRACE_MS,
    )
    .map((object) => object.key);
  await deps.changeSets.deleteKeys(stale);
  return stale.length;
}

export const CHANGESET_GRACE_MS = 60 * 60_000;
