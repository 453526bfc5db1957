import type { ApplyStats } from '../records/apply-ops.ts';
import type { RecordTarget } from '../records/record-target.ts';
import type { Pointer } from './pointer.ts';

/**
 * The ports of the publish protocol: what it needs from the outside world, and nothing more.
 * DynamoDB and S3 adapters implement them in production (lambdas/core/storage/), in-memory
 * adapters that inject faults implement them in the tests (test/helpers/memory/).
 */

/** Time, injectable: leases and heartbeats are tested against a manual clock and skewed clocks. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts (a stopped heartbeat must not keep a process alive). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref?.();
      signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
    }),
};

/** One stored item: a flat record of JSON values under a string key. */
export type Item = Record<string, unknown>;
export type Scalar = string | number;

/**
 * A condition on the stored item, small enough to evaluate here (after an ambiguous write, and in
 * the in-memory store) and to translate into a DynamoDB ConditionExpression.
 */
export type Condition =
  | { kind: 'absent' }
  | { kind: 'equals'; attr: string; value: Scalar }
  | { kind: 'missing'; attr: string }
  | { kind: 'lessThan'; attr: string; value: number }
  | { kind: 'and'; of: Condition[] }
  | { kind: 'or'; of: Condition[] };

export const when = {
  absent: (): Condition => ({ kind: 'absent' }),
  equals: (attr: string, value: Scalar): Condition => ({ kind: 'equals', attr, value }),
  missing: (attr: string): Condition => ({ kind: 'missing', attr }),
  lessThan: (attr: string, value: number): Condition => ({ kind: 'lessThan', attr, value }),
  and: (...of: Condition[]): Condition => ({ kind: 'and', of }),
  or: (...of: Condition[]): Condition => ({ kind: 'or', of }),
};

/** Whether `condition` holds for `stored` (undefined: no item), exactly as DynamoDB decides it. */
export function holds(condition: Condition, stored: Item | undefined): boolean {
  switch (condition.kind) {
    case 'absent':
      return stored === undefined;
    case 'equals':
      return stored !== undefined && stored[condition.attr] === condition.value;
    case 'missing':
      return stored === undefined || stored[condition.attr] === undefined;
    case 'lessThan': {
      const value = stored?.[condition.attr];
      return typeof value === 'number' && value < condition.value;
    }
    case 'and':
      return condition.of.every((part) => holds(part, stored));
    case 'or':
      return condition.of.some((part) => holds(part, stored));
  }
}

/**
 * Single-item storage with conditional writes and strongly consistent reads: all the protocol
 * asks of DynamoDB. `put` and `delete` resolve false when the condition failed, and throw for
 * anything else: a thrown write may or may not have been applied (see conditional-write.ts).
 */
export interface ItemStore {
  get(key: string): Promise<Item | undefined>;
  put(key: string, item: Item, condition?: Condition): Promise<boolean>;
  delete(key: string, condition?: Condition): Promise<boolean>;
  /** Every item whose key starts with `prefix`, in no particular order (listings, not the protocol). */
  scan(prefix: string): Promise<{ key: string; item: Item }[]>;
}

/**
 * A change a publish applies on top of a snapshot. It must be idempotent (upserts, deletes,
 * merges of metadata) because a rebase applies it again on a newer head. `alreadyApplied` holds
 * the stream message ids the base snapshot already contains: those must be skipped.
 */
export interface Change {
  /** The batch run (or rollback) this change is: recorded, so re-running it changes nothing. Stream changes have none. */
  runId?: string;
  /** Stream message ids this change carries; a stream change is identified by these alone. */
  messageIds?: string[];
  /** Names the snapshot objects and log lines: the run id, or `stream`. */
  label: string;
  apply(
    target: RecordTarget,
    dimension: number | null,
    alreadyApplied: ReadonlySet<string>,
  ): Promise<ApplyStats>;
}

export interface BuiltSnapshot {
  /** null when the change changed nothing: there is nothing to publish, only ids to record. */
  key: string | null;
  recordCount: number;
  dimension: number | null;
  stats: ApplyStats;
  cacheHit: boolean;
}

/** Phase B: the current snapshot plus a change, validated and uploaded to a new immutable key. */
export interface SnapshotBuilder {
  build(base: Pointer, change: Change): Promise<BuiltSnapshot>;
}

/** Phase D: the snapshot objects of a collection, and the local cache of unpacked ones. */
export interface SnapshotObjects {
  listKeys(collection: string): Promise<string[]>;
  deleteKeys(keys: string[]): Promise<number>;
  /** Drops cached copies of every version not in `keep`; a copy being read is never removed under its reader. */
  pruneCache(collection: string, keep: string[]): Promise<void>;
}
