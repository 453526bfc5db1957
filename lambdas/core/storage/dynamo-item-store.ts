import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { isConditionalCheckFailed } from '../errors.ts';
import type { Condition, Item, ItemStore } from '../protocol/ports.ts';

const BATCH_WRITES_IN_FLIGHT = 4;

/**
 * The protocol's ItemStore on one DynamoDB table keyed by `pk`: single-item conditional PutItem /
 * DeleteItem and strongly consistent GetItem. Nothing needs transactions, so dynalite serves
 * locally exactly what DynamoDB serves in AWS.
 */
export class DynamoItemStore implements ItemStore {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(key: string): Promise<Item | undefined> {
    const { Item: stored } = await this.dynamo.send(
      new GetCommand({ TableName: this.table, Key: { pk: key }, ConsistentRead: true }),
    );
    if (!stored) return undefined;
    const { pk: _pk, ...item } = stored;
    return item;
  }

  async put(key: string, item: Item, condition?: Condition): Promise<boolean> {
    return this.conditional(() =>
      this.dynamo.send(
        new PutCommand({ TableName: this.table, Item: { ...item, pk: key }, ...toExpression(condition) }),
      ),
    );
  }

  async delete(key: string, condition?: Condition): Promise<boolean> {
    return this.conditional(() =>
      this.dynamo.send(
        new DeleteCommand({ TableName: this.table, Key: { pk: key }, ...toExpression(condition) }),
      ),
    );
  }

  async getMany(keys: string[]): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    const unique = [...new Set(keys)];
    for (let start = 0; start < unique.length; start += 100) {
      let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined =
        {
          [this.table]: {
            Keys: unique.slice(start, start + 100).map((pk) => ({ pk })),
            ConsistentRead: true,
          },
        };
      for (let round = 0; request && Object.keys(request).length > 0; round++) {
        const page = await this.dynamo.send(new BatchGetCommand({ RequestItems: request }));
        for (const { pk, ...item } of page.Responses?.[this.table] ?? []) found.set(String(pk), item);
        request = page.UnprocessedKeys as typeof request;
        if (request && Object.keys(request).length > 0) await backoff(round);
      }
    }
    return found;
  }

  /** In BatchWriteItem requests of 25, a few at once (a fold records every message it applied). */
  async putMany(items: { key: string; item: Item }[]): Promise<void> {
    const limit = pLimit(BATCH_WRITES_IN_FLIGHT);
    const slices: { key: string; item: Item }[][] = [];
    for (let start = 0; start < items.length; start += 25) slices.push(items.slice(start, start + 25));
    await Promise.all(slices.map((slice) => limit(() => this.writeBatch(slice))));
  }

  private async writeBatch(slice: { key: string; item: Item }[]): Promise<void> {
    let request: Record<string, { PutRequest: { Item: Item } }[]> | undefined = {
      [this.table]: slice.map(({ key, item }) => ({ PutRequest: { Item: { ...item, pk: key } } })),
    };
    for (let round = 0; request && Object.keys(request).length > 0; round++) {
      const page = await this.dynamo.send(new BatchWriteCommand({ RequestItems: request }));
      request = page.UnprocessedItems as typeof request;
      if (request && Object.keys(request).length > 0) await backoff(round);
    }
  }

  async scan(prefix: string): Promise<{ key: string; item: Item }[]> {
    const found: { key: string; item: Item }[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.dynamo.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :prefix)',
          ExpressionAttributeValues: { ':prefix': prefix },
          ExclusiveStartKey: start,
        }),
      );
      for (const { pk, ...item } of page.Items ?? []) found.push({ key: String(pk), item });
      start = page.LastEvaluatedKey;
    } while (start);
    return found;
  }

  private async conditional(send: () => Promise<unknown>): Promise<boolean> {
    try {
      await send();
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}

/** DynamoDB hands back what it throttled in a batch: those are sent again after a pause. */
const backoff = (round: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** round) * (0.5 + Math.random() / 2)));

/** Translates a Condition into a ConditionExpression with its names and values. */
export function toExpression(condition: Condition | undefined): {
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
} {
  if (!condition) return {};
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const name = (attr: string) => {
    const placeholder = `#${attr.replace(/[^A-Za-z0-9_]/g, '_')}`;
    names[placeholder] = attr;
    return placeholder;
  };
  const value = (raw: unknown) => {
    const placeholder = `:v${Object.keys(values).length}`;
    values[placeholder] = raw;
    return placeholder;
  };
  const render = (part: Condition): string => {
    switch (part.kind) {
      case 'absent':
        return `attribute_not_exists(${name('pk')})`;
      case 'equals':
        return `${name(part.attr)} = ${value(part.value)}`;
      case 'missing':
        return `attribute_not_exists(${name(part.attr)})`;
      case 'lessThan':
        return `${name(part.attr)} < ${value(part.value)}`;
      case 'and':
      case 'or':
        return `(${part.of.map(render).join(part.kind === 'and' ? ' AND ' : ' OR ')})`;
    }
  };
  const expression = render(condition);
  return {
    ConditionExpression: expression,
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length > 0 && { ExpressionAttributeValues: values }),
  };
}
