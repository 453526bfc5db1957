import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed } from '../errors.ts';
import type { Item, ItemStore } from '../protocol/ports.ts';

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

/**
 * Reads, lists and removes through the item store; `record` alone speaks DynamoDB itself, since
 * keeping `createdAt` while naming the embedder is one UpdateItem the item store does not offer.
 */
export class CollectionCatalog {
  constructor(
    private readonly items: ItemStore,
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(collection: string): Promise<CatalogEntry | null> {
    const item = await this.items.get(catalogKey(collection));
    return item ? withoutKey(item) : null;
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
    await this.items.delete(catalogKey(collection));
  }

  async list(): Promise<CatalogEntry[]> {
    return (await this.items.scan(CATALOG_PREFIX)).map(({ item }) => withoutKey(item));
  }
}

function withoutKey(item: Item): CatalogEntry {
  const { pk: _pk, ...entry } = item;
  return entry as unknown as CatalogEntry;
}
