import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderCharts } from './charts.ts';
import { machineDescription, round, runJsonChild, type ScenarioResult } from './harness.ts';
import { SHARED_LABEL } from './publish-scenarios.ts';
import { type BenchResult, renderReport } from './report.ts';
import { SCENARIO_NAMES } from './scenario-names.ts';

function metric(scenarios: ScenarioResult[], match: (s: ScenarioResult) => boolean, key: string): number {
  return scenarios.find(match)?.metrics[key] ?? Number.NaN;
}

/** The headline ratios of CONTRACT.md, each from two rows measured side by side in this run. */
export function ratios(scenarios: ScenarioResult[]): Record<string, number> {
  const largest = Math.max(
    ...scenarios.filter((s) => s.name === 'lock-hold').map((s) => Number(s.params.snapshotRecords)),
  );
  const lockHold = (variant: string) =>
    metric(
      scenarios,
      (s) => s.name === 'lock-hold' && s.variant === variant && s.params.snapshotRecords === largest,
      'lockHoldP50Ms',
    );
  const contention = (variant: string, writers: number, key: string) =>
    metric(
      scenarios,
      (s) => s.name === 'contention' && s.variant === variant && s.params.writers === writers,
      key,
    );
  const throughput = (variant: string) => contention(variant, 4, 'recordsPerSecond');
  const contentionMs = (variant: string, writers: number) => contention(variant, writers, 'totalMs');
  const overheadAt = (dimension: number | undefined) => {
    const rows = scenarios.filter((s) => s.name === 'overhead');
    const wanted = dimension ?? Math.min(...rows.map((s) => Number(s.params.dimension)));
    const wallOf = (variant: string) =>
      metric(rows, (s) => s.variant === variant && Number(s.params.dimension) === wanted, 'wallMs');
    return round(wallOf('workflow-run') / wallOf('raw-chroma-upsert'), 3);
  };
  const mergeWall = (variant: string) =>
    metric(
      scenarios,
      (s) =>
        s.name === 'merge-pipeline' &&
        s.variant === variant &&
        s.params.deltas ===
          Math.max(
            ...scenarios.filter((x) => x.name === 'merge-pipeline').map((x) => Number(x.params.deltas)),
          ),
      'wallMs',
    );
  const total8 = (variant: string) =>
    metric(
      scenarios,
      (s) => s.name === 'lock-hold' && s.variant === variant && s.params.snapshotRecords === largest,
      'totalMs',
    );
  const stream = (variant: string) => metric(scenarios, (s) => s.variant === variant, 'messagesPerSecond');
  return {
    lockHoldTwoPhaseOverSinglePhase50k: round(lockHold('two-phase') / lockHold('single-phase'), 4),
    throughput4RunsTwoPhaseOverSinglePhase: round(throughput('two-phase') / throughput('single-phase'), 3),
    throughput4RunsSharedProcess: round(
      throughput(`two-phase, ${SHARED_LABEL}`) / throughput(`single-phase, ${SHARED_LABEL}`),
      3,
    ),
    throughput4RunsBound: round(
      contentionMs('single-phase', 4) /
        (contentionMs('two-phase', 1) + contentionMs('chroma-insert', 4) - contentionMs('chroma-insert', 1)),
      3,
    ),
    totalTime8PublishersTwoPhaseOverSinglePhase50k: round(total8('two-phase') / total8('single-phase'), 3),
    runOverRawUpsert: overheadAt(scenarios.some((s) => s.params.dimension === 384) ? 384 : undefined),
    runOverRawUpsert1536: overheadAt(1536),
    streamThroughputUnderBatchRunsOverAlone: round(
      stream('stream-with-batch-runs') / stream('stream-alone'),
      3,
    ),
    streamThroughputTwoPhaseOverSinglePhase: round(
      stream('stream-alone') / stream('stream-alone-single-phase'),
      3,
    ),
    segmentMergeOverChromaMerge: round(mergeWall('segments') / mergeWall('chroma'), 4),
  };
}

/** The project's docs/ directory: `--write-docs` rewrites docs/benchmarks.md and its charts there. */
export const DOCS_DIR = join(import.meta.dirname, '..', 'docs');

export interface BenchOptions {
  quick: boolean;
  /** Where the report goes: benchmarks.md, bench.json and the PNG charts. */
  outDir: string;
  /** Also rewrite docs/benchmarks.md and the charts in docs/ (the project's published numbers). */
  writeDocs?: boolean;
  /** Scenario names to run (default: all). */
  only?: string[];
}

async function writeReport(result: BenchResult, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const charts = await renderCharts(result.scenarios, dir);
  await writeFile(join(dir, 'benchmarks.md'), renderReport(result, charts));
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const selected = SCENARIO_NAMES.filter((name) => !options.only || options.only.includes(name));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const scenarios: ScenarioResult[] = [];
  for (const [index, name] of selected.entries()) {
    // Each scenario in a process of its own on fresh local services (bench/scenario-main.ts): none
    // works against the data, the heap or the caches an earlier one left. Every ratio compares rows
    // of one scenario, measured side by side in that one process.
    process.stderr.write(`bench: --- scenario ${index + 1} of ${selected.length}: ${name}\n`);
    scenarios.push(
      ...(await runJsonChild<ScenarioResult[]>('bench-scenario', [
        name,
        ...(options.quick ? ['--quick'] : []),
      ])),
    );
  }
  const result: BenchResult = {
    quick: options.quick,
    machine: machineDescription(),
    startedAt,
    wallSeconds: round((performance.now() - started) / 1000, 1),
    scenarios,
    ratios: ratios(scenarios),
  };
  await writeReport(result, options.outDir);
  await writeFile(join(options.outDir, 'bench.json'), `${JSON.stringify(result, null, 2)}\n`);
  if (options.writeDocs) await writeReport(result, DOCS_DIR);
  return result;
}
