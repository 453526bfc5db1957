import { randomUUID } from 'node:crypto';
import { LeaseLostError, LockBusyError } from '../errors.ts';
import { putVerified, readConsistently } from './conditional-write.ts';
import { type Clock, type Item, type ItemStore, systemClock, when } from './ports.ts';

/**
 * A lease on one collection: one item `chroma-{collection}-update` holding the owner token, the
 * lease expiry and an acquisition counter (`fence`, shown by `locks list`). It only saves wasted
 * work and thundering herds: correctness never depends on it (clocks may disagree, items may be
 * removed by TTL), because the conditional pointer write fences every publish.
 *
 * A holder knows its own deadline: the lease is valid until the last successful renewal's send
 * time + lease - margin, by its own clock. A failed heartbeat (throttled, 5xx) does not end the
 * lease early, but once that deadline passes the holder treats the lease as lost.
 */
export interface LockOptions {
  leaseSeconds: number;
  heartbeatSeconds: number;
  /** How long acquire waits for a busy lock; never less than one lease, so a dead holder's lease can run out. */
  waitSeconds: number;
  clock?: Clock;
  onHeartbeatFailure?: (failure: HeartbeatFailure) => void;
  /** Which lock of a collection: the collection lock (default) or the build lease. */
  naming?: LockNaming;
}

export interface LockNaming {
  prefix: string;
  suffix: string;
}

/** `chroma-{collection}-update`: what single-phase publishes and `collections drop` hold. */
export const COLLECTION_LOCK: LockNaming = { prefix: 'chroma-', suffix: '-update' };
/** `build-{collection}-lease`: whoever holds it folds the log; no commit ever waits for it. */
export const BUILD_LEASE: LockNaming = { prefix: 'build-', suffix: '-lease' };

export interface HeartbeatFailure {
  collection: string;
  owner: string;
  error: unknown;
  /** Time left on this holder's own deadline. */
  remainingMs: number;
}

export interface HeldLock {
  collection: string;
  owner: string;
  fence: number;
  acquiredAt: number;
  /** ms spent waiting, and failed attempts (another owner held it) before success. */
  acquireMs: number;
  collisions: number;
  heartbeatFailures: number;
  /** Still ours: not taken over, and our own deadline has not passed. */
  valid(): boolean;
  /** Throws LeaseLostError (with the collection, fence and why) unless valid(). */
  assertHeld(): void;
  /** Stops the heartbeat and clears the lock if this holder still owns it; returns ms held. Never throws. */
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

export const lockId = (collection: string, naming: LockNaming = COLLECTION_LOCK) =>
  `${naming.prefix}${collection}${naming.suffix}`;
/** Lock items are removed by DynamoDB TTL a day after their lease: nothing depends on them surviving. */
const TTL_AFTER_LEASE_SECONDS = 86_400;

interface LockItem extends Item {
  owner?: string;
  fence: number;
  expiresAt: number;
  acquiredAt?: number;
  ttl: number;
}

export class LeaseLock {
  readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly naming: LockNaming;

  constructor(
    private readonly items: ItemStore,
    private readonly options: LockOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.leaseMs = options.leaseSeconds * 1000;
    this.naming = options.naming ?? COLLECTION_LOCK;
  }

  private key(collection: string): string {
    return lockId(collection, this.naming);
  }

  /** One attempt, without waiting: the lock held (with its heartbeat), or null when someone else holds it. */
  async tryHold(collection: string): Promise<HeldLock | null> {
    const started = this.clock.now();
    const acquired = await this.tryAcquire(collection);
    return acquired ? this.hold(collection, acquired, started, 0) : null;
  }

  /** A holder stops trusting its lease this long before it runs out (its clock may lag the others'). */
  get marginMs(): number {
    return Math.min(this.leaseMs / 4, 5000);
  }

  /** One attempt: succeeds if nobody holds the lock or the holder's lease has run out. */
  async tryAcquire(collection: string): Promise<{ owner: string; fence: number; sentAt: number } | null> {
    const key = this.key(collection);
    const stored = (await readConsistently(this.items, this.clock, key, `lock ${key}`)) as
      | LockItem
      | undefined;
    const now = this.clock.now();
    if (stored?.owner !== undefined && stored.expiresAt >= now) return null;
    const owner = randomUUID();
    const fence = (typeof stored?.fence === 'number' ? stored.fence : 0) + 1;
    const item: LockItem = {
      owner,
      fence,
      expiresAt: now + this.leaseMs,
      acquiredAt: now,
      ttl: this.ttl(now),
    };
    const outcome = await putVerified(this.items, this.clock, {
      key,
      item,
      // Exactly the state we saw, still free: a holder that renewed meanwhile makes this fail.
      condition: stored
        ? when.and(
            typeof stored.fence === 'number' ? when.equals('fence', stored.fence) : when.missing('fence'),
            when.or(when.missing('owner'), when.lessThan('expiresAt', now)),
          )
        : when.absent(),
      isOurs: (current) => current?.owner === owner,
      what: `lock ${key} acquire`,
    });
    return outcome.written ? { owner, fence, sentAt: now } : null;
  }

