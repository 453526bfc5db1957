import { type DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed } from '../errors.ts';

/** One published snapshot version as the pointer remembers it. */
export interface SnapshotVersion {
  version: number;
  key: string;
  recordCount: number;
  dimension: number | null;
  runId: string;
  createdAt: string;
}

/**
 * The single item per collection that says which snapshot is live. It carries the retained
 * versions (so retention and `snapshots list` need no listing) and recent run ids (so re-running
 * a run is a no-op), all changed in the one conditional write that is the publish.
 */
export interface Pointer {
  collection: string;
  version: number;
  snapshotKey: string | null;
  recordCount: number;
  dimension: number | null;
  updatedAt: string;
  fence: number;
  recentRunIds: string[];
  /** Stream messages applied recently, so a redelivered message is applied once. */
  recentMessageIds?: string[];
  history: SnapshotVersion[];
}

export const RECENT_RUN_IDS_KEPT = 500;
export const RECENT_MESSAGE_IDS_KEPT = 2000;

export function emptyPointer(collection: string): Pointer {
  return {
    collection,
    version: 0,
    snapshotKey: null,
    recordCount: 0,
    dimension: null,
    updatedAt: new Date(0).toISOString(),
    fence: 0,
    recentRunIds: [],
    history: [],
  };
}

export const pointerKey = (collection: string) => `pointer#${collection}`;

export class PointerStore {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Strongly consistent: a stale read here would only cost a rebase, but costs nothing to avoid. */
  async read(collection: string): Promise<Pointer> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.table, Key: { pk: pointerKey(collection) }, ConsistentRead: true }),
    );
    if (!Item) return emptyPointer(collection);
    const { pk: _pk, ...pointer } = Item;
    return pointer as Pointer;
  }

  /**
   * The fence of the protocol: writes `next` only if the stored version is still `expectedVersion`
   * and no holder with a newer lock fence has written since. Returns false when the pointer moved.
   */
  async swap(expectedVersion: number, next: Pointer): Promise<boolean> {
    const condition =
      expectedVersion === 0
        ? { ConditionExpression: 'attribute_not_exists(pk)' }
        : {
            ConditionExpression: 'version = :expected AND (attribute_not_exists(fence) OR fence < :fence)',
            ExpressionAttributeValues: { ':expected': expectedVersion, ':fence': next.fence },
          };
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: pointerKey(next.collection), ...next },
          ...condition,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  async listCollections(): Promise<Pointer[]> {
    const pointers: Pointer[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.dynamo.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :prefix)',
          ExpressionAttributeValues: { ':prefix': 'pointer#' },
          ExclusiveStartKey: start,
        }),
      );
      for (const { pk: _pk, ...item } of page.Items ?? []) pointers.push(item as Pointer);
      start = page.LastEvaluatedKey;
    } while (start);
    return pointers.sort((a, b) => a.collection.localeCompare(b.collection));
  }
}

export function appliedMessageIds(pointer: Pointer): ReadonlySet<string> {
  return new Set(pointer.recentMessageIds ?? []);
}

/** The pointer that a publish of `published` on top of `base` writes. */
export function nextPointer(
  base: Pointer,
  published: Omit<SnapshotVersion, 'version' | 'createdAt'>,
  fence: number,
  retention: number,
  appliedMessageIds: string[] = [],
  now = new Date(),
): Pointer {
  const version = base.version + 1;
  const entry: SnapshotVersion = { ...published, version, createdAt: now.toISOString() };
  return {
    collection: base.collection,
    version,
    snapshotKey: published.key,
    recordCount: published.recordCount,
    dimension: published.dimension ?? base.dimension,
    updatedAt: now.toISOString(),
    fence,
    // Stream publishes are identified by their message ids: they would only crowd out run ids.
    recentRunIds:
      appliedMessageIds.length > 0
        ? base.recentRunIds
        : [published.runId, ...base.recentRunIds.filter((id) => id !== published.runId)].slice(
            0,
            RECENT_RUN_IDS_KEPT,
          ),
    recentMessageIds: [...appliedMessageIds, ...(base.recentMessageIds ?? [])].slice(
      0,
      RECENT_MESSAGE_IDS_KEPT,
    ),
    history: [entry, ...base.history].slice(0, retention),
  };
}
