import { randomUUID } from 'node:crypto';
import { StorageError } from '../../../lambdas/core/errors.ts';
import type { Pointer } from '../../../lambdas/core/protocol/pointer.ts';
import type {
  BuiltSnapshot,
  Change,
  SnapshotBuilder,
  SnapshotObjects,
} from '../../../lambdas/core/protocol/ports.ts';
import { changedAnything, validateApplied } from '../../../lambdas/core/records/apply-ops.ts';
import type {
  RecordTarget,
  StoredRecord,
  UpdateRow,
  UpsertRow,
} from '../../../lambdas/core/records/record-target.ts';
import type { Metadata } from '../../../lambdas/core/records/records.ts';
import { SNAPSHOT_PREFIX, snapshotKey } from '../../../lambdas/core/storage/snapshot-store.ts';
import { jitter } from './random.ts';

/** A record as the in-memory snapshots hold it. */
export interface MemoryRecord {
  embedding: Float32Array;
  document?: string;
  metadata: Metadata | null;
}

/** Snapshot objects in memory: every uploaded snapshot is an immutable map of records. */
export class MemorySnapshots implements SnapshotObjects {
  readonly objects = new Map<string, ReadonlyMap<string, MemoryRecord>>();
  readonly deleted: string[] = [];

  constructor(private readonly random: () => number = Math.random) {}

  async listKeys(collection: string): Promise<string[]> {
    await jitter(this.random);
    return [...this.objects.keys()]
      .filter((key) => key.startsWith(`${SNAPSHOT_PREFIX}${collection}/`))
      .sort();
  }

  async deleteKeys(keys: string[]): Promise<number> {
    await jitter(this.random);
    for (const key of keys) {
      if (this.objects.delete(key)) this.deleted.push(key);
    }
    return keys.length;
  }

  async pruneCache(): Promise<void> {}

  read(key: string): ReadonlyMap<string, MemoryRecord> {
    const content = this.objects.get(key);
    if (!content) throw new StorageError(`memory://${key} does not exist`);
    return content;
  }
}

/** Phase B in memory: the base snapshot's records, the change applied through a RecordTarget, a new object. */
export class MemorySnapshotBuilder implements SnapshotBuilder {
  builds = 0;
  /** Called after each upload, before the builder returns: a test may publish something else meanwhile. */
  afterUpload?: (change: Change) => Promise<void>;

  constructor(
    private readonly snapshots: MemorySnapshots,
    private readonly random: () => number = Math.random,
  ) {}

  async build(base: Pointer, change: Change): Promise<BuiltSnapshot> {
    this.builds++;
    const records = new Map(base.snapshotKey ? this.snapshots.read(base.snapshotKey) : []);
    await jitter(this.random);
    const target = new MemoryCollection(base.collection, records);
    const countBefore = await target.count();
    const stats = await change.apply(target, base.dimension, new Set(base.recentMessageIds));
    const recordCount = await validateApplied(target, countBefore, stats);
    const dimension = stats.dimension ?? base.dimension;
    if (!changedAnything(stats)) return { key: null, recordCount, dimension, stats, cacheHit: false };
    const key = snapshotKey(base.collection, base.version + 1, `${change.label}-${randomUUID().slice(0, 8)}`);
    await jitter(this.random);
    this.snapshots.objects.set(key, records);
    await this.afterUpload?.(change);
    return { key, recordCount, dimension, stats, cacheHit: false };
  }
}

/** A RecordTarget over a Map, with Chroma's semantics for what the protocol relies on. */
export class MemoryCollection implements RecordTarget {
  constructor(
    readonly name: string,
    readonly records: Map<string, MemoryRecord> = new Map(),
  ) {}

  async count(): Promise<number> {
    return this.records.size;
  }

  async get(ids: string[]): Promise<Map<string, StoredRecord>> {
    const found = new Map<string, StoredRecord>();
    for (const id of ids) {
      const record = this.records.get(id);
      if (record) found.set(id, { metadata: record.metadata });
    }
    return found;
  }

  async upsert(rows: UpsertRow[]): Promise<void> {
    for (const row of rows) {
      this.records.set(row.id, {
        embedding: row.embedding,
        ...(row.document !== undefined && { document: row.document }),
        metadata: row.metadata ?? null,
      });
    }
  }

  async delete(ids: string[]): Promise<void> {
    for (const id of ids) this.records.delete(id);
  }

  async update(rows: UpdateRow[]): Promise<void> {
    for (const row of rows) {
      const record = this.records.get(row.id);
      if (!record) continue; // Chroma ignores updates of missing ids
      this.records.set(row.id, {
        ...record,
        metadata: row.metadata,
        ...(row.document !== undefined && { document: row.document }),
      });
    }
  }

  async nearest(embedding: Float32Array): Promise<{ id: string; distance: number } | null> {
    let best: { id: string; distance: number } | null = null;
    for (const [id, record] of this.records) {
      const distance = cosineDistance(embedding, record.embedding);
      if (!best || distance < best.distance) best = { id, distance };
    }
    return best;
  }
}

function cosineDistance(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 1 : 1 - dot / Math.sqrt(na * nb);
}
