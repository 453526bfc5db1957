import { readFileSync } from 'node:fs';
import type { ProgressReporter } from '../lambdas/core/observability/observability.ts';
import { type ExecutionResult, type HistoryEvent, runStateMachine, type TaskHandler } from './asl-runner.ts';
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
    RecordFailure: loadedOnFirstCall(
      async () => (await import('../lambdas/handlers/record-failure.ts')).handler,
    ),
  };
}

export function loadDefinition(): object {
  return JSON.parse(readFileSync(DEFINITION_PATH, 'utf8')) as object;
}

export interface LocalExecutionOptions {
  input: unknown;
  executionId: string;
  onEvent?: (event: HistoryEvent) => void;
  /** Where FinalMerge reports its publish phases (the CLI's progress display). */
  progress?: ProgressReporter;
  zeroRetryWaits?: boolean;
}

export function executeLocally(options: LocalExecutionOptions): Promise<ExecutionResult> {
  return runStateMachine({
    definition: loadDefinition(),
    // The shipped ASL file is validated with asl-validator by test/unit/state-machine.test.ts, so
    // each run skips the validator's half second before its first state.
    validated: true,
    handlers: localTaskHandlers(options.progress),
    input: options.input,
    executionId: options.executionId,
    zeroRetryWaits: options.zeroRetryWaits,
    onEvent: options.onEvent,
  });
}
