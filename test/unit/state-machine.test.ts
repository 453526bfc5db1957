import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BadInputError, LockBusyError } from '../../lambdas/core/errors.ts';
import { chunkPlan } from '../../lambdas/core/workflow/chunking.ts';
import { collectionSummary, groupSegments } from '../../lambdas/core/workflow/merging.ts';
import { parseRunInput } from '../../lambdas/core/workflow/run-input.ts';
import { summarizeRun } from '../../lambdas/core/workflow/run-summary.ts';
import type {
  CollectionState,
  MergeTask,
  SegmentCounts,
} from '../../lambdas/core/workflow/workflow-state.ts';
import { payloadBytes } from '../../local/asl-limits.ts';
import {
  findTaskStates,
  runStateMachine,
  stateTypes,
  substitutePlaceholders,
  type TaskHandler,
} from '../../local/asl-runner.ts';
import { deployedDefinition, loadDefinition, localTaskHandlers } from '../../local/workflow.ts';
import { type AslDocument, statesOf } from '../../statemachines/definition.ts';

const require = createRequire(import.meta.url);
const validate = require('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errorsText(): string;
};

type State = Record<string, any>;
const allStates = (definition: object): [string, State][] =>
  [...statesOf(definition as AslDocument)].map(([name, { state }]) => [name, state]);

describe('statemachines/embedding-merge.asl.json', () => {
  const definition = loadDefinition();

  it('is valid ASL (asl-validator, on a copy: it mutates what it validates)', () => {
    const result = validate(structuredClone(definition));
    expect(result.isValid, result.errorsText()).toBe(true);
  });

  it('has the state names of the product, with a Task handler for every Task', () => {
    const types = stateTypes(definition);
    for (const [name, type] of [
      ['SplitIntoChunks', 'Task'],
      ['ProcessChunks', 'Map'],
      ['ProcessChunk', 'Task'],
      ['SingleChunk?', 'Choice'],
      ['GroupSegments', 'Task'],
      ['IntermediateMerges', 'Map'],
      ['MergeGroup', 'Task'],
      ['FinalMerge', 'Task'],
      ['Cleanup', 'Task'],
      ['PublishFailed', 'Pass'],
      ['Summarize', 'Task'],
      ['AllPublished?', 'Choice'],
      ['RunFailed', 'Fail'],
    ]) {
      expect(types.get(name!), name).toBe(type);
    }
    expect(findTaskStates(definition).sort()).toEqual(Object.keys(localTaskHandlers()).sort());
  });

  it('gives every Task a timeout and a placeholder ARN, and never retries bad input', () => {
    for (const [name, state] of allStates(definition)) {
      if (state.Type !== 'Task') continue;
      expect(state.TimeoutSeconds, name).toBeGreaterThan(0);
      expect(state.Resource, name).toBe(`\${${name}Arn}`);
      const retried = (state.Retry ?? []).flatMap((retry: { ErrorEquals: string[] }) => retry.ErrorEquals);
      for (const never of [
        'BadInputError',
        'ConfigError',
        'SnapshotValidationError',
        'States.ALL',
        'States.TaskFailed',
      ]) {
        expect(retried, `${name} retries ${never}`).not.toContain(never);
      }
    }
    const finalMergeRetries = allStates(definition).find(([name]) => name === 'FinalMerge')![1].Retry;
    expect(finalMergeRetries[0].ErrorEquals).toEqual([
      'LockBusyError',
      'CasConflictError',
      'LeaseLostError',
      'StoreUnavailableError',
      'PublicationPendingError',
    ]);
  });

  it('retries transient errors with one Retry block, the same on every Task, after any specific one', () => {
    const transient = allStates(definition)
      .filter(([, state]) => state.Type === 'Task')
      .map(([name, state]) => [name, state.Retry?.at(-1)] as const);
    const [, shared] = transient[0]!;
    expect(shared.ErrorEquals).toContain('Lambda.ServiceException');
    for (const [name, retry] of transient) expect(retry, name).toEqual(shared);
  });

  it('substitutes every placeholder', () => {
    expect(JSON.stringify(substitutePlaceholders(definition))).not.toContain('${');
  });
});

