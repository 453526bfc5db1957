import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BadInputError, LockBusyError } from '../../lambdas/core/errors.ts';
import { chunkPlan } from '../../lambdas/core/workflow/chunking.ts';
import { collectionSummary, groupSegments } from '../../lambdas/core/workflow/merging.ts';
import { parseRunInput } from '../../lambdas/core/workflow/run-input.ts';
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
} from '../../local/asl-runner.ts';
import { deployedDefinition, LOCAL_TASK_HANDLERS, loadDefinition } from '../../local/workflow.ts';

const require = createRequire(import.meta.url);
const validate = require('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errorsText(): string;
};

type State = Record<string, any>;
function allStates(definition: object): [string, State][] {
  const states: [string, State][] = [];
  const visit = (machine: { States: Record<string, State> }) => {
    for (const [name, state] of Object.entries(machine.States)) {
      states.push([name, state]);
      if (state.ItemProcessor) visit(state.ItemProcessor);
    }
  };
  visit(definition as { States: Record<string, State> });
  return states;
}

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
      ['RunFailed', 'Fail'],
    ]) {
      expect(types.get(name!), name).toBe(type);
    }
    expect(findTaskStates(definition).sort()).toEqual(Object.keys(LOCAL_TASK_HANDLERS).sort());
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
    expect(finalMergeRetries[0].ErrorEquals).toEqual(['LockBusyError', 'CasConflictError', 'LeaseLostError']);
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

describe('the workflow at 20,000 deltas within the 256 KB state limit', () => {
  // The run's control flow for real (the ASL, the runner enforcing the limit, grouping): the data
  // plane answers with the shapes its handlers return, without touching storage, so the fan-out of
  // a 20,000-delta run costs seconds. test/integration/workflow-limits.test.ts runs it for real.
  // One record per delta, 15 deltas per chunk: what ProcessChunk reports of its chunk.
  const chunk = ({ chunkIndex }: { chunkIndex: number }): SegmentCounts => {
    const records = Math.min(15, 20_000 - chunkIndex * 15);
    return { records, inputRecords: records };
  };
  const handlers = {
    ReadRunManifest: async (input: unknown) => parseRunInput(input),
    SplitIntoChunks: async (input: any) => chunkPlan(input.runId, input.collection.name, 20_000, 15),
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
        recordCount: 20_000,
        lockHoldMs: 1,
        lockAcquireMs: 1,
        casRetries: 0,
        publishMs: 1,
      }),
    Cleanup: async () => ({ deletedObjects: 0 }),
    RecordFailure: async (input: any) => ({ error: input.failure?.Error, cause: input.failure?.Cause }),
  };

  it('passes every state of a 1,334-chunk collection (two collections side by side) under the limit', async () => {
    const collections = ['words', 'lines'].map((name) => ({ name, deltaPrefix: `input/big/${name}/` }));
    const result = await runStateMachine({
      definition: deployedDefinition({ mapMaxConcurrency: 40 }),
      handlers,
      input: { runId: 'big', collections },
      executionId: 'big',
    });
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
