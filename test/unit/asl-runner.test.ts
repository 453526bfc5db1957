import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  findTaskStates,
  type HistoryEvent,
  runStateMachine,
  stateTypes,
  substitutePlaceholders,
  type TaskHandler,
} from '../../local/asl-runner.ts';
import { ExecutionStore } from '../../local/execution-store.ts';

class BadInputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BadInputError';
  }
}
class TransientError extends Error {
  override name = 'TransientError';
}

const task = (name: string, fields: object) => ({
  Type: 'Task',
  Resource: `\${${name}Arn}`,
  TimeoutSeconds: 5,
  ...fields,
});
const toFailure = { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'RecordFailure' };
const retryTransient = { ErrorEquals: ['TransientError'], IntervalSeconds: 1, MaxAttempts: 2 };

/** Task → inline Map of Tasks → Pass → Choice loop over a Task → Task → Succeed; failures → Pass → Fail. */
const toy = {
  StartAt: 'Prepare',
  States: {
    Prepare: task('Prepare', {
      ResultPath: '$.prepared',
      Retry: [retryTransient],
      Catch: [toFailure],
      Next: 'SquareAll',
    }),
    SquareAll: {
      Type: 'Map',
      ItemsPath: '$.prepared.items',
      MaxConcurrency: 2,
      ItemSelector: { 'value.$': '$$.Map.Item.Value', 'index.$': '$$.Map.Item.Index', 'scale.$': '$.scale' },
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: 'Square',
        States: { Square: task('Square', { End: true }) },
      },
      ResultSelector: { 'squares.$': '$', 'count.$': 'States.ArrayLength($)' },
      ResultPath: '$.map',
      Catch: [toFailure],
      Next: 'StartLoop',
    },
    StartLoop: { Type: 'Pass', Result: { cursor: 0, total: 0 }, ResultPath: '$.loop', Next: 'More?' },
    'More?': {
      Type: 'Choice',
      Choices: [{ Variable: '$.loop.cursor', NumericLessThanPath: '$.map.count', Next: 'Accumulate' }],
      Default: 'Report',
    },
    Accumulate: task('Accumulate', {
      Parameters: { 'squares.$': '$.map.squares', 'cursor.$': '$.loop.cursor', 'total.$': '$.loop.total' },
      ResultPath: '$.loop',
      Next: 'More?',
    }),
    Report: task('Report', {
      Parameters: { 'total.$': '$.loop.total', 'id.$': '$$.Execution.Id' },
      Next: 'Done',
    }),
    Done: { Type: 'Succeed' },
    RecordFailure: {
      Type: 'Pass',
      Parameters: { 'error.$': '$.failure.Error', 'cause.$': "States.Format('toy: {}', $.failure.Cause)" },
      Next: 'Failed',
    },
    Failed: { Type: 'Fail', ErrorPath: '$.error', CausePath: '$.cause' },
  },
};

