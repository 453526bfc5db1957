import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { segmentsChange } from '../../lambdas/core/records/changes.ts';
import { SEGMENT_HEADER_BYTES, writeSegmentFile } from '../../lambdas/core/records/segments.ts';
import type { ObjectStore } from '../../lambdas/core/storage/object-store.ts';
import { uploadSegment } from '../../lambdas/core/storage/segment-objects.ts';
import { makeUpserts } from '../../local/synthetic-records.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

/** A run's commit learns its segments' dimension from their schema: a ranged read, never the body. */
let stack: TestStack;
let objects: ObjectStore;
let work: string;
beforeAll(async () => {
  stack = await startTestStack();
  objects = stack.runtime().objects;
  work = await mkdtemp(join(tmpdir(), 'embedflow-segment-header-'));
});
afterAll(async () => {
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

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
