import { randomUUID } from 'node:crypto';
import { putVerified, readConsistently } from './conditional-write.ts';
import { type Clock, type Condition, type Item, type ItemStore, systemClock, when } from './ports.ts';
import { type RetiredRange, retire } from './retention.ts';

/** One published snapshot version as the pointer remembers it. */
export interface SnapshotVersion {
  version: number;
  key: string;
  recordCount: number;
  dimension: number | null;
  /** The run (or rollback) it published, when it folded exactly one; null otherwise. */
  runId: string | null;
  /** The last log entry it contains. */
  seq: number;
  /** How many log entries this version folded. */
  entries: number;
  createdAt: string;
}

/**
 * The single item per collection that says which snapshot is live and how far into the commit
 * log it is (`publishedSeq`). `version` counts published snapshots; `revision` counts every write
 * of the item (a fold that changed nothing only advances `publishedSeq`) and is what the swap
 * compares, so no write is ever based on a stale read. `writeId` is unique per write: after an
 * ambiguous write it tells whether the stored item is ours. It stays small whatever the history:
 * applied run and message ids live in their own items (applied.ts).
 */
export interface Pointer {
  collection: string;
  version: number;
  revision: number;
  writeId: string;
  snapshotKey: string | null;
  recordCount: number;
  dimension: number | null;
  updatedAt: string;
  /** Every log entry up to this one is in the live snapshot. */
  publishedSeq: number;
  /** The retained versions, newest first (the last SNAPSHOT_RETENTION). */
  history: SnapshotVersion[];
  /** Versions that left `history`, and when: they are kept SNAPSHOT_RETENTION_MINUTES more. */
  retired: RetiredRange[];
}

export interface Retention {
  versions: number;
  minutes: number;
}

export function emptyPointer(collection: string): Pointer {
  return {
    collection,
    version: 0,
    revision: 0,
    writeId: '',
    snapshotKey: null,
    recordCount: 0,
    dimension: null,
    updatedAt: new Date(0).toISOString(),
    publishedSeq: 0,
    history: [],
    retired: [],
  };
}

export const pointerKey = (collection: string) => `pointer#${collection}`;
const POINTER_PREFIX = 'pointer#';

export type SwapOutcome = { swapped: true } | { swapped: false; head: Pointer };

export class PointerStore {
  constructor(
    private readonly items: ItemStore,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Strongly consistent: every decision of the protocol is taken on the stored state. */
  async read(collection: string): Promise<Pointer> {
    const item = await readConsistently(
      this.items,
      this.clock,
      pointerKey(collection),
      `pointer of "${collection}"`,
    );
    return toPointer(collection, item);
  }

  /**
   * The fence of the protocol: writes `next` only if the stored pointer is still `base`
   * (same revision). Decided by what is stored: an applied write whose response was lost is a swap.
   */
  async swap(base: Pointer, next: Pointer): Promise<SwapOutcome> {
    const outcome = await putVerified(this.items, this.clock, {
      key: pointerKey(next.collection),
      item: next as unknown as Item,
      condition: baseCondition(base),
      isOurs: (stored) => stored?.writeId === next.writeId,
      what: `pointer of "${next.collection}" revision ${base.revision} -> ${next.revision}`,
    });
    if (outcome.written) return { swapped: true };
    return { swapped: false, head: toPointer(next.collection, outcome.stored) };
  }

  /** Collections that have published a snapshot (an item that only recorded message ids is not one). */
  async listCollections(): Promise<Pointer[]> {
    const found = await this.items.scan(POINTER_PREFIX);
    return found
      .map(({ key, item }) => toPointer(key.slice(POINTER_PREFIX.length), item))
      .filter((pointer) => pointer.version > 0)
      .sort((a, b) => a.collection.localeCompare(b.collection));
  }
}

function baseCondition(base: Pointer): Condition {
  if (base.revision === 0) return when.absent();
  return when.equals('revision', base.revision);
}

function toPointer(collection: string, item: Item | undefined): Pointer {
  if (!item) return emptyPointer(collection);
  return { ...emptyPointer(collection), ...(item as Partial<Pointer>), collection };
}

/** The pointer that publishing `published` (the log folded up to `published.seq`) on top of `base` writes. */
export function nextPointer(
  base: Pointer,
  published: Omit<SnapshotVersion, 'version' | 'createdAt'>,
  retention: Retention,
  now = new Date(),
): Pointer {
  const version = base.version + 1;
  const entry: SnapshotVersion = { ...published, version, createdAt: now.toISOString() };
  const history = [entry, ...base.history];
  return {
    ...advancedPointer(base, published.seq, now),
    version,
    snapshotKey: published.key,
    recordCount: published.recordCount,
    dimension: published.dimension ?? base.dimension,
    history: history.slice(0, retention.versions),
    retired: retire(base.retired, history.slice(retention.versions), now, retention.minutes),
  };
}

/** A fold that changed nothing (deletes of ids already gone, duplicates) still moves past its entries. */
export function advancedPointer(base: Pointer, publishedSeq: number, now = new Date()): Pointer {
  return {
    ...base,
    revision: base.revision + 1,
    writeId: randomUUID(),
    updatedAt: now.toISOString(),
    publishedSeq,
  };
}

/** The first retained version that contains entry `seq`: the one that published it (none: a fold that changed nothing). */
export function versionWith(head: Pointer, seq: number): Pointer['history'][number] | undefined {
  if (head.publishedSeq < seq) return undefined;
  return [...head.history].reverse().find((entry) => entry.seq >= seq);
}
