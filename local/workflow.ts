import { readFileSync } from 'node:fs';
import { type Config, loadConfig } from '../lambdas/core/config/config.ts';
import type { ProgressReporter } from '../lambdas/core/observability/observability.ts';
import { withMapConcurrency } from '../lib/asl.ts';
import type { AslDocument } from '../statemachines/definition.ts';
import {
  type HistoryEvent,
  type LocalExecutionResult,
  runStateMachine,
  type TaskHandler,
} from './asl-runner.ts';
import { DEFINITION_PATH } from './package-paths.ts';

/**
 * The local mode of the workflow: the same ASL file the CDK stack deploys, with each Task state
 * served in-process by the same handler module a Lambda runs.
 */

/** A handler whose module is imported at its first call, as a Lambda loads its code at a cold start. */
function loadedOnFirstCall(load: () => Promise<TaskHandler>): TaskHandler {
  let loaded: Promise<TaskHandler> | undefined;
  return async (input) => {
    loaded ??= load();
    return (await loaded)(input);
  };
}

/** The handler of every Task state, keyed by state name; FinalMerge reports its phases to `progress`. */
export function localTaskHandlers(progress?: ProgressReporter): Record<string, TaskHandler> {
  return {
    ReadRunManifest: loadedOnFirstCall(
      async () => (await import('../lambdas/handlers/read-run-manifest.ts')).handler,
    ),
    SplitIntoChunks: loadedOnFirstCall(
      async () => (await import('../lambdas/handlers/split-into-chunks.ts')).handler,
    ),
    ProcessChunk: loadedOnFirstCall(
      async () => (await import('../lambdas/handlers/process-chunk.ts')).handler,
    ),
    GroupSegments: loadedOnFirstCall(
      async () => (await import('../lambdas/handlers/group-segments.ts')).handler,
    ),
    MergeGroup: loadedOnFirstCall(async () => (await import('../lambdas/handlers/merge-group.ts')).handler),
    FinalMerge: loadedOnFirstCall(async () =>
      (await import('../lambdas/handlers/final-merge.ts')).finalMergeHandler(progress),
    ),
    Cleanup: loadedOnFirstCall(async () => (await import('../lambdas/handlers/cleanup.ts')).handler),
    Summarize: loadedOnFirstCall(async () => (await import('../lambdas/handlers/summarize.ts')).handler),
    RecordFailure: loadedOnFirstCall(
      async () => (await import('../lambdas/handlers/record-failure.ts')).handler,
    ),
  };
}

export function loadDefinition(): object {
  return JSON.parse(readFileSync(DEFINITION_PATH, 'utf8')) as object;
}

/**
 * The definition as the stack deploys it with these settings: MAP_MAX_CONCURRENCY bounds the chunk
 * and merge Maps (lib/asl.ts, the same transformation), so a local run is as wide as a deployed one.
 */
export function deployedDefinition(config: Pick<Config, 'mapMaxConcurrency'>): object {
  return withMapConcurrency(loadDefinition() as AslDocument, config.mapMaxConcurrency);
}

export interface LocalExecutionOptions {
  input: unknown;
  executionId: string;
  onEvent?: (event: HistoryEvent) => void;
  /** Where FinalMerge reports its publish phases (the CLI's progress display). */
  progress?: ProgressReporter;
  zeroRetryWaits?: boolean;
}

export function executeLocally(options: LocalExecutionOptions): Promise<LocalExecutionResult> {
  return runStateMachine({
    definition: deployedDefinition(loadConfig(process.env)),
    // The shipped ASL file is validated with asl-validator by test/unit/state-machine.test.ts (with
    // MAP_MAX_CONCURRENCY rendered too), so each run skips the validator's half second.
    validated: true,
    handlers: localTaskHandlers(options.progress),
    input: options.input,
    executionId: options.executionId,
    zeroRetryWaits: options.zeroRetryWaits,
    onEvent: options.onEvent,
  });
}
