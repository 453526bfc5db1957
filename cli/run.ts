import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig } from '../lambdas/core/config/config.ts';
import { inputPrefix, isValidRunId } from '../lambdas/core/workflow/run-layout.ts';
import type { CollectionSummary } from '../lambdas/core/workflow/workflow-state.ts';
import type { ExecutionResult } from '../local/asl-runner.ts';
import { writeDemoInput } from '../local/demo-data.ts';
import { HashingEmbedder } from '../local/embedder.ts';
import { ExecutionStore } from '../local/execution-store.ts';
import { executeLocally } from '../local/workflow.ts';
import { deltaCount, scanInputDir, uploadInput } from './input-dir.ts';
import { useLocalStack } from './local-env.ts';
import { EXIT_OK, EXIT_RUN_FAILED, type GlobalOptions, UsageError } from './output.ts';
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
  status: ExecutionResult['status'];
  error?: { name: string; message: string };
  collections: Record<string, Omit<CollectionSummary, 'collection'>>;
  wallMs: number;
}

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
    // an --input directory is checked first, so that a bad one exits 2 with nothing started.
    let stack: ReturnType<typeof useLocalStack> | undefined;
    if (options.demo) {
      await mkdir(dataDir, { recursive: true });
      stack = useLocalStack(dataDir);
      stack.catch(() => {}); // awaited below, where a failure is reported
      demoDir = await mkdtemp(join(dataDir, 'demo-input-'));
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
    progress.message(`run ${runId}: uploading ${deltaCount(input)} deltas`);
    const executionInput = await uploadInput(rt.objects, runId, input, config.ioConcurrency);

    const store = new ExecutionStore(join(dataDir, 'executions'));
    const executionId = `${runId}-${randomUUID().slice(0, 8)}`;
    await store.createExecution({
      executionId,
      runId,
      input: executionInput,
      startDate: new Date().toISOString(),
    });
    const result = await executeLocally({
      input: executionInput,
      executionId,
      progress,
      onEvent: (event) => {
        store.appendEvent(executionId, event);
        progress.handle(event);
      },
    });
    await store.finishExecution(executionId, result);
    await rt.objects.deleteKeys(await rt.objects.listKeys(inputPrefix(runId)));

    const summary: RunSummary = {
      executionId,
      runId,
      status: result.status,
      ...(result.error && { error: result.error }),
      collections: collectSummaries(result.output),
      wallMs: Math.round(performance.now() - started),
    };
    return { summary, exitCode: result.status === 'SUCCEEDED' ? EXIT_OK : EXIT_RUN_FAILED };
  } finally {
    progress.stop();
    if (demoDir) await rm(demoDir, { recursive: true, force: true });
  }
}

export function collectSummaries(output: unknown): RunSummary['collections'] {
  const collections: RunSummary['collections'] = {};
  const list = (output as { collections?: CollectionSummary[] } | undefined)?.collections ?? [];
  for (const { collection, ...summary } of list) collections[collection] = summary;
  return collections;
}

export function renderRunSummary(summary: RunSummary): string {
  const lines = [
    `execution ${summary.executionId}: ${summary.status} in ${(summary.wallMs / 1000).toFixed(1)} s`,
  ];
  if (summary.error) lines.push(`  ${summary.error.name}: ${summary.error.message}`);
  for (const [name, c] of Object.entries(summary.collections)) {
    lines.push(
      `  ${name}: ${c.deltas} deltas, ${c.records} records, ${c.chunks} chunks of ${c.chunkSize}, ` +
        `${c.intermediateMerges} intermediate merges${c.shortCircuit ? ' (short circuit)' : ''}; ` +
        `v${c.previousVersion} -> v${c.snapshotVersion}, ${c.recordCount} records; ` +
        `lock held ${c.lockHoldMs} ms (acquire ${c.lockAcquireMs} ms), ${c.casRetries} CAS retries`,
    );
  }
  return lines.join('\n');
}
