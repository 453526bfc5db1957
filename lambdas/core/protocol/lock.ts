import { randomUUID } from 'node:crypto';
import { type DynamoDBDocumentClient, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionalCheckFailed, LeaseLostError, LockBusyError } from '../errors.ts';

/**
 * A lease on one collection: one DynamoDB item `chroma-{collection}-update` holding the owner
 * token, lease expiry and a fencing counter. It only saves wasted work and thundering herds;
 * correctness never depends on it (clocks may disagree): the conditional pointer write fences.
 *
 * Release clears the owner instead of deleting the item, so the fencing counter stays monotonic.
 */
export interface LockOptions {
  leaseSeconds: number;
  heartbeatSeconds: number;
  waitSeconds: number;
  now?: () => number;
}

export interface HeldLock {
  collection: string;
  owner: string;
  fence: number;
  acquiredAt: number;
  /** ms spent waiting, and failed attempts (another owner held it) before success. */
  acquireMs: number;
  collisions: number;
  /** Set when a heartbeat found another owner: this holder must stop and never write the lock. */
  lost: boolean;
  assertHeld(): void;
  /** Stops the heartbeat and clears the lock if this holder still owns it; returns ms held. */
  release(): Promise<number>;
}

export interface LockInfo {
  lockId: string;
  collection: string;
  owner: string;
  fence: number;
  ageMs: number;
  remainingMs: number;
  expired: boolean;
}

export const lockId = (collection: string) => `chroma-${collection}-update`;
const LOCK_PREFIX = 'chroma-';
const LOCK_SUFFIX = '-update';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class LeaseLock {
  private readonly now: () => number;

  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly options: LockOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** One conditional write: succeeds if nobody holds the lock or the holder's lease has run out. */
  async tryAcquire(
    collection: string,
    owner = randomUUID(),
  ): Promise<{ owner: string; fence: number } | null> {
    const now = this.now();
    const expiresAt = now + this.options.leaseSeconds * 1000;
    try {
      const result = await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: lockId(collection) },
          UpdateExpression:
            'SET #owner = :owner, expiresAt = :expiresAt, acquiredAt = :now, #ttl = :ttl ADD fence :one',
          ConditionExpression: 'attribute_not_exists(#owner) OR expiresAt < :now',
          ExpressionAttributeNames: { '#owner': 'owner', '#ttl': 'ttl' },
          ExpressionAttributeValues: {
            ':owner': owner,
            ':expiresAt': expiresAt,
            ':now': now,
            ':ttl': Math.ceil(expiresAt / 1000) + 86_400,
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { owner, fence: Number(result.Attributes?.fence ?? 0) };
    } catch (error) {
      if (isConditionalCheckFailed(error)) return null;
      throw error;
    }
  }

  /** Waits with jittered backoff up to `waitSeconds`, then gives up with LockBusyError. */
  async acquire(collection: string): Promise<HeldLock> {
    const started = this.now();
    const deadline = started + this.options.waitSeconds * 1000;
    let collisions = 0;
    let backoff = 10;
    for (;;) {
      const acquired = await this.tryAcquire(collection);
      if (acquired) return this.hold(collection, acquired.owner, acquired.fence, started, collisions);
      collisions++;
      if (this.now() >= deadline) {
        throw new LockBusyError(
          `lock ${lockId(collection)} stayed held for ${this.options.waitSeconds}s (${collisions} attempts)`,
        );
      }
      await sleep(Math.min(backoff, Math.max(0, deadline - this.now())) * (0.5 + Math.random() / 2));
      backoff = Math.min(backoff * 2, 500);
    }
  }

  /** Extends the lease only while `owner` and `fence` still match: a holder that lost it never takes it back. */
  async heartbeat(collection: string, owner: string, fence: number): Promise<boolean> {
    const expiresAt = this.now() + this.options.leaseSeconds * 1000;
    try {
      await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: lockId(collection) },
          UpdateExpression: 'SET expiresAt = :expiresAt, #ttl = :ttl',
          ConditionExpression: '#owner = :owner AND fence = :fence',
          ExpressionAttributeNames: { '#owner': 'owner', '#ttl': 'ttl' },
          ExpressionAttributeValues: {
            ':owner': owner,
            ':fence': fence,
            ':expiresAt': expiresAt,
            ':ttl': Math.ceil(expiresAt / 1000) + 86_400,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /** Clears the owner if it is still `owner`; false when someone else holds it now. */
  async releaseOwned(collection: string, owner: string, fence: number): Promise<boolean> {
    try {
      await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: lockId(collection) },
          UpdateExpression: 'REMOVE #owner, acquiredAt SET expiresAt = :zero',
          ConditionExpression: '#owner = :owner AND fence = :fence',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner, ':fence': fence, ':zero': 0 },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  private hold(
    collection: string,
    owner: string,
    fence: number,
    started: number,
    collisions: number,
  ): HeldLock {
    const acquiredAt = this.now();
    let stopped = false;
    const held: HeldLock = {
      collection,
      owner,
      fence,
      acquiredAt,
      acquireMs: acquiredAt - started,
      collisions,
      lost: false,
      assertHeld() {
        if (held.lost)
          throw new LeaseLostError(`lease on ${lockId(collection)} (fence ${fence}) was taken over`);
      },
      release: async () => {
        stopped = true;
        clearInterval(timer);
        const heldMs = this.now() - acquiredAt;
        if (!held.lost) held.lost = !(await this.releaseOwned(collection, owner, fence));
        return heldMs;
      },
    };
    const timer = setInterval(() => {
      if (stopped) return;
      this.heartbeat(collection, owner, fence).then(
        (extended) => {
          if (!extended) {
            held.lost = true;
            stopped = true;
            clearInterval(timer);
          }
        },
        () => {
          // A failed heartbeat call is not a lost lease; the next beat retries.
        },
      );
    }, this.options.heartbeatSeconds * 1000);
    timer.unref();
    return held;
  }

  async list(): Promise<LockInfo[]> {
    const now = this.now();
    const locks: LockInfo[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.dynamo.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :prefix) AND attribute_exists(#owner)',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':prefix': LOCK_PREFIX },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const id = String(item.pk);
        const remainingMs = Number(item.expiresAt) - now;
        locks.push({
          lockId: id,
          collection: id.slice(LOCK_PREFIX.length, -LOCK_SUFFIX.length),
          owner: String(item.owner),
          fence: Number(item.fence),
          ageMs: now - Number(item.acquiredAt),
          remainingMs: Math.max(0, remainingMs),
          expired: remainingMs <= 0,
        });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return locks.sort((a, b) => a.lockId.localeCompare(b.lockId));
  }
}
