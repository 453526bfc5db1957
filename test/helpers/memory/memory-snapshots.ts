import { randomUUID } from 'node:crypto';
import { StorageError } from '../../../lambdas/core/errors.ts';
import {
  type ChangeSetBody,
  type ChangeSetStore,
  newChangeSetKey,
  type StreamChange,
  type WrittenChangeSet,
} from '../../../lambdas/core/protocol/change-sets.ts';
import type { Pointer } from '../../../lambdas/core/protocol/pointer.ts';
import type { SnapshotBuilder, SnapshotObjects, Workspace } from '../../../lambdas/core/protocol/ports.ts';
import { TrackedIds } from '../../../lambdas/core/protocol/tracked-ids.ts';
import { type Presence, presenceOfOps } from '../../../lambdas/core/records/presence.ts';
import type {
  RecordTarget,
  StoredRecord,
  UpdateRow,
  UpsertRow,
} from '../../../lambdas/core/records/record-target.ts';
import type { Metadata, RecordOp } from '../../../lambdas/core/records/records.ts';
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

  readonly ids = new Map<string, ReadonlySet<string>>();

  async putIds(snapshotKey: string, ids: Iterable<string>): Promise<void> {
    this.ids.set(snapshotKey, new Set(ids));
  }

  async getIds(snapshotKey: string): Promise<ReadonlySet<string> | null> {
    return this.ids.get(snapshotKey) ?? null;
  }

  read(key: string): ReadonlyMap<string, MemoryRecord> {
    const content = this.objects.get(key);
    if (!content) throw new StorageError(`memory://${key} does not exist`);
    return content;
  }
}

/** Workspaces in memory: the base snapshot's records copied into a map; an upload stores a copy of it. */
export class MemorySnapshotBuilder implements SnapshotBuilder {
  opened = 0;
  closed = 0;
  uploads = 0;
  /** Called after each upload, before it returns: a test may publish something else meanwhile. */
  afterUpload?: (key: string) => Promise<void>;

  constructor(
    private readonly snapshots: MemorySnapshots,
    private readonly random: () => number = Math.random,
  ) {}

  async open(base: Pointer): Promise<Workspace> {
    this.opened++;
    const records = new Map(base.snapshotKey ? this.snapshots.read(base.snapshotKey) : []);
    await jitter(this.random);
    const ids = new TrackedIds(async () =>
      base.snapshotKey ? ((await this.snapshots.getIds(base.snapshotKey)) ?? records.keys()) : [],
    );
    const target = ids.track(new MemoryCollection(base.collection, records));
    return {
      cacheHit: false,
      target: async () => target,
      ids: () => ids.current(),
      upload: async (version, label) => {
        this.uploads++;
        const key = snapshotKey(base.collection, version, `${label}-${randomUUID().slice(0, 8)}`);
        await jitter(this.random);
        this.snapshots.objects.set(key, new Map(records));
        await this.afterUpload?.(key);
        return key;
      },
      close: async () => {
        this.closed++;
      },
    };
  }
}

/** Change sets in memory, with the same two kinds as in S3. */
type StoredChangeSet =
  | { kind: 'ops'; dimension: number | null; ops: RecordOp[] }
  | { kind: 'messages'; messages: StreamChange[] };

export class MemoryChangeSets implements ChangeSetStore {
  readonly objects = new Map<string, StoredChangeSet>();
  readonly deleted: string[] = [];
  readonly writtenAt = new Map<string, number>();

  constructor(
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  async list(collection: string): Promise<{ key: string; modifiedAt: number }[]> {
    return [...this.objects.keys()]
      .filter((key) => key.startsWith(`changesets/${collection}/`))
      .map((key) => ({ key, modifiedAt: this.writtenAt.get(key) ?? 0 }));
  }

  async writeOps(
    collection: string,
    label: string,
    ops: AsyncIterable<RecordOp> | Iterable<RecordOp>,
    dimension: number | null,
  ): Promise<WrittenChangeSet> {
    const all: RecordOp[] = [];
    for await (const op of ops) all.push(op);
    await jitter(this.random);
    const key = newChangeSetKey(collection, label, 'arrow');
    this.objects.set(key, { kind: 'ops', dimension, ops: all });
    this.writtenAt.set(key, this.now());
    return { key, kind: 'ops', records: all.length, dimension };
  }

  async copySegments(): Promise<WrittenChangeSet> {
    throw new Error('segments live in S3: the in-memory tests commit ops change sets');
  }

  async writeMessages(
    collection: string,
    label: string,
    messages: StreamChange[],
  ): Promise<WrittenChangeSet> {
    await jitter(this.random);
    const key = newChangeSetKey(collection, label, 'json');
    this.objects.set(key, { kind: 'messages', messages: structuredClone(messages) });
    this.writtenAt.set(key, this.now());
    const first = messages.flatMap((message) => message.ops).find((op) => op.op === 'upsert');
    return {
      key,
      kind: 'messages',
      records: messages.reduce((sum, message) => sum + message.ops.length, 0),
      dimension: first?.op === 'upsert' ? first.embedding.length : null,
    };
  }

  /** What prefetch took: kept even if the object is deleted before the read, as in S3. */
  private readonly fetched = new Map<string, StoredChangeSet | undefined>();

  async prefetch(keys: string[]): Promise<void> {
    for (const key of keys) {
      this.fetched.set(key, this.objects.get(key));
    }
  }

  dropPrefetched(keys: string[]): void {
    for (const key of keys) this.fetched.delete(key);
  }

  async read(key: string): Promise<ChangeSetBody> {
    await jitter(this.random);
    const stored = this.fetched.has(key) ? this.fetched.get(key) : this.objects.get(key);
    this.fetched.delete(key);
    if (!stored) throw new StorageError(`memory://${key} does not exist`);
    if (stored.kind === 'messages') return { kind: 'messages', messages: structuredClone(stored.messages) };
    const ops = stored.ops;
    return {
      kind: 'ops',
      dimension: stored.dimension,
      ops: (async function* () {
        yield* ops;
      })(),
    };
  }

  async presence(key: string): Promise<Presence | null> {
    await jitter(this.random);
    const stored = this.objects.get(key);
    return stored?.kind === 'ops' ? presenceOfOps(stored.ops) : null;
  }

  async deleteKeys(keys: string[]): Promise<void> {
    for (const key of keys) if (this.objects.delete(key)) this.deleted.push(key);
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

  async insert(rows: UpsertRow[]): Promise<void> {
    // Chroma's add skips an id it holds: a caller that did not look first would lose the write.
    const held = rows.find((row) => this.records.has(row.id));
    if (held) throw new Error(`insert of "${held.id}", which the collection already holds`);
    await this.upsert(rows);
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

  async allIds(): Promise<string[]> {
    return [...this.records.keys()];
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
