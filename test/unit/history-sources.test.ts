import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  SFNClient,
  type HistoryEvent as SfnHistoryEvent,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { historyRows, showExecution } from '../../cli/executions.ts';
import { executionName } from '../../lambdas/core/workflow/run-executions.ts';
import { type HistoryEvent, runStateMachine, type TaskHandler } from '../../local/asl-runner.ts';
import { HistoryConverter } from '../../local/console/aws-executions.ts';
import { AwsExecutionSource } from '../../local/console/aws-source.ts';
import { type ExecutionDetail, LocalExecutionSource } from '../../local/console/execution-source.ts';
import { buildExecutionView } from '../../local/console/execution-view.ts';
import { ExecutionStore } from '../../local/execution-store.ts';

/**
 * A history recorded by the local runner and one read through GetExecutionHistory render the same.
 * The fixtures are hand-written in the service's format (test/fixtures/history/*.json); the local
 * runner is run on the same definition and must record the same events, and both sources must give
 * `executions show` and the console the same rows, times and durations.
 */
interface Fixture {
  definition: object;
  describeExecution: Record<string, string>;
  events: (Omit<SfnHistoryEvent, 'timestamp'> & { timestamp: string })[];
}
const fixture = (name: string): Fixture =>
  JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'history', `${name}.json`), 'utf8'));

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Toy';
class TransientError extends Error {
  override name = 'TransientError';
}
class BadInputError extends Error {
  override name = 'BadInputError';
}

/** A Lambda error Cause is the runtime's JSON with a stack trace: compare its type and message only. */
function withoutTraces(value: unknown): unknown {
  if (typeof value === 'string') {
    try {
      const parsed = JSON.parse(value) as { errorType?: string; errorMessage?: string; trace?: unknown };
      if (parsed?.errorType !== undefined && parsed.trace !== undefined) {
        return `${parsed.errorType}: ${parsed.errorMessage}`;
      }
    } catch {
      // not JSON
    }
    return value;
  }
  if (Array.isArray(value)) return value.map(withoutTraces);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, withoutTraces(item)]));
  }
  return value;
}
const comparable = (events: HistoryEvent[]) =>
  events.map(({ timestamp: _, ...event }) => withoutTraces(event));

const converted = (f: Fixture) => {
  const converter = new HistoryConverter();
  return f.events.map((raw) => converter.convert({ ...raw, timestamp: new Date(raw.timestamp) }));
};

function mockAws(f: Fixture) {
  const sfn = mockClient(SFNClient);
  const { startDate, stopDate, ...described } = f.describeExecution;
  sfn.on(DescribeExecutionCommand).resolves({
    ...described,
    startDate: new Date(startDate!),
    stopDate: new Date(stopDate!),
  } as never);
  sfn.on(GetExecutionHistoryCommand).callsFake((input: { reverseOrder?: boolean }) => {
    const events = f.events.map((raw) => ({ ...raw, timestamp: new Date(raw.timestamp) }));
    return { events: input.reverseOrder ? events.reverse() : events };
  });
  return { sfn, source: new AwsExecutionSource(STATE_MACHINE, new SFNClient({ region: 'eu-west-1' })) };
}

/** The fixture's run, locally: Prepare is throttled once, the Map's second item is bad input. */
const retryCatchHandlers = (): Record<string, TaskHandler> => {
  let prepareCalls = 0;
  return {
    Prepare: async () => {
      if (++prepareCalls === 1) throw new TransientError('throttled');
      return { items: [1, 2] };
    },
    Work: async (item) => {
      if (item === 2) throw new BadInputError('item 2 is bad');
      return (item as number) * 10;
    },
  };
};

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'history-sources-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => mockClient(SFNClient).restore());

/** Stores a local execution as `embedflow run` does, its events stamped with the fixture's times. */
async function storeLocally(
  id: string,
  events: HistoryEvent[],
  f: Fixture,
  claimedEarlierMs = 0,
  runId = id,
) {
  const store = new ExecutionStore(join(dir, id, 'executions'));
  const startDate = f.describeExecution.startDate!;
  const claimed = new Date(Date.parse(startDate) - claimedEarlierMs).toISOString();
  await store.createExecution({
    executionId: id,
    runId,
    input: JSON.parse(f.describeExecution.input!),
    startDate: claimed,
  });
  const stamped = events.map((event, index) => ({ ...event, timestamp: f.events[index]!.timestamp }));
  for (const event of stamped) store.appendEvent(id, event);
  return { store, stamped, source: new LocalExecutionSource(join(dir, id)) };
}

