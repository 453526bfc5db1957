import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import {
  CHANGESET_PREFIX,
  type ChangeSetBody,
  type ChangeSetStore,
  newChangeSetKey,
  type StreamChange,
  type WrittenChangeSet,
} from '../protocol/change-sets.ts';
import { combinePresence, type Presence } from '../records/presence.ts';
import type { RecordOp } from '../records/records.ts';
import { mergeSortedStreams, openSegment, writeSegmentFile } from '../records/segments.ts';
import { BoundedCache } from './bounded-cache.ts';
import type { ObjectStore } from './object-store.ts';
import { readPresence, uploadSegment, writePresence } from './segment-objects.ts';

const MESSAGE_SETS_CACHED = 500;
const PRESENCES_CACHED = 50;

/** Change sets in S3: `changesets/{collection}/{label}-{nonce}.arrow` (ops) or `.json` (messages). */
export class S3ChangeSetStore implements ChangeSetStore {
  /** Message change sets are immutable and small: stream commits re-read the pending ones often. */
  private readonly messages = new BoundedCache<string, StreamChange[]>(MESSAGE_SETS_CACHED);
  /** Presences are immutable too: every stream commit checks its updates against the pending runs'. */
  private readonly presences = new BoundedCache<string, Presence>(PRESENCES_CACHED);

  /** Ops change sets fetched ahead of their read (prefetch), each taken by one read. */
  private readonly fetched = new Map<string, Promise<FetchedOps>>();

  constructor(private readonly objects: ObjectStore) {}

