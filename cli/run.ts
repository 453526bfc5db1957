import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig } from '../lambdas/core/config/config.ts';
import { describeError } from '../lambdas/core/errors.ts';
import { EXTERNAL_EMBEDDER } from '../lambdas/core/storage/collection-catalog.ts';
import { type StartOutcome, startRunExecution } from '../lambdas/core/workflow/run-executions.ts';
import { inputPrefix, isValidRunId, runPrefix } from '../lambdas/core/workflow/run-layout.ts';
import type { CollectionOutcome, CollectionSummary } from '../lambdas/core/workflow/workflow-state.ts';
import type { ExecutionResult, HistoryEvent, LocalExecutionResult } from '../local/asl-runner.ts';
import { writeDemoInput } from '../local/demo-data.ts';
import { HashingEmbedder } from '../local/embedder.ts';
import { ExecutionStore } from '../local/execution-store.ts';
import { executeLocally } from '../local/workflow.ts';
import { catalogOf } from './collections.ts';
import { deltaCount, scanInputDir, uploadInput } from './input-dir.ts';
import { useLocalStack } from './local-env.ts';
import { EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, type GlobalOptions, UsageError } from './output.ts';
import { processScope } from './process-scope.ts';
import { RunProgress } from './progress.ts';

export interface RunOptions extends GlobalOptions {
  demo?: boolean;
  input?: string;
  skipUnknown?: boolean;
  runId?: string;
  wordsDeltas: number;
  linesDeltas: number;
  recordsPerDelta: number;
  dim: number;
  seed: number;
}