function toyHandlers(overrides: Record<string, TaskHandler> = {}) {
  const squared: number[] = [];
  let running = 0;
  let maxRunning = 0;
  const handlers: Record<string, TaskHandler> = {
    Prepare: async (input: any) => ({ items: input.numbers }),
    Square: async (input: any) => {
      maxRunning = Math.max(maxRunning, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      squared.push(input.value);
      return input.value * input.value * input.scale;
    },
    Accumulate: async ({ squares, cursor, total }: any) => ({
      cursor: cursor + 1,
      total: total + squares[cursor],
    }),
    Report: async (input: any) => input,
    ...overrides,
  };
  return { handlers, squared, maxRunning: () => maxRunning };
}

const ID = 'arn:aws:states:local:000000000000:execution:toy:run-1';
const run = (handlers: Record<string, TaskHandler>, extra: { onEvent?: (e: HistoryEvent) => void } = {}) =>
  runStateMachine({
    definition: toy,
    handlers,
    input: { numbers: [1, 2, 3, 4, 5], scale: 10 },
    executionId: ID,
    zeroRetryWaits: true,
    ...extra,
  });

const count = (events: HistoryEvent[], type: string, stateName?: string) =>
  events.filter((e) => e.type === type && (stateName === undefined || e.stateName === stateName)).length;

describe('runStateMachine', () => {
  it('flows outputs through a Map, a Choice loop and $$.Execution.Id, with a console-style history', async () => {
    const { handlers, squared, maxRunning } = toyHandlers();
    const live: HistoryEvent[] = [];
    const result = await run(handlers, { onEvent: (event) => live.push(event) });

    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toEqual({ total: 550, id: ID });
    expect(squared.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(maxRunning()).toBe(2); // MaxConcurrency reached, never passed

    const { events } = result;
    expect(live).toEqual(events);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    for (const e of events) expect(new Date(e.timestamp).toISOString()).toBe(e.timestamp);
    expect(events[0]).toMatchObject({
      type: 'ExecutionStarted',
      input: { numbers: [1, 2, 3, 4, 5], scale: 10 },
    });
    expect(events.at(-1)).toMatchObject({ type: 'ExecutionSucceeded', output: result.output });
    for (const [state, visits] of Object.entries({ Prepare: 1, Square: 5, Accumulate: 5, Report: 1 })) {
      for (const type of [
        'TaskStateEntered',
        'LambdaFunctionScheduled',
        'LambdaFunctionStarted',
        'LambdaFunctionSucceeded',
        'TaskStateExited',
      ]) {
        expect(count(events, type, state), `${type} ${state}`).toBe(visits);
      }
    }
    // Every event follows an earlier one of its own iteration, as previousEventId does in AWS.
    const byId = new Map(events.map((e) => [e.id, e]));
    for (const e of events) expect(e.previousEventId).toBeLessThan(e.id);
    for (const exit of events.filter((e) => e.type === 'TaskStateExited' && e.stateName === 'Square')) {
      const chain = [exit];
      while (chain.at(-1)!.type !== 'MapIterationStarted')
        chain.push(byId.get(chain.at(-1)!.previousEventId)!);
      expect(chain.map((e) => e.type)).toEqual([
        'TaskStateExited',
        'LambdaFunctionSucceeded',
        'LambdaFunctionStarted',
        'LambdaFunctionScheduled',
        'TaskStateEntered',
        'MapIterationStarted',
      ]);
      expect(new Set(chain.map((e) => e.mapIterationIndex)).size).toBe(1);
    }
    expect(count(events, 'MapStateEntered', 'SquareAll')).toBe(1);
    expect(count(events, 'MapIterationStarted', 'SquareAll')).toBe(5);
    expect(count(events, 'MapIterationSucceeded', 'SquareAll')).toBe(5);
    expect(count(events, 'ChoiceStateEntered', 'More?')).toBe(6);
    expect(count(events, 'PassStateEntered', 'StartLoop')).toBe(1);
    expect(count(events, 'SucceedStateEntered', 'Done')).toBe(1);
    const square = events.filter((e) => e.type === 'TaskStateEntered' && e.stateName === 'Square');
    expect(square.map((e) => e.mapIterationIndex).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(square.every((e) => e.parentStateName === 'SquareAll')).toBe(true);
    const mapExit = events.find((e) => e.type === 'MapStateExited');
    expect(mapExit?.output).toMatchObject({ map: { squares: [10, 40, 90, 160, 250], count: 5 } });
  });

  it('fails the execution with the name and message of a handler error through Catch → Pass → Fail', async () => {
    const { handlers } = toyHandlers({
      Square: async (input: any) => {
        if (input.value === 3)
          throw new BadInputError('item 3: not a square', { cause: new SyntaxError('x') });
        return 0;
      },
    });
    const result = await run(handlers);

    expect(result.status).toBe('FAILED');
    expect(result.output).toBeUndefined();
    // ErrorPath/CausePath of the Fail state; plain data, as the store writes it
    // Cause is what Lambda's Node runtime reports: its JSON of the error, in the Catch output too.
    expect(result.error?.name).toBe('BadInputError');
    expect(result.error?.message.startsWith('toy: ')).toBe(true);
    const lambdaCause = { errorType: 'BadInputError', errorMessage: 'item 3: not a square' };
    expect(JSON.parse(result.error!.message.slice('toy: '.length))).toMatchObject(lambdaCause);
    const { events } = result;
    const failed = events.find((e) => e.type === 'LambdaFunctionFailed');
    expect(failed).toMatchObject({ stateName: 'Square', error: 'BadInputError' });
    expect(JSON.parse(failed!.cause!)).toMatchObject(lambdaCause);
    expect(count(events, 'MapIterationFailed')).toBe(1);
    expect(count(events, 'MapStateFailed', 'SquareAll')).toBe(1);
    expect(count(events, 'MapStateSucceeded')).toBe(0);
    expect(count(events, 'FailStateEntered', 'Failed')).toBe(1);
    expect(count(events, 'ExecutionSucceeded')).toBe(0);
    expect(events.at(-1)).toMatchObject({ type: 'ExecutionFailed', error: 'BadInputError' });
  });

  it('fails on an uncaught handler error, keeping its name', async () => {
    const { handlers } = toyHandlers({
      Report: async () => {
        throw new BadInputError('report: no total');
      },
    });
    const result = await run(handlers);
    expect(result).toMatchObject({
      status: 'FAILED',
      error: { name: 'BadInputError', message: 'report: no total' },
    });
    const failed = result.events.at(-1)!;
    expect(failed).toMatchObject({ type: 'ExecutionFailed', error: 'BadInputError' });
    expect(JSON.parse(failed.cause!)).toMatchObject({ errorMessage: 'report: no total' });
  });

  it('stops a Map at its first failed iteration as Step Functions does: no further item starts, the Catch runs at once', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    let release!: () => void;
    const stillRunning = new Promise<void>((resolve) => (release = resolve));
    const { handlers } = toyHandlers({
      Square: async (input: any) => {
        started.push(input.value);
        if (input.value === 2) throw new BadInputError('item 2');
        await stillRunning; // a sibling Lambda busy when item 2 fails
        finished.push(input.value);
        return 1;
      },
    });
    const result = await run(handlers);
    expect(result.error?.name).toBe('BadInputError');
    // The execution went through Catch → RecordFailure → Fail and ended while item 1 still ran.
    expect(finished).toEqual([]);
    expect(result.events.map((e) => e.stateName)).toContain('RecordFailure');
    expect(started).toEqual([1, 2]);
    expect(count(result.events, 'MapIterationStarted')).toBe(2);
    expect(result.events.find((e) => e.type === 'MapIterationAborted')).toMatchObject({
      mapIterationIndex: 0,
    });
    expect(result.events.at(-1)?.type).toBe('ExecutionFailed');
    release();
    await result.handlersSettled;
    expect(finished).toEqual([1]); // it ran to its end, as a Lambda does, its result discarded
    expect(result.events.at(-1)?.type).toBe('ExecutionFailed');
  }, 20_000); // a runner that waits for the blocked sibling never returns: the test times out

  it('retries a named transient error, without waiting when asked', async () => {
    let calls = 0;
    const { handlers } = toyHandlers({
      Prepare: async (input: any) => {
        if (++calls <= 2) throw new TransientError(`attempt ${calls}`);
        return { items: input.numbers };
      },
    });
    const result = await run(handlers);
    expect(result.status).toBe('SUCCEEDED');
    const prepare = result.events.filter((e) => e.stateName === 'Prepare');
    const failed = prepare.filter((e) => e.type === 'LambdaFunctionFailed');
    // As in AWS there is no retry event: a retry is a new LambdaFunctionScheduled after the failure.
    const scheduled = prepare.filter((e) => e.type === 'LambdaFunctionScheduled');
    expect(scheduled).toHaveLength(3);
    const retried = scheduled.slice(1);
    expect(retried.map((e) => e.previousEventId)).toEqual(failed.map((e) => e.id));
    expect(prepare.some((e) => /Retried|Caught/.test(e.type))).toBe(false);
    // IntervalSeconds 1 and BackoffRate 2 would wait 1 s, then 2 s
    const waits = retried.map((e, i) => Date.parse(e.timestamp) - Date.parse(failed[i]!.timestamp));
    expect(Math.max(...waits)).toBeLessThan(500);
    expect(count(prepare, 'TaskStateEntered')).toBe(1);
  });

  it('refuses to run when a Task state has no handler, naming it, before calling any handler', async () => {
    let called = false;
    const { Prepare: _, Square: __, Report: ___, ...rest } = toyHandlers().handlers;
    const prepare = async () => {
      called = true;
    };
    await expect(run({ ...rest, Prepare: prepare })).rejects.toThrow(
      'no local handler for Task state(s) Square, Report',
    );
    expect(called).toBe(false);
  });
});

describe('definition helpers', () => {
  it('substitutes every ${Name} placeholder, from values or with a local fake ARN', () => {
    const substituted = substitutePlaceholders(JSON.stringify(toy), {
      ReportArn: 'arn:aws:lambda:x:1:function:R',
    });
    const text = JSON.stringify(substituted);
    expect(text).not.toContain('${');
    expect(text).toContain('"arn:aws:lambda:local:000000000000:function:Prepare"');
    expect(text).toContain('"arn:aws:lambda:x:1:function:R"');
    expect(JSON.stringify(toy)).toContain('${PrepareArn}'); // the input is left alone
    expect(() =>
      substitutePlaceholders({ StartAt: 'A', States: { A: { Resource: '${Not-A-Name}' } } }),
    ).toThrow('unsubstituted placeholder(s) in the definition: ${Not-A-Name}');
  });

  it('finds Task states and types inside Map item processors', () => {
    expect(findTaskStates(toy).sort()).toEqual(['Accumulate', 'Prepare', 'Report', 'Square']);
    expect(stateTypes(toy).get('SquareAll')).toBe('Map');
    expect(stateTypes(toy).get('Failed')).toBe('Fail');
  });

  it('runs a Map nested in a Map', async () => {
    const map = (processor: object) => ({ Type: 'Map', ItemProcessor: processor, End: true });
    const leaf = { StartAt: 'Leaf', States: { Leaf: task('Leaf', { End: true }) } };
    const nested = {
      StartAt: 'Outer',
      States: { Outer: map({ StartAt: 'Inner', States: { Inner: map(leaf) } }) },
    };
    const result = await runStateMachine({
      definition: nested,
      handlers: { Leaf: async (value) => (value as number) * 2 },
      input: [[1, 2], [3]],
      executionId: 'nested',
    });
    expect(result).toMatchObject({ status: 'SUCCEEDED', output: [[2, 4], [6]] });
    expect(
      result.events.filter((e) => e.stateName === 'Leaf').every((e) => e.parentStateName === 'Inner'),
    ).toBe(true);
  });
});

describe('ExecutionStore', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const event = (id: number, type: string): HistoryEvent => ({
    id,
    type,
    previousEventId: id - 1,
    timestamp: '2026-01-01T00:00:00.000Z',
  });
  const create = (store: ExecutionStore, executionId: string, startDate: string, runId?: string) =>
    store.createExecution({ executionId, input: { executionId }, startDate, ...(runId && { runId }) });

  it('round-trips an execution, readable live while it runs, and lists newest first', async () => {
    dir = await mkdtemp(join(tmpdir(), 'executions-'));
    const store = new ExecutionStore(dir);
    const events = join(dir, 'older', 'events.jsonl');
    await create(store, 'older', '2026-01-01T00:00:00.000Z');
    await create(store, 'newer', '2026-01-02T00:00:00.000Z', 'r');
    await expect(create(store, 'older', '')).rejects.toThrow('execution "older" already exists');
    await expect(store.getExecution('..')).rejects.toThrow('invalid execution id');

    store.appendEvent('older', event(1, 'ExecutionStarted'));
    await writeFile(events, '{"id":2,"ty', { flag: 'a' }); // another process is writing this line
    expect(await store.getExecution('older')).toMatchObject({ status: 'RUNNING', events: [{ id: 1 }] });
    await writeFile(events, 'pe":"ExecutionFailed","timestamp":""}\n', { flag: 'a' });
    const failed = { name: 'BadInputError', message: 'bad' };
    const stopDate = '2026-01-01T00:00:01.000Z';
    const history = [event(1, 'ExecutionStarted'), event(2, 'ExecutionFailed')];
    await store.finishExecution('older', {
      status: 'FAILED',
      error: failed,
      events: history,
      startDate: '',
      stopDate,
    });

    const result = await run(toyHandlers().handlers, { onEvent: (e) => store.appendEvent('newer', e) });
    await store.finishExecution('newer', result);

    const newer = await store.getExecution('newer');
    expect(newer).toMatchObject({
      status: 'SUCCEEDED',
      runId: 'r',
      output: result.output,
      stopDate: result.stopDate,
    });
    expect(newer?.events).toEqual(result.events);
    const older = await store.getExecution('older');
    expect(older).toMatchObject({
      status: 'FAILED',
      error: failed,
      input: { executionId: 'older' },
      stopDate,
    });
    expect(older?.events.map((e) => e.type)).toEqual(['ExecutionStarted', 'ExecutionFailed']);
    const listed = await store.listExecutions();
    expect(listed.map((e) => [e.executionId, e.status])).toEqual([
      ['newer', 'SUCCEEDED'],
      ['older', 'FAILED'],
    ]);
    expect(await store.getExecution('missing')).toBeNull();
  });

  it('reports a RUNNING execution whose process is gone as ABORTED', async () => {
    dir = await mkdtemp(join(tmpdir(), 'executions-'));
    const store = new ExecutionStore(dir);
    await create(store, 'crashed', new Date().toISOString());
    const file = join(dir, 'crashed', 'execution.json');
    const meta = JSON.parse(await readFile(file, 'utf8'));
    meta.owner.pid = spawnSync(process.execPath, ['-e', '']).pid; // exited by now
    await writeFile(file, JSON.stringify(meta));
    expect((await store.getExecution('crashed'))?.status).toBe('ABORTED');
  });

  it('keeps executions written by several processes at once apart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'executions-'));
    const storeUrl = new URL('../../local/execution-store.ts', import.meta.url).href;
    const script = `
      import { ExecutionStore } from ${JSON.stringify(storeUrl)};
      const [dir, id] = process.argv.slice(-2);
      const store = new ExecutionStore(dir);
      await store.createExecution({ executionId: id, input: { id }, startDate: new Date().toISOString() });
      const events = Array.from({ length: 200 }, (_, i) => ({ id: i + 1, type: 'PassStateEntered', timestamp: new Date().toISOString(), stateName: id }));
      for (const event of events) store.appendEvent(id, event);
      await store.finishExecution(id, { status: 'SUCCEEDED', output: id, events, startDate: '', stopDate: new Date().toISOString() });`;
    const tsx = createRequire(import.meta.url).resolve('tsx');
    const ids = ['p1', 'p2', 'p3', 'p4'];
    const node = (id: string) =>
      promisify(execFile)(process.execPath, ['--import', tsx, '--input-type=module', '-e', script, dir, id]);
    await Promise.all(ids.map(node));
    const store = new ExecutionStore(dir);
    expect((await store.listExecutions()).map((e) => e.executionId).sort()).toEqual(ids);
    for (const id of ids) {
      const execution = await store.getExecution(id);
      expect(execution).toMatchObject({ status: 'SUCCEEDED', output: id });
      expect(execution?.events.map((e) => e.id)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(execution?.events.every((e) => e.stateName === id)).toBe(true);
    }
  });
});
