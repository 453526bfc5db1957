import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed } from '../errors.ts';

/**
 * What the pointer does not say about a collection: which embedder produced its vectors. One small
 * item per collection (`catalog#<name>`) beside the pointer, written by whoever knows the embedder
 * (the CLI after a run: the demo's hashing embedder, or "external" for `run --input` and stream
 * upserts). A collection without an entry (written in AWS, or before the catalog existed) counts as
 * external: its vectors came from somewhere this tool cannot reproduce.
 */
export const EXTERNAL_EMBEDDER = 'external';

export interface CatalogEntry {
  collection: string;
  /** The embedder of every vector in the collection, or "external". */
  embedder: string;
  createdAt: string;
  updatedAt: string;
}

export const catalogKey = (collection: string) => `catalog#${collection}`;
const CATALOG_PREFIX = 'catalog#';

export class CollectionCatalog {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(collection: string): Promise<CatalogEntry | null> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.table, Key: { pk: catalogKey(collection) }, ConsistentRead: true }),
    );
    return Item ? withoutKey(Item) : null;
  }

  /** The embedder of a collection: its entry's, else "external". */
  async embedderOf(collection: string): Promise<string> {
    return (await this.get(collection))?.embedder ?? EXTERNAL_EMBEDDER;
  }

  /**
   * Records that `embedder` wrote vectors into the collection. The first writer names it; a later
   * writer with another embedder makes it "external" for good: its vectors are then mixed.
   */
  async record(collection: string, embedder: string, now = new Date()): Promise<CatalogEntry> {
    const update = (value: string, condition?: string) =>
      this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: catalogKey(collection) },
          UpdateExpression:
            'SET #collection = :collection, embedder = :embedder, createdAt = if_not_exists(createdAt, :now), updatedAt = :now',
          ...(condition && { ConditionExpression: condition }),
          ExpressionAttributeNames: { '#collection': 'collection' },
          ExpressionAttributeValues: {
            ':collection': collection,
            ':embedder': value,
            ':now': now.toISOString(),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
    try {
      return withoutKey(
        (await update(embedder, 'attribute_not_exists(embedder) OR embedder = :embedder')).Attributes!,
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      return withoutKey((await update(EXTERNAL_EMBEDDER)).Attributes!);
    }
  }

  async remove(collection: string): Promise<void> {
    await this.dynamo.send(new DeleteCommand({ TableName: this.table, Key: { pk: catalogKey(collection) } }));
  }

  async list(): Promise<CatalogEntry[]> {
    const entries: CatalogEntry[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.dynamo.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :prefix)',
          ExpressionAttributeValues: { ':prefix': CATALOG_PREFIX },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) entries.push(withoutKey(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return entries;
  }
}

function withoutKey(item: Record<string, unknown>): CatalogEntry {
  const { pk: _pk, ...entry } = item;
  return entry as unknown as CatalogEntry;
}
