import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, loadConfig } from '../lambdas/core/config/config.ts';
import { handler as cleanup } from '../lambdas/handlers/cleanup.ts';
import { handler as finalMerge } from '../lambdas/handlers/final-merge.ts';
import { handler as groupSegments } from '../lambdas/handlers/group-segments.ts';
import { handler as mergeGroup } from '../lambdas/handlers/merge-group.ts';
import { handler as processChunk } from '../lambdas/handlers/process-chunk.ts';
import { handler as readRunManifest } from '../lambdas/handlers/read-run-manifest.ts';
import { handler as recordFailure } from '../lambdas/handlers/record-failure.ts';
import { handler as splitIntoChunks } from '../lambdas/handlers/split-into-chunks.ts';
import { handler as summarize } from '../lambdas/handlers/summarize.ts';
import { type AslDocument, withMapConcurrency } from '../lib/asl.ts';
import {
  type HistoryEvent,
  type LocalExecutionResult,
  runStateMachine,
  type TaskHandler,
} from './asl-runner.ts';

/**
 * The local mode of the workflow: the same ASL file the CDK stack deploys, with each Task state
 * served in-process by the same handler module a Lambda runs.
 */
export const DEFINITION_PATH = join(import.meta.dirname, '..', 'statemachines', 'embedding-merge.asl.json');

export const LOCAL_TASK_HANDLERS: Record<string, TaskHandler> = {
  ReadRunManifest: readRunManifest,
  SplitIntoChunks: splitIntoChunks,
  ProcessChunk: processChunk,
  GroupSegments: groupSegments,
  MergeGroup: mergeGroup,
  FinalMerge: finalMerge,
  Cleanup: cleanup,
  Summarize: summarize,
  RecordFailure: recordFailure,
};

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
  zeroRetryWaits?: boolean;
}

export function executeLocally(options: LocalExecutionOptions): Promise<LocalExecutionResult> {
  return runStateMachine({
    definition: deployedDefinition(loadConfig(process.env)),
    handlers: LOCAL_TASK_HANDLERS,
    input: options.input,
    executionId: options.executionId,
    zeroRetryWaits: options.zeroRetryWaits,
    onEvent: options.onEvent,
  });
}