export interface RunSummary {
  executionId: string;
  runId: string;
  /** ALREADY_RUNNING: refused, the run id runs in another execution (`executionId`). */
  status: ExecutionResult['status'] | 'ALREADY_RUNNING';
  error?: { name: string; message: string };
  /** The run id had been applied by an earlier execution (`executionId`): nothing ran. */
  alreadyApplied?: boolean;
  collections: Record<string, DistributiveOmit<CollectionOutcome, 'collection'>>;
  wallMs: number;
  /** Demo runs: the dimension the demo's collections now have (the closing note says so). */
  demoDimension?: number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export function newRunId(prefix = 'run'): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${prefix}-${stamp}-${randomUUID().slice(0, 6)}`;
}

/** Rejects a malformed --run-id before anything is written, naming the flag. */
export function checkRunIdOption(runId: string | undefined): void {
  if (runId !== undefined && !isValidRunId(runId)) {
    throw new UsageError(`--run-id "${runId}" must be 1-128 characters of letters, digits, ".", "_" or "-"`);
  }
}

/** `embedflow run --demo | --input DIR`: the whole workflow on the local stack. */
export async function runLocal(options: RunOptions): Promise<{ summary: RunSummary; exitCode: number }> {
  if (!options.demo && !options.input) throw new UsageError('run needs --demo or --input DIR (see --help)');
  if (options.demo && options.input) throw new UsageError('give either --demo or --input, not both');
  checkRunIdOption(options.runId);
  const config = loadConfig(process.env); // a bad variable stops here, before anything is written
  const runId = options.runId ?? newRunId(options.demo ? 'demo' : 'run');
  const dataDir = resolve(options.dataDir);
  const started = performance.now();
  const progress = new RunProgress();
  let demoDir: string | undefined;

  try {
    let inputDir = options.input ? resolve(options.input) : '';
    // A demo's input cannot be bad, so its stack comes up (or is found) while the input is generated;
    // an --input directory is checked first, so that a bad one exits 2 with nothing started. The
    // demo writes its input into this process's own scope (process-scope.ts): even a killed demo
    // leaves nothing behind.
    let stack: ReturnType<typeof useLocalStack> | undefined;
    if (options.demo) {
      await mkdir(dataDir, { recursive: true });
      stack = useLocalStack(dataDir);
      stack.catch(() => {}); // awaited below, where a failure is reported
      demoDir = await (await processScope(dataDir)).subdir(`demo-input-${runId}`);
      const written = await writeDemoInput({
        dir: demoDir,
        wordsDeltas: options.wordsDeltas,
        linesDeltas: options.linesDeltas,
        recordsPerDelta: options.recordsPerDelta,
        seed: options.seed,
        embedder: new HashingEmbedder(options.dim),
      });
      progress.message(
        `demo: ${options.wordsDeltas} words deltas (${written.words} records), ${options.linesDeltas} lines deltas (${written.lines} records), dimension ${options.dim}`,
      );
      inputDir = demoDir;
    }
    const input = await scanInputDir(inputDir, { skipUnknown: options.skipUnknown });
    const rt = await (stack ?? useLocalStack(dataDir));
    const store = new ExecutionStore(join(dataDir, 'executions'));
    // Claim the run id before writing anything: a second run of it must not mix its files in.
    const claim = { runId, input: { runId, collections: input.collections.map((c) => c.name) } };
    const start = await startRunExecution(
      store.starter(() => ({ ...claim, startDate: new Date().toISOString() })),
      runId,
    );
    if (start.outcome !== 'started') {
      return duplicateStart(await store.getExecution(start.name), start, runId, started);
    }
    const executionId = start.name;
    let result: LocalExecutionResult;
    try {
      progress.message(`run ${runId}: execution ${executionId}, uploading ${deltaCount(input)} deltas`);
      const executionInput = await uploadInput(rt.objects, runId, input, config.ioConcurrency);
      await store.setInput(executionId, executionInput);
      result = await executeLocally({
        input: executionInput,
        executionId,
        progress,
        onEvent: (event) => {
          store.appendEvent(executionId, event);
          progress.handle(event);
        },
      });
    } catch (error) {
      // The claim must not stay RUNNING: the run id could never run again from this data dir.
      const now = new Date().toISOString();
      await store.finishExecution(executionId, {
        status: 'FAILED',
        error: describeError(error),
        events: [],
        startDate: '',
        stopDate: now,
      });
      // What it uploaded is this run's alone; the lifecycle rule of a deployed bucket would expire
      // it, a local one never does.
      const leftover = await rt.objects.listKeys(inputPrefix(runId));
      await rt.objects.deleteKeys(leftover).catch((cleanup: Error) => {
        process.stderr.write(
          `embedflow: could not remove ${leftover.length} uploaded inputs: ${cleanup.message}\n`,
        );
      });
      throw error;
    }
    // This process hosts the "Lambdas": once the last one returned (a failed Map's siblings run
    // on after the execution ended, as in AWS), nothing of the run is in use and what is left of it
    // goes: its input, and whatever a straggler wrote after RecordFailure (a deployed bucket's
    // lifecycle rule expires that, a local one has none). The claim is held until then.
    await result.handlersSettled;
    await rt.objects.deleteKeys(await rt.objects.listKeys(runPrefix(runId)));
    await store.finishExecution(executionId, result);
    await rt.objects.deleteKeys(await rt.objects.listKeys(inputPrefix(runId)));
    // Which embedder made the vectors: --text queries need the demo's, anything else is external.
    const embedder = options.demo ? new HashingEmbedder().name : EXTERNAL_EMBEDDER;
    const catalog = catalogOf(rt);
    for (const collection of publishedCollections(result.events)) await catalog.record(collection, embedder);

    const summary: RunSummary = {
      executionId,
      runId,
      status: result.status,
      ...(result.error && { error: result.error }),
      collections: collectSummaries(result.output, result.events),
      wallMs: Math.round(performance.now() - started),
      ...(options.demo && { demoDimension: options.dim }),
    };
    return { summary, exitCode: result.status === 'SUCCEEDED' ? EXIT_OK : EXIT_RUN_FAILED };
  } finally {
    progress.stop();
    if (demoDir) await rm(demoDir, { recursive: true, force: true });
  }
}

/** Collections whose FinalMerge published a new version (not those the run had reached already). */
export function publishedCollections(events: HistoryEvent[]): string[] {
  const published = new Set<string>();
  for (const event of events) {
    if (event.stateName !== 'FinalMerge' || event.type !== 'TaskStateExited') continue;
    // FinalMerge's result lands at $.summary of the collection's state.
    const summary = (event.output as { summary?: Partial<CollectionSummary> } | undefined)?.summary;
    if (summary?.collection && summary.status === 'published') published.add(summary.collection);
  }
  return [...published];
}

/**
 * A start refused because the run id already ran: `already-running` is reported with exit code 2
 * (nothing was written: this input was not applied), `already-applied` with 0 and the outcome of the
 * execution that applied it, every collection marked already applied.
 */
export function duplicateStart(
  execution: { output?: unknown; events: HistoryEvent[] } | null,
  start: StartOutcome,
  runId: string,
  startedMs: number,
): { summary: RunSummary; exitCode: number } {
  const wallMs = Math.round(performance.now() - startedMs);
  if (start.outcome === 'already-running') {
    const message = `run ${runId} is already running as execution ${start.name} (see: embedflow executions show ${runId})`;
    process.stderr.write(`embedflow: ${message}\n`);
    const error = { name: 'AlreadyRunning', message };
    const summary = {
      executionId: start.name,
      runId,
      status: 'ALREADY_RUNNING' as const,
      error,
      collections: {},
      wallMs,
    };
    return { summary, exitCode: EXIT_USAGE };
  }
  const collections = collectSummaries(execution?.output, execution?.events);
  for (const outcome of Object.values(collections)) {
    if (outcome.status !== 'failed')
      Object.assign(outcome, { status: 'already-applied', alreadyApplied: true });
  }
  process.stderr.write(
    `embedflow: run ${runId} was already applied by execution ${start.name}: nothing changed\n`,
  );
  return {
    summary: {
      executionId: start.name,
      runId,
      status: 'SUCCEEDED',
      alreadyApplied: true,
      collections,
      wallMs,
    },
    exitCode: EXIT_OK,
  };
}

/**
 * Each collection's outcome: the output of a succeeded run, else what Summarize reported before the
 * run failed (which collections published and which did not). A run that failed before publishing
 * has none.
 */
export function collectSummaries(output: unknown, events: HistoryEvent[] = []): RunSummary['collections'] {
  const summarized = events.findLast((e) => e.stateName === 'Summarize' && e.type === 'TaskStateExited');
  const source = (output as { collections?: unknown } | undefined)?.collections ? output : summarized?.output;
  const list = (source as { collections?: CollectionOutcome[] } | undefined)?.collections ?? [];
  const collections: RunSummary['collections'] = {};
  for (const { collection, ...outcome } of list) collections[collection] = outcome;
  return collections;
}

function collectionLine(name: string, c: RunSummary['collections'][string], runId: string): string {
  const counts = `${c.deltas} deltas, ${c.chunks} chunks of ${c.chunkSize}, ${c.intermediateMerges} intermediate merges`;
  if (c.status === 'failed')
    return `  ${name}: NOT PUBLISHED: ${c.error.name}: ${c.error.message} (${counts})`;
  if (!('lockHoldMs' in c)) {
    return `  ${name}: published v${c.snapshotVersion} (${c.recordCount} records), then ${c.error.name}: ${c.error.message}`;
  }
  const shortCircuit = c.shortCircuit ? ' (short circuit)' : '';
  if (c.status === 'already-applied') {
    return `  ${name}: run ${runId} already applied, nothing changed (v${c.snapshotVersion}, ${c.recordCount} records)`;
  }
  const version =
    c.status === 'no-change'
      ? `no change: v${c.snapshotVersion}`
      : `v${c.previousVersion} -> v${c.snapshotVersion}`;
  // A two-phase commit holds no lock: what it costs is the commit and the wait for a build.
  const publishing =
    c.lockHoldMs > 0
      ? `lock held ${c.lockHoldMs} ms (acquire ${c.lockAcquireMs} ms), ${c.casRetries} CAS retries`
      : `log entry ${c.logSeq} committed in ${c.commitMs} ms, live ${c.waitMs} ms later`;
  return (
    `  ${name}: ${c.deltas} deltas, ${c.records} records, ${c.chunks} chunks of ${c.chunkSize}, ` +
    `${c.intermediateMerges} intermediate merges${shortCircuit}; ${version}, ${c.recordCount} records; ${publishing}`
  );
}

export function renderRunSummary(summary: RunSummary): string {
  const lines = [
    `execution ${summary.executionId}: ${summary.status} in ${(summary.wallMs / 1000).toFixed(1)} s`,
  ];
  if (summary.error) lines.push(`  ${summary.error.name}: ${summary.error.message}`);
  for (const [name, outcome] of Object.entries(summary.collections))
    lines.push(collectionLine(name, outcome, summary.runId));
  if (summary.demoDimension !== undefined && summary.status === 'SUCCEEDED')
    lines.push('', demoNote(summary));
  return lines.join('\n');
}

/** The end of a demo: its collections now have the demo's dimension, and how to start them over. */
export function demoNote(summary: RunSummary): string {
  const names = Object.keys(summary.collections);
  return [
    `note: ${names.join(' and ')} now hold ${summary.demoDimension}-d vectors from the demo's hashing embedder;`,
    `  data of another dimension is refused there. To start them over:`,
    ...names.map((name) => `    embedflow collections drop ${name} --yes`),
  ].join('\n');
}
