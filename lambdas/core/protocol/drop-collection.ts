import { EmbedflowError } from '../errors.ts';
import type { CollectionCatalog } from '../storage/collection-catalog.ts';
import type { ChangeSetStore } from './change-sets.ts';
import type { CommitLog } from './commit-log.ts';
import { dimensionKey } from './dimension.ts';
import type { HeldLock, LeaseLock } from './lock.ts';
import { type PointerStore, pointerKey } from './pointer.ts';
import { type ItemStore, isSnapshotArchive, type SnapshotObjects } from './ports.ts';

/**
 * Dropping a collection, so it can start over (another dimension, another embedder). It holds
 * the collection's build lease and its single-phase lock, both taken without waiting, and is
 * refused while either is held or while committed entries wait for a build (a run or a stream is
 * publishing into it). Then it removes, in this order: the catalog entry; the commit log, its head,
 * the entry outcomes, the applied-run and message records and the dimension claim; the pointer;
 * every snapshot and change-set object and the cached snapshots. The log goes before the pointer
 * so that a drop interrupted half way never leaves a pointer-less collection whose old entries a
 * new build would try to fold: running the drop again finishes it. Lock items are left to their
 * TTL (they hold no data).
 *
 * The applied records go too: run ids and message ids start over with the collection, so a run id
 * or a message redelivered from before the drop applies to the new collection.
 */
export class CollectionInUseError extends EmbedflowError {}

export interface DropDeps {
  items: ItemStore;
  pointers: PointerStore;
  lock: LeaseLock;
  buildLease: LeaseLock;
  log: CommitLog;
  snapshots: Pick<SnapshotObjects, 'listKeys' | 'deleteKeys' | 'pruneCache'>;
  changeSets: Pick<ChangeSetStore, 'list' | 'deleteKeys'>;
  catalog: Pick<CollectionCatalog, 'remove'>;
}

export interface DropResult {
  collection: string;
  /** The version the pointer named before the drop (0: there was none). */
  droppedVersion: number;
  recordCount: number;
  /** Snapshot archives removed (each with its id list). */
  snapshotsDeleted: number;
  /** Log entries, their outcomes and the applied-run and message records removed. */
  itemsDeleted: number;
}

export async function dropCollection(deps: DropDeps, collection: string): Promise<DropResult> {
  const held: HeldLock[] = [];
  try {
    for (const lease of [deps.buildLease, deps.lock]) {
      const taken = await lease.tryHold(collection);
      if (!taken) throw await inUse(lease, collection);
      held.push(taken);
    }
    const pointer = await deps.pointers.read(collection);
    const pending = await deps.log.pending(collection, pointer.publishedSeq, 1);
    if (pending.length > 0) {
      throw new CollectionInUseError(
        `collection "${collection}" has committed changes waiting to be published (log entry ${pending[0]!.seq}, ${pending[0]!.label}): drop it once that run or stream is done`,
      );
    }
    // The catalog entry first: an interrupted drop then leaves a collection counted as external,
    // never an old entry naming the embedder of vectors that are gone.
    await deps.catalog.remove(collection);
    const families = await Promise.all(
      ['log', 'outcome', 'applied'].map((family) => deps.items.scan(`${family}#${collection}#`)),
    );
    const familyKeys = families.flat().map(({ key }) => key);
    const keys = [...familyKeys, `loghead#${collection}`, dimensionKey(collection)];
    for (const key of keys) {
      for (const lease of held) lease.assertHeld();
      await deps.items.delete(key);
    }
    await deps.items.delete(pointerKey(collection));
    const snapshotKeys = await deps.snapshots.listKeys(collection);
    await deps.snapshots.deleteKeys(snapshotKeys);
    await deps.changeSets.deleteKeys((await deps.changeSets.list(collection)).map((object) => object.key));
    await deps.snapshots.pruneCache(collection, []);
    return {
      collection,
      droppedVersion: pointer.version,
      recordCount: pointer.recordCount,
      snapshotsDeleted: snapshotKeys.filter(isSnapshotArchive).length,
      itemsDeleted: familyKeys.length,
    };
  } finally {
    await Promise.all(held.map((lease) => lease.release()));
  }
}

async function inUse(lease: LeaseLock, collection: string): Promise<CollectionInUseError> {
  const holder = (await lease.list()).find((lock) => lock.collection === collection);
  const detail = holder
    ? ` (${holder.lockId} held by ${holder.owner}, lease ends in ${Math.ceil(holder.remainingMs / 1000)} s)`
    : '';
  return new CollectionInUseError(
    `collection "${collection}" is being published${detail}: drop it once that run or stream is done`,
  );
}