  async writeOps(
    collection: string,
    label: string,
    ops: AsyncIterable<RecordOp> | Iterable<RecordOp>,
    dimension: number | null,
  ): Promise<WrittenChangeSet> {
    const key = newChangeSetKey(collection, label, 'arrow');
    const dir = await mkdtemp(join(tmpdir(), 'embedflow-changeset-'));
    try {
      const file = join(dir, 'changeset.arrow');
      const info = await writeSegmentFile(file, ops, dimension);
      await uploadSegment(this.objects, key, file, info.presence);
      this.presences.set(key, info.presence);
      return { key, kind: 'ops', records: info.records, dimension };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async writeMessages(
    collection: string,
    label: string,
    messages: StreamChange[],
  ): Promise<WrittenChangeSet> {
    const key = newChangeSetKey(collection, label, 'json');
    await this.objects.uploadStream(
      key,
      Buffer.from(JSON.stringify({ messages: messages.map(encodeMessage) })),
      'application/json',
    );
    // The writer is often the one that folds it next (a stream invocation settles its own commit).
    this.messages.set(key, messages);
    const records = messages.reduce((sum, message) => sum + message.ops.length, 0);
    const dimension = messages.flatMap((message) => message.ops).find((op) => op.op === 'upsert');
    return {
      key,
      kind: 'messages',
      records,
      dimension: dimension?.op === 'upsert' ? dimension.embedding.length : null,
    };
  }

  async copySegments(
    collection: string,
    label: string,
    segments: { key: string; records: number }[],
    dimension: number | null,
  ): Promise<WrittenChangeSet> {
    const key = newChangeSetKey(collection, label, 'segments.json');
    const partsPrefix = key.replace(/\.json$/, '');
    const limit = pLimit(4);
    const [parts, presences] = await Promise.all([
      Promise.all(
        segments.map((segment, index) =>
          limit(async () => {
            const part = `${partsPrefix}/part-${String(index).padStart(5, '0')}.arrow`;
            await this.objects.copy(segment.key, part);
            return part;
          }),
        ),
      ),
      Promise.all(segments.map((segment) => limit(() => readPresence(this.objects, segment.key)))),
    ]);
    // Without every segment's presence the change set has none: a stream commit then waits for it.
    const presence = presences.every((one) => one !== null) ? combinePresence(presences) : undefined;
    await Promise.all([
      this.objects.putJson(key, { parts, dimension }),
      presence && writePresence(this.objects, key, presence),
    ]);
    if (presence) this.presences.set(key, presence);
    const records = segments.reduce((sum, segment) => sum + segment.records, 0);
    return { key, kind: 'ops', records, dimension };
  }

  async prefetch(keys: string[]): Promise<void> {
    const started: Promise<unknown>[] = [];
    for (const key of keys) {
      if (this.fetched.has(key) || !isOpsKey(key)) continue;
      const fetching = this.fetchOps(key, (part) => this.objects.getBytes(part));
      this.fetched.set(key, fetching);
      started.push(fetching.catch(() => {})); // the read that takes it sees the failure
    }
    await Promise.all(started);
  }

  dropPrefetched(keys: string[]): void {
    for (const key of keys) this.fetched.delete(key);
  }

  /** An ops change set's parts, each as whatever `load` gives (a stream, or the fetched bytes). */
  private async fetchOps<Part extends Buffer | Readable>(
    key: string,
    load: (part: string) => Promise<Part>,
  ): Promise<{ dimension: number | null | undefined; parts: Part[] }> {
    if (!key.endsWith('.segments.json')) return { dimension: undefined, parts: [await load(key)] };
    const manifest = await this.objects.getJson<{ parts: string[]; dimension: number | null }>(key);
    const limit = pLimit(4);
    const parts = await Promise.all(manifest.parts.map((part) => limit(() => load(part))));
    return { dimension: manifest.dimension, parts };
  }

  async read(key: string): Promise<ChangeSetBody> {
    if (isOpsKey(key)) {
      const ahead = this.fetched.get(key);
      this.fetched.delete(key);
      const { dimension, parts } = ahead
        ? await ahead
        : await this.fetchOps(key, (part) => this.objects.getStream(part));
      const opened = await Promise.all(
        parts.map((part) => openSegment(Buffer.isBuffer(part) ? Readable.from([part]) : part)),
      );
      const ops =
        opened.length === 1 ? opened[0]!.rows : mergeSortedStreams(opened.map((segment) => segment.rows));
      // A single segment's schema carries its dimension; a copied run's manifest records it.
      return { kind: 'ops', dimension: dimension === undefined ? opened[0]!.dimension : dimension, ops };
    }
    let messages = this.messages.get(key);
    if (!messages) {
      const parsed = JSON.parse(await this.objects.getText(key)) as { messages: EncodedMessage[] };
      messages = parsed.messages.map(decodeMessage);
      this.messages.set(key, messages);
    }
    return { kind: 'messages', messages };
  }

  async presence(key: string): Promise<Presence | null> {
    const known = this.presences.get(key);
    if (known) return known;
    const presence = await readPresence(this.objects, key);
    if (presence) this.presences.set(key, presence);
    return presence;
  }

  async list(collection: string): Promise<{ key: string; modifiedAt: number }[]> {
    return (await this.objects.listObjects(`${CHANGESET_PREFIX}${collection}/`)).map((object) => ({
      key: object.key,
      modifiedAt: object.lastModified,
    }));
  }

  async deleteKeys(keys: string[]): Promise<void> {
    const parts = await Promise.all(
      keys
        .filter((key) => key.endsWith('.segments.json'))
        .map((key) => this.objects.listKeys(`${key.replace(/\.json$/, '')}/`)),
    );
    await this.objects.deleteKeys([...keys, ...parts.flat()]);
  }
}

type FetchedOps = { dimension: number | null | undefined; parts: Buffer[] };

/** Ops change sets are one segment (`.arrow`) or a run's copied segments (`.segments.json`); messages are `.json`. */
const isOpsKey = (key: string) => !key.endsWith('.json') || key.endsWith('.segments.json');

type EncodedOp = Omit<RecordOp, 'embedding'> & { embedding?: number[] };
interface EncodedMessage {
  messageId: string;
  needsRecords: boolean;
  ops: EncodedOp[];
}

function encodeMessage(message: StreamChange): EncodedMessage {
  return {
    ...message,
    ops: message.ops.map((op) => (op.op === 'upsert' ? { ...op, embedding: Array.from(op.embedding) } : op)),
  };
}

function decodeMessage(message: EncodedMessage): StreamChange {
  return {
    ...message,
    ops: message.ops.map((op) =>
      op.op === 'upsert'
        ? ({ ...op, embedding: Float32Array.from(op.embedding ?? []) } as RecordOp)
        : (op as RecordOp),
    ),
  };
}
