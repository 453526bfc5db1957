import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { segmentsChange } from '../../lambdas/core/records/changes.ts';
import {
  deltaRefsFromKeys,
  firstDimension,
  listDeltas,
  readDeltaFully,
} from '../../lambdas/core/records/deltas.ts';
import { SEGMENT_HEADER_BYTES, writeSegmentFile } from '../../lambdas/core/records/segments.ts';
import type { ObjectStore } from '../../lambdas/core/storage/object-store.ts';
import { uploadSegment } from '../../lambdas/core/storage/segment-objects.ts';
import { makeUpserts } from '../../local/synthetic-records.ts';
import { writeChromaDirectory } from '../helpers/chroma-dir.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

/**
 * A run's objects in the bucket: the listing rules of SplitIntoChunks, the delta readers of
 * ProcessChunk, and the segment header read of the FinalMerge commit.
 */
let stack: TestStack;
let objects: ObjectStore;
let work: string;
beforeAll(async () => {
  stack = await startTestStack();
  objects = stack.runtime().objects;
  work = await mkdtemp(join(tmpdir(), 'embedflow-deltas-'));
});
afterAll(async () => {
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

let prefixes = 0;
async function putObjects(files: Record<string, string | Buffer>): Promise<string> {
  const prefix = `input/deltas-${++prefixes}/words/`;
  for (const [name, body] of Object.entries(files))
    await objects.uploadStream(prefix + name, Buffer.from(body));
  return prefix;
}

/** Uploads a local directory's files under `prefix/name/`, as `run --input` does. */
async function putDirectory(prefix: string, name: string, dir: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries.filter((e) => e.isFile())) {
    const path = join(entry.parentPath, entry.name);
    await objects.uploadFile(`${prefix}${name}/${relative(dir, path)}`, path);
  }
}

const line = (id: string, embedding: number[]) => `${JSON.stringify({ id, embedding })}\n`;

describe('listing a prefix (SplitIntoChunks)', () => {
  it('lists .jsonl, .jsonl.gz and Chroma directories in name order, passing over folder markers', async () => {
    const prefix = await putObjects({
      '0002.jsonl.gz': gzipSync(line('b', [1, 0])),
      '0001.jsonl': line('a', [1, 0]),
      '0003/chroma.sqlite3': 'x',
      '0003/3f0c/data_level0.bin': 'x',
      '': '',
    });
    await objects.uploadStream(`${prefix}0003/`, Buffer.alloc(0));
    const deltas = await listDeltas(objects, prefix, 'words');
    expect(deltas.map((delta) => [delta.key.slice(prefix.length), delta.label, delta.files])).toEqual([
      ['0001.jsonl', 'words/0001.jsonl', undefined],
      ['0002.jsonl.gz', 'words/0002.jsonl.gz', undefined],
      ['0003/', 'words/0003/', ['3f0c/data_level0.bin', 'chroma.sqlite3']],
    ]);
  });

  it('refuses every object that is not a delta, naming it', async () => {
    const prefix = await putObjects({
      '0001.jsonl': line('a', [1, 0]),
      '0002.json': '[]',
      'notes/readme.txt': 'hello',
    });
    await expect(listDeltas(objects, prefix)).rejects.toThrow(
      `not a delta: s3://${objects.bucket}/${prefix}0002.json, s3://${objects.bucket}/${prefix}notes/ (a folder without chroma.sqlite3); a delta is a .jsonl file, a .jsonl.gz file or a Chroma persist directory`,
    );
  });

  it('checks an explicit key list by the same rules, listing the files of a Chroma directory', async () => {
    await expect(deltaRefsFromKeys(objects, ['a/0001.jsonl', 'a/0002.csv'], 'words')).rejects.toThrow(
      'deltas: "a/0002.csv" is not a delta key',
    );
    const prefix = await putObjects({ '0002/chroma.sqlite3': 'x', '0002/seg/header.bin': 'x' });
    const refs = await deltaRefsFromKeys(objects, [`${prefix}0002/`, `${prefix}0001.jsonl.gz`], 'words');
    expect(refs.map((delta) => [delta.key.slice(prefix.length), delta.files])).toEqual([
      ['0001.jsonl.gz', undefined],
      ['0002/', ['chroma.sqlite3', 'seg/header.bin']],
    ]);
    await expect(deltaRefsFromKeys(objects, [`${prefix}nothing/`], 'words')).rejects.toThrow(
      'holds no chroma.sqlite3',
    );
  });
});

describe('reading deltas (ProcessChunk)', () => {
  it('reads a .jsonl.gz object and names gzip in a .jsonl', async () => {
    const prefix = await putObjects({
      '0001.jsonl.gz': gzipSync(line('a', [1, 0]) + line('b', [0, 1])),
      '0002.jsonl': gzipSync(line('c', [1, 0])),
    });
    const [gz, plain] = await listDeltas(objects, prefix);
    expect((await readDeltaFully(objects, gz!, 2)).map((op) => op.id)).toEqual(['a', 'b']);
    await expect(readDeltaFully(objects, plain!, 2)).rejects.toThrow(
      'words/0002.jsonl looks gzip-compressed',
    );
  });

  it('reads a Chroma directory written by chromadb through a Chroma server, with the same validation', async () => {
    const dir = await writeChromaDirectory(join(work, 'good'), {
      words: [
        { id: 'x1', embedding: [1, 0, 0], document: 'one', metadata: { kind: 'word', n: 1 } },
        { id: 'x2', embedding: [0, 1, 0], document: 'two', metadata: { kind: 'word', ok: true } },
      ],
    });
    const prefix = await putObjects({});
    await putDirectory(prefix, '0001', dir);
    const [delta] = await listDeltas(objects, prefix, 'words');
    expect(await firstDimension(objects, [delta!])).toBe(3);
    expect(await readDeltaFully(objects, delta!, 3)).toEqual([
      {
        op: 'upsert',
        id: 'x1',
        embedding: Float32Array.from([1, 0, 0]),
        document: 'one',
        metadata: { kind: 'word', n: 1 },
      },
      {
        op: 'upsert',
        id: 'x2',
        embedding: Float32Array.from([0, 1, 0]),
        document: 'two',
        metadata: { kind: 'word', ok: true },
      },
    ]);
    await expect(readDeltaFully(objects, delta!, 4)).rejects.toThrow(
      `words/0001/ record 1: record "x1" has dimension 3, but the collection's dimension is 4`,
    );
  });

  it('refuses a zero vector in a Chroma directory, naming the record', async () => {
    const dir = await writeChromaDirectory(join(work, 'zero'), {
      words: [
        { id: 'ok', embedding: [1, 0] },
        { id: 'flat', embedding: [0, 0] },
      ],
    });
    const prefix = await putObjects({});
    await putDirectory(prefix, '0001', dir);
    const [delta] = await listDeltas(objects, prefix, 'words');
    await expect(readDeltaFully(objects, delta!, 2)).rejects.toThrow(
      'words/0001/ record 2: embedding is a zero vector',
    );
  });

  it('picks the collection named like the folder among several, and refuses an ambiguous directory', async () => {
    const dir = await writeChromaDirectory(join(work, 'several'), {
      words: [{ id: 'w', embedding: [1, 0] }],
      lines: [{ id: 'l', embedding: [0, 1] }],
    });
    const prefix = await putObjects({});
    await putDirectory(prefix, '0001', dir);
    const [delta] = await listDeltas(objects, prefix, 'words');
    expect((await readDeltaFully(objects, delta!, 2)).map((op) => op.id)).toEqual(['w']);
    await expect(readDeltaFully(objects, { ...delta!, collection: 'receipts' }, 2)).rejects.toThrow(
      'words/0001/: the Chroma directory holds 2 collections (lines, words) and none is named "receipts"',
    );
  });

  it('refuses a chroma.sqlite3 that is not a database, as bad input', async () => {
    const prefix = await putObjects({ '0001/chroma.sqlite3': 'not a database at all'.repeat(300) });
    const [delta] = await listDeltas(objects, prefix, 'words');
    await expect(readDeltaFully(objects, delta!, 2)).rejects.toMatchObject({
      name: 'BadInputError',
      message: expect.stringContaining('words/0001/: Chroma could not open this directory'),
    });
  });
});

/** The commit of a run learns its segments' dimension from their schema: a ranged read, never the body. */
async function storedSegment(key: string, records: number, dimension: number) {
  const file = join(work, `${key.replaceAll('/', '-')}.arrow`);
  const ops = makeUpserts(key, records, dimension).sort((a, b) => (a.id < b.id ? -1 : 1));
  const info = await writeSegmentFile(file, ops, dimension);
  await uploadSegment(objects, key, file, info.presence);
  return { key, records };
}

function dimensionOf(store: ObjectStore, segments: { key: string; records: number }[]) {
  const change = segmentsChange(store, 'header-run', segments);
  if (change.kind !== 'segments')
    throw new Error(`a run's segments make a segments change, not ${change.kind}`);
  return change.dimension();
}

/** Counts every byte the store would deliver for each stream asked of it (read to its end here). */
function countingReads(store: ObjectStore) {
  const counted = { bytes: 0 };
  const getStream = store.getStream.bind(store);
  const spied = Object.create(store) as ObjectStore;
  spied.getStream = async (key, range) => {
    const chunks: Buffer[] = [];
    for await (const chunk of await getStream(key, range)) chunks.push(chunk as Buffer);
    counted.bytes += chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    return Readable.from(chunks);
  };
  return { spied, counted };
}

describe('reading segment headers (FinalMerge commit)', () => {
  it('reads each segment no further than its header to learn the dimension', async () => {
    const segments = [await storedSegment('hdr/a', 2000, 96), await storedSegment('hdr/b', 10, 96)];
    const { spied, counted } = countingReads(objects);
    expect(await dimensionOf(spied, segments)).toBe(96);
    // The first segment alone is ~800 KB: asked for whole, the store would send all of it.
    expect(counted.bytes).toBeLessThanOrEqual(2 * SEGMENT_HEADER_BYTES);
    expect(counted.bytes).toBeGreaterThan(0);
  });

  it('still refuses segments of different dimensions, naming both', async () => {
    const segments = [await storedSegment('mix/a', 20, 32), await storedSegment('mix/b', 20, 48)];
    await expect(dimensionOf(objects, segments)).rejects.toThrow(
      /segment mix\/b has dimension 48, but mix\/a has dimension 32/,
    );
  });
});
