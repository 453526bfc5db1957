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
  /** The batch run (or rollback) that published it; null for a stream batch. */
  runId: string | null;
  createdAt: string;
}

/**
 * The single item per collection that says which snapshot is live. `version` counts published
 * snapshots; `revision` counts every write of the item (a write may only record message ids) and
 * is what the swap compares, so no write is ever based on a stale read. `writeId` is unique per
 * write: after an ambiguous write it tells whether the stored item is ours.
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
  recentRunIds: string[];
  /** Stream messages applied recently, so a redelivered message is applied once. */
  recentMessageIds: string[];
  /** The retained versions, newest first (the last SNAPSHOT_RETENTION). */
  history: SnapshotVersion[];
  /** Versions that left `history`, and when: they are kept SNAPSHOT_RETENTION_MINUTES more. */
  retired: RetiredRange[];
}

export const RECENT_RUN_IDS_KEPT = 500;
export const RECENT_MESSAGE_IDS_KEPT = 2000;

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
    recentRunIds: [],
    recentMessageIds: [],
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

/** The pointer that publishing `published` on top of `base` writes. */
export function nextPointer(
  base: Pointer,
  published: Omit<SnapshotVersion, 'version' | 'createdAt'>,
  retention: Retention,
  appliedMessageIds: string[] = [],
  now = new Date(),
): Pointer {
  const version = base.version + 1;
  const entry: SnapshotVersion = { ...published, version, createdAt: now.toISOString() };
  const history = [entry, ...base.history];
  const kept = history.slice(0, retention.versions);
  const left = history.slice(retention.versions);
  return {
    ...recorded(base, published.runId, appliedMessageIds, now),
    version,
    snapshotKey: published.key,
    recordCount: published.recordCount,
    dimension: published.dimension ?? base.dimension,
    history: kept,
    retired: retire(base.retired, left, now, retention.minutes),
  };
}

/** A write that records a run id or message ids without publishing a new snapshot (a change that changed nothing). */
export function recordedPointer(
  base: Pointer,
  runId: string | null,
  appliedMessageIds: string[],
  now = new Date(),
): Pointer {
  return recorded(base, runId, appliedMessageIds, now);
}

function recorded(base: Pointer, runId: string | null, messageIds: string[], now: Date): Pointer {
  return {
    ...base,
    revision: base.revision + 1,
    writeId: randomUUID(),
    updatedAt: now.toISOString(),
    recentRunIds: runId
      ? [runId, ...base.recentRunIds.filter((id) => id !== runId)].slice(0, RECENT_RUN_IDS_KEPT)
      : base.recentRunIds,
    recentMessageIds: [...messageIds, ...base.recentMessageIds].slice(0, RECENT_MESSAGE_IDS_KEPT),
  };
}

export function appliedMessageIds(pointer: Pointer): ReadonlySet<string> {
  return new Set(pointer.recentMessageIds);
}
