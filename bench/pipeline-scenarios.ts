import pLimit from 'p-limit';
import { makeUpserts, toJsonl } from '../local/synthetic-records.ts';
import { type BenchContext, round, runJsonChild, type ScenarioResult } from './harness.ts';

/** Uploads `deltas` delta files of fresh records under a prefix; returns the prefix. */
export async function uploadDeltas(
  context: BenchContext,
  prefix: string,
  deltas: number,
  recordsPerDelta: number,
  dimension: number,
): Promise<string> {
  const rt = context.runtime();
  const limit = pLimit(16);
  await Promise.all(
    Array.from({ length: deltas }, (_, delta) =>
      limit(() =>
        rt.objects.uploadStream(
          `${prefix}delta-${String(delta).padStart(5, '0')}.jsonl`,
          Buffer.from(toJsonl(makeUpserts(`d${delta}`, recordsPerDelta, dimension, delta + 1))),
        ),
      ),
    ),
  );
  return prefix;
}

function runWorker(context: BenchContext, args: string[]): Promise<Record<string, number>> {
  return runJsonChild('merge-worker', args, {
    ...process.env,
    ...context.services.env,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
}

/** Scenario 3: intermediate merges on Arrow segments against merging through Chroma at every level. */
export async function mergePipeline(context: BenchContext): Promise<ScenarioResult[]> {
  const deltaCounts = context.quick ? [100, 400] : [100, 400, 1000];
  const recordsPerDelta = 10;
  const dimension = 64;
  const rows: ScenarioResult[] = [];
  for (const deltas of deltaCounts) {
    const prefix = await uploadDeltas(
      context,
      `bench/merge-${deltas}/words/`,
      deltas,
      recordsPerDelta,
      dimension,
    );
    for (const variant of ['segments', 'chroma']) {
      context.log(`merge pipeline: ${deltas} deltas through ${variant}`);
      const result = await runWorker(context, [
        variant,
        `merge-${variant}-${deltas}`,
        prefix,
        `bench-${variant}-${deltas}`,
      ]);
      rows.push({
        name: 'merge-pipeline',
        variant,
        params: { deltas, recordsPerDelta, dimension, chunkSize: 15, groupSize: 20 },
        metrics: {
          wallMs: round(result.ms!),
          records: result.records!,
          workerPeakRssMb: round(result.workerPeakRssMb!, 1),
          chromaServerPeakRssMb: round(result.chromaPeakRssMb!, 1),
        },
      });
    }
  }
  return rows;
}