describe('a local history is the history Step Functions records', () => {
  it('retry, Map iterations, a failed iteration, Catch and Fail: same events, links and details', async () => {
    const f = fixture('map-retry-catch');
    const local = await runStateMachine({
      definition: f.definition,
      handlers: retryCatchHandlers(),
      input: { runId: 'r1' },
      executionId: 'r1',
      zeroRetryWaits: true,
    });
    expect(comparable(local.events)).toEqual(comparable(converted(f)));
    expect(local.error).toEqual({ name: 'BadInputError', message: 'item 2 is bad' });
  });

  it('renders both sources alike in executions show and in the console view', async () => {
    const f = fixture('map-retry-catch');
    const local = await runStateMachine({
      definition: f.definition,
      handlers: retryCatchHandlers(),
      input: { runId: 'r1' },
      executionId: 'r1',
      zeroRetryWaits: true,
    });
    const { store, stamped, source: localSource } = await storeLocally('alike', local.events, f);
    await store.finishExecution('alike', {
      ...local,
      events: stamped,
      startDate: f.describeExecution.startDate!,
      stopDate: f.describeExecution.stopDate!,
    });
    const { source: awsSource } = mockAws(f);
    const [fromLocal, fromAws] = (await Promise.all([
      localSource.get('alike'),
      awsSource.get(f.describeExecution.executionArn!),
    ])) as [ExecutionDetail, ExecutionDetail];

    const rows = (detail: ExecutionDetail) => withoutTraces(historyRows(detail.events, detail.startDate));
    expect(rows(fromLocal)).toEqual(rows(fromAws));
    const view = (detail: ExecutionDetail) => {
      const { states, mapIterations, durationMs, status } = buildExecutionView(detail, f.definition);
      return withoutTraces({ states, mapIterations, durationMs, status });
    };
    expect(view(fromLocal)).toEqual(view(fromAws));
    expect((view(fromAws) as { states: object }).states).toMatchObject({
      Prepare: { status: 'succeeded', retries: 1 },
      Work: { status: 'failed', visits: 2 },
      Fan: { status: 'caught' },
      RunFailed: { status: 'failed' },
    });
    const prepareExit = historyRows(fromAws.events, fromAws.startDate).find(
      (row) => row[1] === 'TaskStateExited' && row[2] === 'Prepare',
    );
    expect(prepareExit?.slice(4, 6)).toEqual(['+1.481 s', '1469 ms']); // entered at +0.012 s
  });
});

describe('executions show', () => {
  it('counts elapsed time from ExecutionStarted, as the console does, not from when the run was claimed', async () => {
    const f = fixture('map-retry-catch');
    const { source } = await storeLocally('claimed-early', converted(f), f, 2000);
    const shown = await showExecution(source, 'claimed-early');
    const first = shown
      .human()
      .split('\n')
      .find((line) => line.startsWith('1 '));
    expect(first).toMatch(/^1\s+ExecutionStarted\s+\+0\.000 s/);
  });

  it('gives interleaved parallel iterations each their own duration (AWS history)', async () => {
    const f = fixture('map-parallel');
    const { source } = mockAws(f);
    const shown = await showExecution(source, f.describeExecution.executionArn!);
    const exits = shown
      .human()
      .split('\n')
      .filter((line) => /TaskStateExited/.test(line));
    // iteration 1 ran from +0.011 s to +0.301 s, iteration 0 from +0.010 s to +0.901 s
    expect(exits.map((line) => line.split(/\s{2,}/).slice(3, 6))).toEqual([
      ['1', '+0.301 s', '290 ms'],
      ['0', '+0.901 s', '891 ms'],
    ]);
  });

  it('gives interleaved iterations of a nested Map each their own duration (local history)', async () => {
    let releaseSlow!: () => void;
    const slow = new Promise<void>((resolve) => (releaseSlow = resolve));
    const work: TaskHandler = async (item) => {
      if (item === 1) await slow; // item 1 spans items 2 and 3, which starts after item 2
      if (item === 2) await new Promise((resolve) => setTimeout(resolve, 30));
      if (item === 3) releaseSlow();
      return item;
    };
    const inner = {
      Type: 'Map',
      MaxConcurrency: 2,
      ItemProcessor: {
        StartAt: 'Work',
        States: { Work: { Type: 'Task', Resource: '${WorkArn}', TimeoutSeconds: 5, End: true } },
      },
      End: true,
    };
    const local = await runStateMachine({
      definition: {
        StartAt: 'Outer',
        States: {
          Outer: { Type: 'Map', ItemProcessor: { StartAt: 'Inner', States: { Inner: inner } }, End: true },
        },
      },
      handlers: { Work: work },
      input: [[1, 2, 3]],
      executionId: 'nested',
    });
    expect(local.status).toBe('SUCCEEDED');
    const enteredAt = (item: number) =>
      Date.parse(local.events.find((e) => e.type === 'TaskStateEntered' && e.input === item)!.timestamp);
    const rows = historyRows(local.events, local.startDate).filter((row) => row[1] === 'TaskStateExited');
    const exits = local.events.filter((e) => e.type === 'TaskStateExited');
    expect(rows.map((row) => row[5])).toEqual(
      exits.map((exit) => `${Date.parse(exit.timestamp) - enteredAt(exit.output as number)} ms`),
    );
    const placed = exits.map((exit) => [exit.output, exit.mapIterationIndex, exit.parentStateName]);
    expect(placed.sort()).toEqual([
      [1, 0, 'Inner'],
      [2, 1, 'Inner'],
      [3, 2, 'Inner'],
    ]);
  });

  it('finds the newest attempt of a run id among deployed executions (named by run id)', async () => {
    const f = fixture('map-parallel');
    const { sfn, source } = mockAws(f);
    const prefix = 'arn:aws:states:eu-west-1:123456789012:execution:Toy:';
    const { startDate, stopDate, ...described } = f.describeExecution;
    sfn.on(DescribeExecutionCommand).callsFake(({ executionArn }: { executionArn: string }) => {
      const named = executionName('nightly.7', 1); // not the run id itself: it has a `.`
      if (![`${prefix}${named}`, `${prefix}${named}_2`].includes(executionArn)) {
        throw Object.assign(new Error('no such execution'), { name: 'ExecutionDoesNotExist' });
      }
      return { ...described, executionArn, startDate: new Date(startDate!), stopDate: new Date(stopDate!) };
    });
    const shown = await showExecution(source, 'nightly.7');
    expect(shown.value.executionId).toBe(`${prefix}${executionName('nightly.7', 2)}`);
  });

  it('finds an execution by its run id', async () => {
    const f = fixture('map-retry-catch');
    const { source } = await storeLocally('r1-execution', converted(f), f, 0, 'r1');
    const shown = await showExecution(source, 'r1');
    expect(shown.value).toMatchObject({ executionId: 'r1-execution', runId: 'r1' });
  });
});
