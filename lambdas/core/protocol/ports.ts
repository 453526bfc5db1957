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
      // Not unref'd: a wait inside the protocol (a publisher waiting for a build, a lock backoff)
      // is what keeps a process with nothing else to do alive; heartbeats stop through `signal`.
      const timer = setTimeout(done, Math.max(0, ms));
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
  /** Strongly consistent reads of many items (missing ones are absent from the map). */
  getMany(keys: string[]): Promise<Map<string, Item>>;
  /** Unconditional writes of many items (idempotency records, outcomes: values every writer agrees on). */
  putMany(items: { key: string; item: Item }[]): Promise<void>;
  /** Every item whose key starts with `prefix`, in no particular order (listings, not the protocol). */
  scan(prefix: string): Promise<{ key: string; item: Item }[]>;
}

/**
 * An open, private copy of a published snapshot that folds apply to. It stays open across folds:
 * after an upload the next fold continues on the same copy (a lost swap replays, never rebuilds).
 */
export interface Workspace {
  /** The copy as a record target (the server is started again after an upload stopped it). */
  target(): Promise<RecordTarget>;
  /** Packs the copy as it is now and uploads it to a new immutable key for `version`. */
  upload(version: number, label: string): Promise<string>;
  /** The ids the copy holds now. */
  ids(): Promise<ReadonlySet<string>>;
  readonly cacheHit: boolean;
  close(): Promise<void>;
}

/** Phase B's starting point: a private copy of the snapshot `base` names (empty for version 0). */
export interface SnapshotBuilder {
  open(base: Pointer): Promise<Workspace>;
}

/** Phase D: the snapshot objects of a collection, and the local cache of unpacked ones. */
export interface SnapshotObjects {
  listKeys(collection: string): Promise<string[]>;
  deleteKeys(keys: string[]): Promise<number>;
  /** Drops cached copies of every version not in `keep`; a copy being read is never removed under its reader. */
  pruneCache(collection: string, keep: string[]): Promise<void>;
  /** The ids a published snapshot holds, stored beside it (null when none were stored). */
  putIds(snapshotKey: string, ids: Iterable<string>): Promise<void>;
  getIds(snapshotKey: string): Promise<ReadonlySet<string> | null>;
}

/** A snapshot archive's extension: `.tar.zst`, or `.tar` for one written before snapshots were compressed. */
const ARCHIVE_EXTENSION = /\.tar(\.zst)?$/;

export const isSnapshotArchive = (key: string) => ARCHIVE_EXTENSION.test(key);

/** Whether a snapshot archive is zstd-compressed (its key says so). */
export const isCompressedArchive = (key: string) => key.endsWith('.tar.zst');

/** A snapshot's key without its archive extension: what names it in the cache. */
export const snapshotStem = (snapshotKey: string) => snapshotKey.replace(ARCHIVE_EXTENSION, '');

/** Where the ids of a snapshot are stored: beside it. */
export const idsKeyOf = (snapshotKey: string) => `${snapshotStem(snapshotKey)}.ids.gz`;
