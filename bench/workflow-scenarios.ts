import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChromaServer, startChroma } from '../lambdas/core/chroma/chroma-server.ts';
import { chromaTarget, openCollection } from '../lambdas/core/chroma/chroma-target.ts';
import { collectionEnvKey } from '../lambdas/core/config/config.ts';
import { APPLY_BATCH, applyOps } from '../lambdas/core/records/apply-ops.ts';
import { foldAndSort } from '../lambdas/core/records/changes.ts';
import type { RecordOp } from '../lambdas/core/records/records.ts';
import type { CollectionSummary } from '../lambdas/core/workflow/workflow-state.ts';
import { makeUpserts } from '../local/synthetic-records.ts';
import { executeLocally } from '../local/workflow.ts';
import { type BenchContext, median, round, type ScenarioResult, timed } from './harness.ts';
import { uploadDeltas } from './pipeline-scenarios.ts';

/** Runs the real ASL locally (in-process handlers) on one collection; returns its summary and wall time. */
async function runWorkflow(
  context: BenchContext,
  collection: string,
  deltaPrefix: string,
  env: Record<string, string>,
) {
  context.useEnv(env);
  const runId = `bench-${collection}`;
  const { value: result, ms } = await timed(() =>
    executeLocally({
      input: { runId, collections: [{ name: collection, deltaPrefix }] },
      executionId: runId,
    }),
  );
  if (result.status !== 'SUCCEEDED')
    throw new Error(`bench run ${runId} failed: ${JSON.stringify(result.error)}`);
  const summary = (result.output as { collections: CollectionSummary[] }).collections[0]!;
  return { summary, ms };
}

/** Starts a Chroma server in a temp dir, runs `body`, stops it: timed from start to stop, as a run's build is. */
async function onFreshServer(body: (server: ChromaServer) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-raw-'));
  try {
    return await timed(async () => {
      const server = await startChroma(dir);
      try {
        await body(server);
      } finally {
        await server.stop();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The floor: what a user of plain Chroma writes, the stock client's upsert in batches of 1,000. */
async function stockClientUpsert(server: ChromaServer, records: RecordOp[]): Promise<void> {
  const collection = await openCollection(server, 'overhead-raw');
  const upserts = records.filter((op) => op.op === 'upsert');
  for (let start = 0; start < upserts.length; start += APPLY_BATCH) {
    const batch = upserts.slice(start, start + APPLY_BATCH);
    await collection.upsert({
      ids: batch.map((op) => op.id),
      embeddings: batch.map((op) => Array.from(op.embedding)),
      documents: batch.map((op) => op.document ?? ''),
      metadatas: batch.map((op) => op.metadata ?? {}),
    });
  }
}

/** Rounds of the overhead scenario: with three, one bench measured run/raw 1.527 and the next 1.268 on the same code. */
export const OVERHEAD_ROUNDS = 5;

/** Scenario 4: a whole run against the floor, a plain Chroma upsert of the same records, at 384-d and 1536-d. */
export async function overhead(context: BenchContext): Promise<ScenarioResult[]> {
  const rows: ScenarioResult[] = [];
  const shapes = context.quick
    ? [{ dimension: 64, deltas: 40 }]
    : [
        { dimension: 384, deltas: 100 },
        { dimension: 1536, deltas: 60 },
      ];
  const recordsPerDelta = 50;
  const rounds = context.quick ? 1 : OVERHEAD_ROUNDS;
  for (const { dimension, deltas } of shapes) {
    const prefix = await uploadDeltas(
      context,
      `bench/overhead-${dimension}/words/`,
      deltas,
      recordsPerDelta,
      dimension,
    );
    const records = foldAndSort(
      Array.from({ length: deltas }, (_, delta) =>
        makeUpserts(`d${delta}`, recordsPerDelta, dimension, delta + 1),
      ).flat(),
    );
    // Interleaved rounds, each variant's median reported: the first round also pays what a process
    // pays once (handler modules, connections, a cold page cache), and one round is noisy here.
    const runs: { ms: number; finalMergeMs: number }[] = [];
    const raws: number[] = [];
    const ours: number[] = [];
    for (let pass = 1; pass <= rounds; pass++) {
      context.log(
        `overhead ${dimension}-d, round ${pass} of ${rounds}: whole run of ${records.length} records, plain Chroma upsert, embedflow's upsert path`,
      );
      const run = await runWorkflow(context, `overhead-run-${dimension}-${pass}`, prefix, {});
      runs.push({ ms: run.ms, finalMergeMs: run.summary.finalMergeMs });
      raws.push((await onFreshServer((server) => stockClientUpsert(server, records))).ms);
      const path = await onFreshServer(async (server) => {
        const collection = await openCollection(server, 'overhead-ours');
        await applyOps(chromaTarget(collection, server), records, dimension, undefined, undefined, true);
      });
      ours.push(path.ms);
    }
    const params = { records: records.length, deltas, dimension, rounds };
    const run = median(runs.map((r) => r.ms));
    const raw = median(raws);
    const path = median(ours);
    rows.push(
      {
        name: 'overhead',
        variant: 'workflow-run',
        params,
        metrics: {
          wallMs: round(run),
          recordsPerSecond: round(records.length / (run / 1000), 1),
          finalMergeMs: round(median(runs.map((r) => r.finalMergeMs))),
        },
      },
      {
        name: 'overhead',
        variant: 'raw-chroma-upsert',
        params,
        metrics: { wallMs: round(raw), recordsPerSecond: round(records.length / (raw / 1000), 1) },
      },
      {
        name: 'overhead',
        variant: 'embedflow-upsert-path',
        params,
        metrics: { wallMs: round(path), recordsPerSecond: round(records.length / (path / 1000), 1) },
      },
    );
  }
  return rows;
}

/** Scenario 5: chunk and group sizes, the evidence behind the defaults. */
export async function chunkSweep(context: BenchContext): Promise<ScenarioResult[]> {
  const deltas = context.quick ? 60 : 200;
  const recordsPerDelta = context.quick ? 10 : 20;
  const dimension = 64;
  const prefix = await uploadDeltas(context, 'bench/sweep/words/', deltas, recordsPerDelta, dimension);
  const rows: ScenarioResult[] = [];
  for (const chunkSize of [5, 15, 30]) {
    for (const groupSize of [10, 20]) {
      // A fresh collection per variant, sized through CHUNK_SIZE_<NAME> (the same rule as CHUNK_SIZE_WORDS).
      const collection = `sweep-c${chunkSize}-g${groupSize}`;
      context.log(`chunk sweep: chunk size ${chunkSize}, group size ${groupSize}`);
      const { summary, ms } = await runWorkflow(context, collection, prefix, {
        [`CHUNK_SIZE_${collectionEnvKey(collection).toUpperCase()}`]: String(chunkSize),
        GROUP_SIZE: String(groupSize),
      });
      rows.push({
        name: 'chunk-sweep',
        variant: `chunk ${chunkSize} / group ${groupSize}`,
        params: { chunkSize, groupSize, deltas, recordsPerDelta, dimension },
        metrics: {
          totalMs: round(ms),
          finalMergeMs: summary.finalMergeMs,
          lockHoldMs: summary.lockHoldMs,
          chunks: summary.chunks,
          intermediateMerges: summary.intermediateMerges,
        },
      });
    }
  }
  return rows;
}
