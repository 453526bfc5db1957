import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed } from '../errors.ts';
import type { Condition, Item, ItemStore } from '../protocol/ports.ts';

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
