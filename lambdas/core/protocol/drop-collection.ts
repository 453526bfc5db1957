import { DeleteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { EmbedflowError, isConditionalCheckFailed } from '../errors.ts';
import type { CollectionCatalog } from '../storage/collection-catalog.ts';
import type { SnapshotStore } from '../storage/snapshot-store.ts';
import { type LeaseLock, lockId } from './lock.ts';
import { type PointerStore, pointerKey } from './pointer.ts';

/**
 * Dropping a collection, so it can start over (another dimension, another embedder). Under the
 * collection's own lock, taken without waiting (a run or stream publishing into it holds it: the
 * drop is refused), it removes, in this order: the catalog entry, the pointer, every snapshot
 * object, the cached snapshots, and last the lock item itself. Each step is idempotent, so a drop
 * that crashed half way is finished by running it again.
 *
 * A publish that was building off-lock when the drop ran finds the pointer gone at its commit and
 * rebases onto an empty collection: its records then start the collection afresh.
 */
export class CollectionInUseError extends EmbedflowError {}

export interface DropDeps {
  dynamo: DynamoDBDocumentClient;
  table: string;
  pointers: PointerStore;
  lock: LeaseLock;
  snapshots: SnapshotStore;
  catalog: CollectionCatalog;
}

export interface DropResult {
  collection: string;
  /** The version the pointer named before the drop (0: there was none). */
  droppedVersion: number;
  recordCount: number;
  snapshotsDeleted: number;
}

export async function dropCollection(deps: DropDeps, collection: string): Promise<DropResult> {
  const held = await deps.lock.tryAcquire(collection);
  if (!held) {
    const holder = (await deps.lock.list()).find((lock) => lock.collection === collection);
    const lease = holder
      ? ` by ${holder.owner}, lease ends in ${Math.ceil(holder.remainingMs / 1000)} s`
      : '';
    throw new CollectionInUseError(
      `collection "${collection}" is being published (lock ${lockId(collection)} held${lease}): drop it once that run or stream is done`,
    );
  }
  const pointer = await deps.pointers.read(collection);
  // The catalog entry first: an interrupted drop then leaves a collection counted as external, never
  // an old entry naming the embedder of vectors that are gone.
  await deps.catalog.remove(collection);
  await deps.dynamo.send(new DeleteCommand({ TableName: deps.table, Key: { pk: pointerKey(collection) } }));
  const keys = await deps.snapshots.listKeys(collection);
  await deps.snapshots.objects.deleteKeys(keys);
  await deps.snapshots.pruneCache(collection, []);
  try {
    await deps.dynamo.send(
      new DeleteCommand({
        TableName: deps.table,
        Key: { pk: lockId(collection) },
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': held.owner },
      }),
    );
  } catch (error) {
    // Our lease ran out during the drop and a publisher holds the lock now: the lock is theirs.
    if (!isConditionalCheckFailed(error)) throw error;
  }
  return {
    collection,
    droppedVersion: pointer.version,
    recordCount: pointer.recordCount,
    snapshotsDeleted: keys.length,
  };
}
