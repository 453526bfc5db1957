import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { chunkSizeFor } from '../config/config.ts';
import { foldAndSort } from '../records/changes.ts';
import {
  assertHasDeltas,
  type DeltaRef,
  deltaRefsFromKeys,
  firstDimension,
  listDeltas,
  readDeltaFully,
} from '../records/deltas.ts';
import { validateCollectionName } from '../records/records.ts';
import { writeSegmentFile } from '../records/segments.ts';
import type { Runtime } from '../runtime.ts';
import { uploadSegment } from '../storage/segment-objects.ts';
import type { CollectionInput } from './run-input.ts';
import { manifestKey as manifestKeyFor, segmentKey } from './run-layout.ts';
import type { ChunkTask, CollectionState, SegmentCounts } from './workflow-state.ts';

/** Written by SplitIntoChunks so that chunk tasks receive an index, not a list of keys. */
export interface ChunkManifest {
  runId: string;
  collection: string;
  chunkSize: number;
  deltas: DeltaRef[];
  /** The collection's dimension, or the run's first record's for a new collection. */
  expectedDimension: number | null;
}

export async function splitIntoChunks(
  rt: Runtime,
  runId: string,
  input: CollectionInput,
): Promise<CollectionState> {
  const collection = validateCollectionName(input.name);
  const deltas = input.deltaPrefix
    ? await listDeltas(rt.objects, input.deltaPrefix, collection)
    : await deltaRefsFromKeys(rt.objects, input.deltas!, collection);
  assertHasDeltas(
    deltas,
    input.deltaPrefix ? `s3://${rt.objects.bucket}/${input.deltaPrefix}` : 'the deltas list',
  );

  const pointer = await rt.pointers.read(collection);
  const chunkSize = chunkSizeFor(rt.config, collection);
  const manifest: ChunkManifest = {
    runId,
    collection,
    chunkSize,
    deltas,
    expectedDimension: pointer.dimension ?? (await firstDimension(rt.objects, deltas)),
  };
  await rt.objects.putJson(manifestKeyFor(runId, collection), manifest);
  return chunkPlan(runId, collection, deltas.length, chunkSize);
}

/** A collection's state once split: `deltaCount` deltas in chunks of `chunkSize`, none processed. */
export function chunkPlan(
  runId: string,
  collection: string,
  deltaCount: number,
  chunkSize: number,
): CollectionState {
  const chunkCount = Math.ceil(deltaCount / chunkSize);
  return {
    runId,
    collection,
    manifestKey: manifestKeyFor(runId, collection),
    deltas: deltaCount,
    chunkSize,
    chunkCount,
    chunks: Array.from({ length: chunkCount }, (_, index) => index),
    level: 0,
    intermediateMerges: 0,
  };
}

/**
 * Reads one chunk's deltas (in parallel, bounded by IO_CONCURRENCY), validates every line, folds
 * them last-write-wins in delta order and writes one id-sorted segment.
 */
export async function processChunk(rt: Runtime, task: ChunkTask): Promise<SegmentCounts> {
  const manifest = await rt.objects.getJson<ChunkManifest>(task.manifestKey);
  const start = task.chunkIndex * manifest.chunkSize;
  const deltas = manifest.deltas.slice(start, start + manifest.chunkSize);
  if (deltas.length === 0)
    throw new RangeError(`chunk ${task.chunkIndex} is past the end of ${task.manifestKey}`);

  const limit = pLimit(rt.config.ioConcurrency);
  const perDelta = await Promise.all(
    deltas.map((delta) => limit(() => readDeltaFully(rt.objects, delta, manifest.expectedDimension))),
  );
  const inputRecords = perDelta.reduce((sum, ops) => sum + ops.length, 0);
  const rows = foldAndSort(perDelta.flat());

  const dir = await mkdtemp(join(tmpdir(), 'embedflow-chunk-'));
  try {
    const file = join(dir, 'segment.arrow');
    const info = await writeSegmentFile(file, rows, manifest.expectedDimension);
    const key = segmentKey(task.runId, task.collection, 0, task.chunkIndex);
    await uploadSegment(rt.objects, key, file, info.presence);
    return { records: info.records, inputRecords };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