  /** Waits with jittered backoff, then gives up with LockBusyError naming the holder. */
  async acquire(collection: string): Promise<HeldLock> {
    const started = this.clock.now();
    const deadline = started + Math.max(this.options.waitSeconds * 1000, this.leaseMs + this.marginMs);
    let collisions = 0;
    let backoff = 10;
    for (;;) {
      const acquired = await this.tryAcquire(collection);
      if (acquired) return this.hold(collection, acquired, started, collisions);
      collisions++;
      if (this.clock.now() >= deadline) {
        const holder = (await this.items.get(this.key(collection)).catch(() => undefined)) as
          | LockItem
          | undefined;
        throw new LockBusyError(
          `lock ${this.key(collection)} stayed held for ${Math.round((this.clock.now() - started) / 1000)}s (${collisions} attempts; holder ${holder?.owner ?? 'unknown'}, fence ${holder?.fence ?? '?'})`,
        );
      }
      await this.clock.sleep(
        Math.min(backoff, Math.max(0, deadline - this.clock.now())) * (0.5 + Math.random() / 2),
      );
      backoff = Math.min(backoff * 2, 500);
    }
  }

  private hold(
    collection: string,
    acquired: { owner: string; fence: number; sentAt: number },
    started: number,
    collisions: number,
  ): HeldLock {
    const { owner, fence } = acquired;
    const key = this.key(collection);
    const stop = new AbortController();
    let renewedAt = acquired.sentAt;
    const validUntil = () => renewedAt + this.leaseMs - this.marginMs;
    let takenOver = false;
    const held: HeldLock = {
      collection,
      owner,
      fence,
      acquiredAt: this.clock.now(),
      acquireMs: this.clock.now() - started,
      collisions,
      heartbeatFailures: 0,
      valid: () => !takenOver && this.clock.now() < validUntil(),
      assertHeld: () => {
        if (takenOver)
          throw new LeaseLostError(`lease on ${key} (fence ${fence}) was taken over by another owner`);
        if (this.clock.now() >= validUntil()) {
          throw new LeaseLostError(
            `lease on ${key} (fence ${fence}) ran out: not renewed for ${Math.round((this.clock.now() - renewedAt) / 1000)}s (${held.heartbeatFailures} failed heartbeats)`,
          );
        }
      },
      release: async () => {
        stop.abort();
        await beating;
        const heldMs = this.clock.now() - held.acquiredAt;
        if (!takenOver) await this.releaseOwned(collection, owner, fence).catch(() => false);
        return heldMs;
      },
    };

    const beat = async (): Promise<void> => {
      while (!stop.signal.aborted) {
        await this.clock.sleep(this.options.heartbeatSeconds * 1000, stop.signal);
        if (stop.signal.aborted) return;
        const sentAt = this.clock.now();
        const expiresAt = sentAt + this.leaseMs;
        try {
          const outcome = await putVerified(this.items, this.clock, {
            key,
            item: { owner, fence, expiresAt, acquiredAt: held.acquiredAt, ttl: this.ttl(sentAt) },
            condition: when.and(when.equals('owner', owner), when.equals('fence', fence)),
            isOurs: (stored) => stored?.owner === owner && stored.expiresAt === expiresAt,
            what: `lock ${key} heartbeat`,
          });
          if (!outcome.written) {
            takenOver = true;
            return;
          }
          renewedAt = sentAt;
        } catch (error) {
          held.heartbeatFailures++;
          this.options.onHeartbeatFailure?.({
            collection,
            owner,
            error,
            remainingMs: validUntil() - this.clock.now(),
          });
        }
      }
    };
    const beating = beat();
    return held;
  }

  /** Clears the owner if it is still `owner`; false when someone else holds it now. */
  async releaseOwned(collection: string, owner: string, fence: number): Promise<boolean> {
    const now = this.clock.now();
    const outcome = await putVerified(this.items, this.clock, {
      key: this.key(collection),
      item: { fence, expiresAt: 0, ttl: this.ttl(now) },
      condition: when.and(when.equals('owner', owner), when.equals('fence', fence)),
      isOurs: (stored) => stored !== undefined && stored.owner === undefined && stored.fence === fence,
      what: `lock ${this.key(collection)} release`,
    });
    return outcome.written;
  }

  async list(): Promise<LockInfo[]> {
    const now = this.clock.now();
    const { prefix, suffix } = this.naming;
    const found = await this.items.scan(prefix);
    return found
      .filter(({ key, item }) => key.endsWith(suffix) && item.owner !== undefined)
      .map(({ key, item }) => {
        const lock = item as LockItem;
        const remainingMs = Number(lock.expiresAt) - now;
        return {
          lockId: key,
          collection: key.slice(prefix.length, -suffix.length),
          owner: String(lock.owner),
          fence: Number(lock.fence),
          ageMs: now - Number(lock.acquiredAt),
          remainingMs: Math.max(0, remainingMs),
          expired: remainingMs <= 0,
        };
      })
      .sort((a, b) => a.lockId.localeCompare(b.lockId));
  }

  private ttl(now: number): number {
    return Math.ceil((now + this.leaseMs) / 1000) + TTL_AFTER_LEASE_SECONDS;
  }
}
