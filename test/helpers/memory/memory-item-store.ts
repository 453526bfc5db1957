import { type Condition, holds, type Item, type ItemStore } from '../../../lambdas/core/protocol/ports.ts';
import { jitter } from './random.ts';

/**
 * An in-memory ItemStore that behaves as DynamoDB does on a bad day, on demand:
 *   - `lost`:          the write is applied, then the caller gets a 500 (the SDK gave up);
 *   - `lost-retried`:  the write is applied, the response is lost, and the SDK's retry of the same
 *                      request is evaluated against the new state (so it usually fails its condition);
 *   - `throttled`:     nothing is applied and the caller gets ProvisionedThroughputExceededException;
 *   - TTL:             `expire(nowSeconds)` removes items whose `ttl` has passed, as DynamoDB may at any time after it.
 * Every call may also yield the event loop a few times (`random`), so concurrent callers interleave.
 */
export type Fault = 'none' | 'lost' | 'lost-retried' | 'throttled';
export interface Call {
  op: 'get' | 'put' | 'delete' | 'scan';
  key: string;
  conditional: boolean;
}
export type FaultPolicy = (call: Call) => Fault;

export class ServerError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export interface Stats {
  calls: number;
  faults: Record<Exclude<Fault, 'none'>, number>;
}

export class MemoryItemStore implements ItemStore {
  /** Remove the condition of writes whose key matches: the negative control of the race suite. */
  unconditionalKeys?: RegExp;

  constructor(
    public faults: FaultPolicy = () => 'none',
    private readonly random: () => number = Math.random,
    readonly items = new Map<string, Item>(),
    readonly stats: Stats = { calls: 0, faults: { lost: 0, 'lost-retried': 0, throttled: 0 } },
  ) {}

  /** Another client of the same table, with faults of its own (one publisher's bad network). */
  connection(faults: FaultPolicy): MemoryItemStore {
    const other = new MemoryItemStore(faults, this.random, this.items, this.stats);
    other.unconditionalKeys = this.unconditionalKeys;
    return other;
  }

  async get(key: string): Promise<Item | undefined> {
    await this.enter({ op: 'get', key, conditional: false });
    const item = this.items.get(key);
    return item === undefined ? undefined : structuredClone(item);
  }

  async put(key: string, item: Item, condition?: Condition): Promise<boolean> {
    return this.write({ op: 'put', key, conditional: condition !== undefined }, condition, () => {
      this.items.set(key, structuredClone(item));
    });
  }

  async delete(key: string, condition?: Condition): Promise<boolean> {
    return this.write({ op: 'delete', key, conditional: condition !== undefined }, condition, () => {
      this.items.delete(key);
    });
  }

  async getMany(keys: string[]): Promise<Map<string, Item>> {
    await this.enter({ op: 'get', key: keys[0] ?? '', conditional: false });
    const found = new Map<string, Item>();
    for (const key of keys) {
      const item = this.items.get(key);
      if (item !== undefined) found.set(key, structuredClone(item));
    }
    return found;
  }

  async putMany(items: { key: string; item: Item }[]): Promise<void> {
    await this.enter({ op: 'put', key: items[0]?.key ?? '', conditional: false });
    for (const { key, item } of items) this.items.set(key, structuredClone(item));
  }

  async scan(prefix: string): Promise<{ key: string; item: Item }[]> {
    await this.enter({ op: 'scan', key: prefix, conditional: false });
    return [...this.items]
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, item]) => ({ key, item: structuredClone(item) }));
  }

  /** DynamoDB TTL: removes every item whose `ttl` (epoch seconds) is at or before `nowSeconds`. */
  expire(nowSeconds: number): string[] {
    const removed: string[] = [];
    for (const [key, item] of this.items) {
      if (typeof item.ttl === 'number' && item.ttl <= nowSeconds) {
        this.items.delete(key);
        removed.push(key);
      }
    }
    return removed;
  }

  private async enter(call: Call): Promise<Fault> {
    this.stats.calls++;
    await jitter(this.random);
    const fault = this.faults(call);
    if (fault !== 'none') this.stats.faults[fault]++;
    if (fault === 'throttled') {
      throw new ServerError('ProvisionedThroughputExceededException', `throttled: ${call.op} ${call.key}`);
    }
    return fault;
  }

  private async write(call: Call, condition: Condition | undefined, apply: () => void): Promise<boolean> {
    const fault = await this.enter(call);
    const effective = this.unconditionalKeys?.test(call.key) ? undefined : condition;
    const attempt = () => {
      if (effective && !holds(effective, this.items.get(call.key))) return false;
      apply();
      return true;
    };
    const applied = attempt();
    if (fault === 'lost' && applied)
      throw new ServerError('InternalServerError', `lost response: ${call.op} ${call.key}`);
    if (fault === 'lost-retried' && applied) {
      await jitter(this.random);
      return attempt();
    }
    return applied;
  }
}

/** A seeded policy: each conditional write meets a fault with the given probabilities. */
export function randomFaults(
  random: () => number,
  rates: Partial<Record<Exclude<Fault, 'none'>, number>>,
  applies: (call: Call) => boolean = (call) => call.conditional,
): FaultPolicy {
  return (call) => {
    if (!applies(call)) return 'none';
    let roll = random();
    for (const [fault, rate] of Object.entries(rates) as [Exclude<Fault, 'none'>, number][]) {
      if (roll < rate) return fault;
      roll -= rate;
    }
    return 'none';
  };
}
