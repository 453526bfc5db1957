import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import {
  Field,
  FixedSizeList,
  Float32,
  Int8,
  makeData,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { BadInputError } from '../errors.ts';
import { type Presence, PresenceRecorder } from './presence.ts';
import { foldOps, type Metadata, type RecordOp } from './records.ts';

/**
 * A segment is the merged, deduplicated output of some deltas: an Arrow IPC stream sorted by id,
 * one row per id, with a fixed-size float32 list column for embeddings. Sorted rows make every
 * merge a streaming k-way pass with memory bounded by batch size, never an index rebuild.
 */
const BATCH_ROWS = 1024;
const OP_CODES = { upsert: 0, delete: 1, update: 2 } as const;
const OP_NAMES = ['upsert', 'delete', 'update'] as const;

export interface SegmentInfo {
  records: number;
  dimension: number | null;
  /** The ids it leaves present or absent: stored beside it (presence.ts). */
  presence: Presence;
}

function schemaFor(dimension: number | null): Schema {
  // Arrow has no zero-width fixed list: a segment of only deletes stores width 1 and dimension "none".
  const width = dimension ?? 1;
  return new Schema(
    [
      new Field('id', new Utf8(), false),
      new Field('op', new Int8(), false),
      new Field('embedding', new FixedSizeList(width, new Field('item', new Float32(), false)), false),
      new Field('document', new Utf8(), true),
      new Field('metadata', new Utf8(), true),
    ],
    new Map([['dimension', dimension === null ? 'none' : String(dimension)]]),
  );
}

function toBatch(schema: Schema, rows: RecordOp[], width: number): RecordBatch {
  const flat = new Float32Array(rows.length * width);
  rows.forEach((row, index) => {
    if (row.op === 'upsert') flat.set(row.embedding, index * width);
  });
  const embeddingType = schema.fields[2]!.type as FixedSizeList;
  const children = [
    vectorFromArray(
      rows.map((row) => row.id),
      new Utf8(),
    ).data[0]!,
    makeData({
      type: new Int8(),
      length: rows.length,
      data: Int8Array.from(rows, (row) => OP_CODES[row.op]),
    }),
    makeData({
      type: embeddingType,
      length: rows.length,
      child: makeData({ type: new Float32(), length: flat.length, data: flat }),
    }),
    vectorFromArray(
      rows.map((row) => (row.op === 'delete' ? null : (row.document ?? null))),
      new Utf8(),
    ).data[0]!,
    vectorFromArray(
      rows.map((row) => (row.op !== 'delete' && row.metadata ? JSON.stringify(row.metadata) : null)),
      new Utf8(),
    ).data[0]!,
  ];
  const struct = makeData({ type: new Struct(schema.fields), length: rows.length, children });
  return new RecordBatch(schema, struct);
}

/**
 * Writes ops (already sorted by id, one per id) to a local file. The dimension is checked on
 * every upsert: a segment never mixes dimensions.
 */
export async function writeSegmentFile(
  path: string,
  ops: Iterable<RecordOp> | AsyncIterable<RecordOp>,
  dimension: number | null,
): Promise<SegmentInfo> {
  const schema = schemaFor(dimension);
  const width = dimension ?? 1;
  const writer = new RecordBatchStreamWriter();
  const out = writer.toNodeStream().pipe(createWriteStream(path));
  let pending: RecordOp[] = [];
  let records = 0;
  let lastId: string | undefined;
  const presence = new PresenceRecorder();
  const flush = () => {
    if (pending.length > 0) writer.write(toBatch(schema, pending, width));
    pending = [];
  };
  for await (const op of ops) {
    if (lastId !== undefined && op.id <= lastId) throw new Error(`segment rows out of order at "${op.id}"`);
    lastId = op.id;
    if (op.op === 'upsert' && op.embedding.length !== dimension) {
      throw new BadInputError(
        `record "${op.id}" has dimension ${op.embedding.length}, but the rest of the run has dimension ${dimension}`,
      );
    }
    pending.push(op);
    presence.note(op);
    records++;
    if (pending.length >= BATCH_ROWS) flush();
  }
  flush();
  if (records === 0) writer.write(toBatch(schema, [], width));
  writer.finish();
  await finished(out);
  return { records, dimension, presence: presence.presence };
}

export type SegmentSource = AsyncIterable<Uint8Array> | NodeJS.ReadableStream;

/** Enough of a segment to hold its first message, the schema (five fields and the dimension). */
export const SEGMENT_HEADER_BYTES = 64 * 1024;

export interface OpenSegment {
  dimension: number | null;
  rows: AsyncGenerator<RecordOp>;
}

/** Opens a segment stream: the dimension is known from the schema before the first row is read. */
export async function openSegment(source: SegmentSource): Promise<OpenSegment> {
  const reader = await RecordBatchReader.from(source as AsyncIterable<Uint8Array>);
  await reader.open();
  const declared = reader.schema.metadata.get('dimension');
  const dimension = declared === undefined || declared === 'none' ? null : Number(declared);
  async function* rows(): AsyncGenerator<RecordOp> {
    for await (const batch of reader) {
      const ids = batch.getChildAt(0)!;
      const ops = batch.getChildAt(1)!;
      const embeddings = batch.getChildAt(2)!;
      const documents = batch.getChildAt(3)!;
      const metadatas = batch.getChildAt(4)!;
      const width = (embeddings.type as FixedSizeList).listSize;
      const flat = embeddings.data[0]!.children[0]!.values as Float32Array;
      const offset = embeddings.data[0]!.offset;
      for (let i = 0; i < batch.numRows; i++) {
        const id = ids.get(i) as string;
        const op = OP_NAMES[ops.get(i) as number]!;
        if (op === 'delete') {
          yield { op, id };
          continue;
        }
        const document = (documents.get(i) as string | null) ?? undefined;
        const metadataText = metadatas.get(i) as string | null;
        const extra = {
          ...(document !== undefined && { document }),
          ...(metadataText !== null && { metadata: JSON.parse(metadataText) as Metadata }),
        };
        if (op === 'update') yield { op, id, ...extra };
        else {
          const start = (offset + i) * width;
          yield { op, id, embedding: flat.slice(start, start + width), ...extra };
        }
      }
    }
  }
  return { dimension, rows: rows() };
}

/**
 * K-way merge of id-sorted streams. For an id present in several streams, ops are folded in
 * stream order: a later stream (a later chunk, a later delta) wins.
 */
export async function* mergeSortedStreams(streams: AsyncIterator<RecordOp>[]): AsyncGenerator<RecordOp> {
  const heads: (RecordOp | undefined)[] = await Promise.all(
    streams.map(async (stream) => (await stream.next()).value as RecordOp | undefined),
  );
  for (;;) {
    let smallest: string | undefined;
    for (const head of heads) {
      if (head && (smallest === undefined || head.id < smallest)) smallest = head.id;
    }
    if (smallest === undefined) return;
    let folded: RecordOp | undefined;
    for (let index = 0; index < heads.length; index++) {
      const head = heads[index];
      if (head?.id !== smallest) continue;
      folded = foldOps(folded, head);
      const next = await streams[index]!.next();
      heads[index] = next.done ? undefined : next.value;
    }
    yield folded!;
  }
}

/** The dimension shared by segments, or a bad-input error naming the first that disagrees. */
export function commonDimension(segments: { key: string; dimension: number | null }[]): number | null {
  let dimension: number | null = null;
  let from = '';
  for (const segment of segments) {
    if (segment.dimension === null) continue;
    if (dimension !== null && segment.dimension !== dimension) {
      throw new BadInputError(
        `segment ${segment.key} has dimension ${segment.dimension}, but ${from} has dimension ${dimension}`,
      );
    }
    dimension = segment.dimension;
    from = segment.key;
  }
  return dimension;
}
