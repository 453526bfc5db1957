import type { BenchContext, ScenarioResult } from './harness.ts';
import { mergePipeline } from './pipeline-scenarios.ts';
import { contention, lockHoldBySnapshotSize } from './publish-scenarios.ts';
import type { ScenarioName } from './scenario-names.ts';
import { streamUnderBatchRuns } from './stream-scenarios.ts';
import { chunkSweep, overhead } from './workflow-scenarios.ts';

/** Each scenario by the name `--only` takes: what bench/scenario-main.ts runs in its own process. */
export const SCENARIOS: Record<ScenarioName, (context: BenchContext) => Promise<ScenarioResult[]>> = {
  'lock-hold': lockHoldBySnapshotSize,
  contention,
  'merge-pipeline': mergePipeline,
  overhead,
  'chunk-sweep': chunkSweep,
  stream: streamUnderBatchRuns,
};
