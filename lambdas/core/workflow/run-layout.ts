/**
 * Where a run's temporary objects live in the bucket. Everything under `runs/{runId}/` is
 * disposable (removed by Cleanup/RecordFailure, and expired by a lifecycle rule in AWS).
 */
export const RUNS_PREFIX = 'runs/';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidRunId(runId: string): boolean {
  return RUN_ID.test(runId);
}

export const runPrefix = (runId: string) => `${RUNS_PREFIX}${runId}/`;
export const collectionRunPrefix = (runId: string, collection: string) => `${runPrefix(runId)}${collection}/`;
export const manifestKey = (runId: string, collection: string) =>
  `${collectionRunPrefix(runId, collection)}manifest.json`;
export const segmentsPrefix = (runId: string, collection: string) =>
  `${collectionRunPrefix(runId, collection)}segments/`;
export const segmentKey = (runId: string, collection: string, level: number, index: number) =>
  `${segmentsPrefix(runId, collection)}L${level}-${String(index).padStart(5, '0')}.arrow`;
/** Where `run --input DIR` uploads local delta files: `runs/{runId}/input/{collection}/{file}`. */
export const inputPrefix = (runId: string) => `${runPrefix(runId)}input/`;