describe('local runner', () => {
  const toy = {
    StartAt: 'Work',
    States: {
      Work: {
        Type: 'Task',
        Resource: '${WorkArn}',
        TimeoutSeconds: 5,
        Retry: [{ ErrorEquals: ['LockBusyError'], MaxAttempts: 2, IntervalSeconds: 1 }],
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Failed' }],
        End: true,
      },
      Failed: { Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' },
    },
  };

  it('fails the execution when a handler throws: an error is never a result', async () => {
    const result = await runStateMachine({
      definition: toy,
      handlers: {
        Work: async () => {
          throw new BadInputError('words/0001.jsonl line 3: malformed JSON');
        },
      },
      input: {},
      executionId: 'toy-fail',
    });
    expect(result.status).toBe('FAILED');
    expect(result.error).toEqual({
      name: 'BadInputError',
      message: 'words/0001.jsonl line 3: malformed JSON',
    });
    expect(result.events.map((event) => event.type)).toContain('LambdaFunctionFailed');
    expect(result.events.at(-1)?.type).toBe('ExecutionFailed');
  });

  it('retries a named transient error and then succeeds', async () => {
    let calls = 0;
    const result = await runStateMachine({
      definition: toy,
      handlers: {
        Work: async () => {
          calls++;
          if (calls < 3) throw new LockBusyError('busy');
          return { done: calls };
        },
      },
      input: {},
      executionId: 'toy-retry',
      zeroRetryWaits: true,
    });
    expect(result).toMatchObject({ status: 'SUCCEEDED', output: { done: 3 } });
    expect(result.events.filter((event) => event.type === 'LambdaFunctionScheduled')).toHaveLength(3);
    expect(result.events.map((event) => event.id)).toEqual(result.events.map((_, index) => index + 1));
  });

  it('refuses to run a definition with a Task that has no handler', async () => {
    await expect(
      runStateMachine({ definition: toy, handlers: {}, input: {}, executionId: 'toy-none' }),
    ).rejects.toThrow('no local handler for Task state(s) Work');
  });
});

/**
 * The run's control flow for real (the ASL, the runner and its limits, grouping, summarizing): the
 * data plane answers with the shapes its handlers return, without touching storage, so a
 * 20,000-delta fan-out costs seconds. test/integration/workflow-limits.test.ts runs it for real.
 */
function dataPlaneDoubles(
  deltas: number,
  overrides: Record<string, TaskHandler> = {},
): Record<string, TaskHandler> {
  // One record per delta, 15 deltas per chunk: what ProcessChunk reports of its chunk.
  const chunk = ({ chunkIndex }: { chunkIndex: number }): SegmentCounts => {
    const records = Math.min(15, deltas - chunkIndex * 15);
    return { records, inputRecords: records };
  };
  return {
    ReadRunManifest: async (input: unknown) => parseRunInput(input),
    SplitIntoChunks: async (input: any) => chunkPlan(input.runId, input.collection.name, deltas, 15),
    ProcessChunk: async (task: any) => chunk(task),
    GroupSegments: async (state: unknown) => groupSegments(state as CollectionState, 20),
    MergeGroup: async (task: unknown) => {
      const inputRecords = (task as MergeTask).segments.reduce((sum, s) => sum + s.inputRecords, 0);
      return { records: inputRecords, inputRecords };
    },
    FinalMerge: async (state: unknown) =>
      collectionSummary(state as CollectionState, 20, {
        status: 'published',
        previousVersion: 0,
        snapshotVersion: 1,
        recordCount: deltas,
        lockHoldMs: 1,
        lockAcquireMs: 1,
        casRetries: 0,
        swapReplays: 0,
        publishMs: 1,
        commitMs: 1,
        waitMs: 0,
        seq: 1,
      }),
    Cleanup: async () => ({ deletedObjects: 0 }),
    Summarize: async (input: any) => summarizeRun(async () => undefined, input.runId, input.results),
    RecordFailure: async (input: any) => ({ error: input.failure?.Error, cause: input.failure?.Cause }),
    ...overrides,
  };
}
const run = (handlers: Record<string, TaskHandler>, collections = ['words', 'lines'], runId = 'big') =>
  runStateMachine({
    definition: deployedDefinition({ mapMaxConcurrency: 40 }),
    handlers,
    input: {
      runId,
      collections: collections.map((name) => ({ name, deltaPrefix: `input/${runId}/${name}/` })),
    },
    executionId: runId,
  });

describe('the workflow at 20,000 deltas within the 256 KB state limit', () => {
  it('passes every state of a 1,334-chunk collection (two collections side by side) under the limit', async () => {
    const result = await run(dataPlaneDoubles(20_000));
    expect(result.status, JSON.stringify(result.error)).toBe('SUCCEEDED');
    const summaries = (result.output as { collections: Record<string, unknown>[] }).collections;
    for (const summary of summaries) {
      expect(summary).toMatchObject({
        deltas: 20_000,
        records: 20_000,
        chunks: 1334,
        intermediateMerges: 67 + 4,
      });
    }
    const largest = Math.max(
      ...result.events.flatMap((e) => [payloadBytes(e.input), payloadBytes(e.output)]),
    );
    expect(largest).toBeLessThan(262_144);
  }, 120_000);
});

describe('a publish that fails in one collection', () => {
  class SnapshotValidationError extends Error {
    override name = 'SnapshotValidationError';
  }

  it('fails alone: the others publish, nothing is cleaned up under them, the run says which is which', async () => {
    let releaseWords!: () => void;
    const wordsBlocked = new Promise<void>((resolve) => (releaseWords = resolve));
    const seen: string[] = [];
    const doubles = dataPlaneDoubles(30);
    const result = await run({
      ...doubles,
      FinalMerge: async (state: any) => {
        if (state.collection === 'lines') {
          releaseWords(); // words is still publishing when lines fails
          throw new SnapshotValidationError('lines: expected 30 records, found 29');
        }
        await wordsBlocked;
        // Still at work a while after lines failed: a Catch around the whole Map would clean up now.
        await new Promise((resolve) => setTimeout(resolve, 100));
        seen.push('words published');
        return doubles.FinalMerge!(state);
      },
      RecordFailure: async (input: any) => {
        seen.push('RecordFailure');
        return doubles.RecordFailure!(input);
      },
    });
    // The failure path ran once every publish had ended, never under words' FinalMerge.
    expect(seen).toEqual(['words published', 'RecordFailure']);
    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('PublishIncomplete');
    expect(result.error?.message).toBe(
      'Not published: lines (SnapshotValidationError: lines: expected 30 records, found 29). ' +
        'Published: words (v1). Run big again to publish the rest: what is published is not applied twice.',
    );
    const summarized = result.events.find((e) => e.stateName === 'Summarize' && e.type === 'TaskStateExited');
    expect((summarized!.output as { collections: unknown[] }).collections).toEqual([
      expect.objectContaining({ collection: 'words', status: 'published', snapshotVersion: 1 }),
      {
        collection: 'lines',
        status: 'failed',
        deltas: 30,
        chunkSize: 15,
        chunks: 2,
        intermediateMerges: 0,
        error: { name: 'SnapshotValidationError', message: 'lines: expected 30 records, found 29' },
      },
    ]);
    const cleaned = result.events.filter((e) => e.stateName === 'Cleanup' && e.type === 'TaskStateEntered');
    expect(cleaned.map((e) => (e.input as { collection: string }).collection)).toEqual(['words']);
  });

  it('does not fail a collection whose cleanup failed after it published', async () => {
    const result = await run({
      ...dataPlaneDoubles(30),
      Cleanup: async () => {
        throw new Error('S3 said no');
      },
    });
    expect(result.status).toBe('SUCCEEDED');
    const outcomes = (result.output as { collections: { status: string }[] }).collections;
    expect(outcomes.map((o) => o.status)).toEqual(['published', 'published']);
  });
});
