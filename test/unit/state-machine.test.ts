import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BadInputError, LockBusyError } from '../../lambdas/core/errors.ts';
import {
  findTaskStates,
  runStateMachine,
  stateTypes,
  substitutePlaceholders,
} from '../../local/asl-runner.ts';
import { LOCAL_TASK_HANDLERS, loadDefinition } from '../../local/workflow.ts';

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
    expect(finalMergeRetries[0].ErrorEquals).toEqual([
      'LockBusyError',
      'CasConflictError',
      'LeaseLostError',
      'StoreUnavailableError',
    ]);
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
    expect(result.events.map((event) => event.type)).toContain('TaskFailed');
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
    expect(result.events.filter((event) => event.type === 'TaskRetried')).toHaveLength(2);
    expect(result.events.map((event) => event.id)).toEqual(result.events.map((_, index) => index + 1));
  });

  it('refuses to run a definition with a Task that has no handler', async () => {
    await expect(
      runStateMachine({ definition: toy, handlers: {}, input: {}, executionId: 'toy-none' }),
    ).rejects.toThrow('no local handler for Task state(s) Work');
  });
});
