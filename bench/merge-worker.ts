/**
 * One variant of the merge-pipeline benchmark in a fresh process, so its peak memory is its own.
 * Usage: merge-worker segments|chroma COLLECTION DELTA_PREFIX RUN_ID  (env: the local services)
 * Prints one JSON line: {ms, records, workerPeakRssMb, chromaPeakRssMb}.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { type ChromaServer, startChroma } from '../lambdas/core/chroma/chroma-server.ts';
import { chromaTarget, openCollection } from '../lambdas/core/chroma/chroma-target.ts';
import { applyOps } from '../lambdas/core/records/apply-ops.ts';
import { foldAndSort } from '../lambdas/core/records/changes.ts';
import { readDeltaFully } from '../lambdas/core/records/deltas.ts';
import type { RecordOp } from '../lambdas/core/records/records.ts';
import { mergeSortedStreams, openSegment } from '../lambdas/core/records/segments.ts';
import { runtime } from '../lambdas/core/runtime.ts';
import { type ChunkManifest, processChunk, splitIntoChunks } from '../lambdas/core/workflow/chunking.ts';
import { currentSegmentKeys, groupSegments, mergeGroup } from '../lambdas/core/workflow/merging.ts';
import { peakRssMb } from './harness.ts';

const [variant, collection, deltaPrefix, runId] = process.argv.slice(2) as [string, string, string, string];
const rt = runtime();
// Two cores: both variants process chunks and groups two at a time.
const limit = pLimit(2);
let chromaPeak = 0;

async function stopMeasured(server: ChromaServer) {
  chromaPeak = Math.max(chromaPeak, peakRssMb(server.pid));
  await server.stop();
}

async function* iterate(ops: RecordOp[]) {
  yield* ops;
}

async function viaSegments(): Promise<number> {
  let state = await splitIntoChunks(rt, runId, { name: collection, deltaPrefix });
  const segments = await Promise.all(
    state.chunks.map((chunkIndex) =>
      limit(() => processChunk(rt, { runId, collection, manifestKey: state.manifestKey, chunkIndex })),
    ),
  );
  state = groupSegments({ ...state, segments }, rt.config.groupSize);
  while ((state.groupCount ?? 0) > 1) {
    const merged = await Promise.all(
      (state.groups ?? []).map((group, groupIndex) =>
        limit(() =>
          mergeGroup(rt, {
            runId,
            collection,
            level: state.level,
            groupIndex,
            groupSize: rt.config.groupSize,
            segments: group,
          }),
        ),
      ),
    );
    state = groupSegments({ ...state, segments: merged }, rt.config.groupSize);
  }
  const opened = await Promise.all(
    currentSegmentKeys(state).map(async (key) => openSegment(await rt.objects.getStream(key))),
  );
  let records = 0;
  for await (const _ of mergeSortedStreams(opened.map((segment) => segment.rows))) records++;
  return records;
}

/** The old design: every chunk is a Chroma collection, and every merge level reads and re-upserts Chroma. */
async function viaChroma(): Promise<number> {
  const work = await mkdtemp(join(tmpdir(), 'bench-chroma-merge-'));
  try {
    const state = await splitIntoChunks(rt, runId, { name: collection, deltaPrefix });
    const manifest = await rt.objects.getJson<ChunkManifest>(state.manifestKey);
    let dirs = await Promise.all(
      state.chunks.map((chunk) =>
        limit(async () => {
          const deltas = manifest.deltas.slice(chunk * manifest.chunkSize, (chunk + 1) * manifest.chunkSize);
          const ops = foldAndSort(
            (
              await Promise.all(deltas.map((d) => readDeltaFully(rt.objects, d, manifest.expectedDimension)))
            ).flat(),
          );
          const dir = join(work, `L0-${chunk}`);
          const server = await startChroma(dir);
          await applyOps(
            chromaTarget(await openCollection(server, collection), server),
            iterate(ops),
            manifest.expectedDimension,
          );
          await stopMeasured(server);
          return dir;
        }),
      ),
    );
    for (let level = 1; dirs.length > 1; level++) {
      const groups: string[][] = [];
      for (let start = 0; start < dirs.length; start += rt.config.groupSize)
        groups.push(dirs.slice(start, start + rt.config.groupSize));
      dirs = await Promise.all(
        groups.map((group, index) =>
          limit(async () => {
            const dir = join(work, `L${level}-${index}`);
            const target = await startChroma(dir);
            const into = await openCollection(target, collection);
            for (const child of group) {
              const source = await startChroma(child);
              const from = await openCollection(source, collection);
              const total = await from.count();
              for (let offset = 0; offset < total; offset += 1000) {
                const page = await from.get({
                  limit: 1000,
                  offset,
                  include: ['embeddings', 'documents', 'metadatas'],
                });
                await into.upsert({
                  ids: page.ids,
                  embeddings: page.embeddings as number[][],
                  documents: page.documents as string[],
                  metadatas: page.metadatas as never,
                });
              }
              await stopMeasured(source);
            }
            await stopMeasured(target);
            return dir;
          }),
        ),
      );
    }
    const final = await startChroma(dirs[0]!);
    const count = await (await openCollection(final, collection)).count();
    await stopMeasured(final);
    return count;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const started = performance.now();
const records = variant === 'segments' ? await viaSegments() : await viaChroma();
const ms = performance.now() - started;
process.stdout.write(
  `${JSON.stringify({ ms, records, workerPeakRssMb: process.resourceUsage().maxRSS / 1024, chromaPeakRssMb: chromaPeak })}\n`,
);
