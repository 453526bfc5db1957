import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { renderCharts } from './charts.ts';
import {
  type BenchContext,
  machineDescription,
  round,
  type ScenarioResult,
  withBenchContext,
} from './harness.ts';
import { mergePipeline } from './pipeline-scenarios.ts';
import { contention, lockHoldBySnapshotSize } from './publish-scenarios.ts';
import { renderReport } from './report.ts';
import { streamUnderBatchRuns } from './stream-scenarios.ts';
import { chunkSweep, overhead } from './workflow-scenarios.ts';

export interface BenchResult {
  quick: boolean;
  machine: string;
  startedAt: string;
  wallSeconds: number;
  scenarios: ScenarioResult[];
  ratios: Record<string, number>;
}

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
  const throughput = (variant: string) =>
    metric(
      scenarios,
      (s) => s.name === 'contention' && s.variant === variant && s.params.writers === 4,
      'recordsPerSecond',
    );
  const wall = (name: string, variant: string) =>
    metric(
      scenarios,
      (s) =>
        s.name === name &&
        s.variant === variant &&
        (name !== 'merge-pipeline' ||
          s.params.deltas ===
            Math.max(...scenarios.filter((x) => x.name === name).map((x) => Number(x.params.deltas)))),
      'wallMs',
    );
  return {
    lockHoldTwoPhaseOverSinglePhase50k: round(lockHold('two-phase') / lockHold('single-phase'), 4),
    throughput4RunsTwoPhaseOverSinglePhase: round(throughput('two-phase') / throughput('single-phase'), 3),
    runOverRawUpsert: round(wall('overhead', 'workflow-run') / wall('overhead', 'raw-chroma-upsert'), 3),
    streamThroughputUnderBatchRunsOverAlone: round(
      metric(scenarios, (s) => s.variant === 'stream-with-batch-runs', 'messagesPerSecond') /
        metric(scenarios, (s) => s.variant === 'stream-alone', 'messagesPerSecond'),
      3,
    ),
    segmentMergeOverChromaMerge: round(
      wall('merge-pipeline', 'segments') / wall('merge-pipeline', 'chroma'),
      4,
    ),
  };
}

/** Scenario names as `--only` takes them (the `name` of the rows each one produces). */
export const SCENARIOS: [string, (context: BenchContext) => Promise<ScenarioResult[]>][] = [
  ['lock-hold', lockHoldBySnapshotSize],
  ['contention', contention],
  ['merge-pipeline', mergePipeline],
  ['overhead', overhead],
  ['chunk-sweep', chunkSweep],
  ['stream', streamUnderBatchRuns],
];

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
  const selected = SCENARIOS.filter(([name]) => !options.only || options.only.includes(name));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const scenarios = await withBenchContext(options.quick, async (context) => {
    const rows: ScenarioResult[] = [];
    for (const [index, [title, scenario]] of selected.entries()) {
      context.log(`--- scenario ${index + 1} of ${selected.length}: ${title}`);
      rows.push(...(await scenario(context)));
    }
    return rows;
  });
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

/** `--only a,b`: scenario names, each checked against the known ones. */
export function parseScenarioNames(value: string): string[] {
  const known = SCENARIOS.map(([name]) => name);
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new InvalidArgumentError(
      `unknown scenario "${unknown.join(', ')}": choose from ${known.join(', ')}`,
    );
  }
  return names;
}
