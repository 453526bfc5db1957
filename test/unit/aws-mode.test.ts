import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseS3Uri } from '../../cli/aws-arguments.ts';
import { executionArnFor, startAwsRun } from '../../cli/aws-mode.ts';
import { getAwsExecution, listAwsExecutions } from '../../local/console/aws-executions.ts';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:EmbeddingMerge';
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:EmbeddingMerge:run-1-abc';
const sfnMock = mockClient(SFNClient);
const s3Mock = mockClient(S3Client);
const sfn = new SFNClient({ region: 'eu-west-1' });
const s3 = new S3Client({ region: 'eu-west-1' });

const at = (second: number) => new Date(Date.UTC(2026, 10, 22, 12, 0, second));
const json = (value: unknown) => JSON.stringify(value);

/** A history as AWS records it for one Lambda task inside a Map iteration. */
function history(): HistoryEvent[] {
  return [
    {
      id: 1,
      type: 'ExecutionStarted',
      timestamp: at(0),
      executionStartedEventDetails: { input: json({ runId: 'r' }) },
    },
    {
      id: 2,
      previousEventId: 1,
      type: 'MapStateEntered',
      timestamp: at(1),
      stateEnteredEventDetails: { name: 'ProcessChunks', input: '{}' },
    },
    {
      id: 3,
      previousEventId: 2,
      type: 'MapIterationStarted',
      timestamp: at(1),
      mapIterationStartedEventDetails: { name: 'ProcessChunks', index: 4 },
    },
    {
      id: 4,
      previousEventId: 3,
      type: 'TaskStateEntered',
      timestamp: at(2),
      stateEnteredEventDetails: { name: 'ProcessChunk', input: json({ chunkIndex: 4 }) },
    },
    {
      id: 5,
      previousEventId: 4,
      type: 'LambdaFunctionScheduled',
      timestamp: at(2),
      lambdaFunctionScheduledEventDetails: { resource: 'arn:fn', input: '{}' },
    },
    {
      id: 6,
      previousEventId: 5,
      type: 'LambdaFunctionFailed',
      timestamp: at(3),
      lambdaFunctionFailedEventDetails: { error: 'StorageError', cause: 'slow down' },
    },
    {
      id: 7,
      previousEventId: 6,
      type: 'LambdaFunctionSucceeded',
      timestamp: at(4),
      lambdaFunctionSucceededEventDetails: { output: json({ segmentKey: 'runs/r/s' }) },
    },
    {
      id: 8,
      previousEventId: 7,
      type: 'ExecutionSucceeded',
      timestamp: at(5),
      executionSucceededEventDetails: { output: json({ ok: true }) },
    },
  ];
}

/** GetExecutionHistory as AWS pages it (two events a page here), in either order. */
function serveHistory(events: () => HistoryEvent[]) {
  sfnMock
    .on(GetExecutionHistoryCommand)
    .callsFake((input: { reverseOrder?: boolean; nextToken?: string }) => {
      const ordered = input.reverseOrder ? [...events()].reverse() : events();
      const start = Number(input.nextToken ?? 0);
      const nextToken = start + 2 < ordered.length ? String(start + 2) : undefined;
      return { events: ordered.slice(start, start + 2), nextToken };
    });
}

beforeEach(() => {
  sfnMock.reset();
  s3Mock.reset();
});

describe('parseS3Uri', () => {
  it('splits bucket and prefix and ends the prefix with a slash', () => {
    expect(parseS3Uri('s3://bucket/input/run-1')).toEqual({ bucket: 'bucket', prefix: 'input/run-1/' });
    expect(parseS3Uri('s3://bucket/input/run-1/')).toEqual({ bucket: 'bucket', prefix: 'input/run-1/' });
    expect(parseS3Uri('s3://bucket')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(() => parseS3Uri('/local/dir')).toThrow(/not an S3 URI/);
  });
});

describe('startAwsRun', () => {
  it('builds the input from the collection folders, starts the execution and reports each event once', async () => {
    s3Mock
      .on(ListObjectsV2Command, { ContinuationToken: undefined })
      .resolves({
        CommonPrefixes: [{ Prefix: 'input/run-1/words/' }],
        IsTruncated: true,
        NextContinuationToken: 't',
      })
      .on(ListObjectsV2Command, { ContinuationToken: 't' })
      .resolves({ CommonPrefixes: [{ Prefix: 'input/run-1/lines/' }], IsTruncated: false });
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: EXECUTION, startDate: at(0) });
    let recorded = history().slice(0, 4);
    const running = {
      executionArn: EXECUTION,
      name: 'run-1-abc',
      status: 'RUNNING' as const,
      startDate: at(0),
      input: '{}',
    };
    sfnMock
      .on(DescribeExecutionCommand)
      .callsFakeOnce(() => running)
      .callsFakeOnce(() => {
        recorded = history();
        return running;
      })
      .callsFake(() => ({ ...running, status: 'SUCCEEDED', stopDate: at(5), output: json({ ok: true }) }));
    serveHistory(() => recorded);

    const seen: number[] = [];
    const result = await startAwsRun({
      stateMachineArn: STATE_MACHINE,
      inputUri: 's3://embedflow-bucket/input/run-1',
      runId: 'run-1',
      client: sfn,
      s3Client: s3,
      pollMs: 1,
      onEvent: (event) => seen.push(event.id),
    });

    const listed = s3Mock.commandCalls(ListObjectsV2Command)[0]!.args[0].input;
    expect(listed).toMatchObject({ Bucket: 'embedflow-bucket', Prefix: 'input/run-1/', Delimiter: '/' });
    const started = sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(started.stateMachineArn).toBe(STATE_MACHINE);
    expect(started.name).toBe('run-1'); // named by its run id: a second start of it is refused
    expect(JSON.parse(started.input!)).toEqual({
      runId: 'run-1',
      collections: [
        { name: 'lines', deltaPrefix: 'input/run-1/lines/' },
        { name: 'words', deltaPrefix: 'input/run-1/words/' },
      ],
    });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(result).toMatchObject({
      executionId: EXECUTION,
      status: 'SUCCEEDED',
      output: { ok: true },
      startDate: at(0).toISOString(),
      stopDate: at(5).toISOString(),
    });
    expect(result.error).toBeUndefined();
    expect(result.events).toHaveLength(8);
  });

  it('starts nothing when the run id is already running, and reports that execution', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ CommonPrefixes: [{ Prefix: 'input/run-1/words/' }] });
    sfnMock
      .on(StartExecutionCommand)
      .rejects(new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} }));
    sfnMock.on(DescribeExecutionCommand).resolves({
      executionArn: EXECUTION,
      name: 'run-1',
      status: 'RUNNING',
      startDate: at(0),
      input: '{}',
    });
    serveHistory(() => history().slice(0, 2));
    const result = await startAwsRun({
      stateMachineArn: STATE_MACHINE,
      inputUri: 's3://b/input/run-1/',
      runId: 'run-1',
      client: sfn,
      s3Client: s3,
    });
    expect(result.start).toEqual({ outcome: 'already-running', name: 'run-1', attempt: 1 });
    expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(1);
    expect(result.status).toBe('RUNNING');
  });

  it('refuses an input prefix without collection folders before starting anything', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'input/x/a.jsonl' }], IsTruncated: false });
    await expect(
      startAwsRun({ stateMachineArn: STATE_MACHINE, inputUri: 's3://b/input/x/', client: sfn, s3Client: s3 }),
    ).rejects.toThrow(/no collection folders under s3:\/\/b\/input\/x\//);
    expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('returns a failed execution with its error name and cause', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ CommonPrefixes: [{ Prefix: 'p/words/' }] });
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: EXECUTION, startDate: at(0) });
    sfnMock.on(DescribeExecutionCommand).resolves({
      executionArn: EXECUTION,
      name: 'run-1-abc',
      status: 'FAILED',
      startDate: at(0),
      stopDate: at(9),
      input: '{}',
      error: 'BadInputError',
      cause: 'delta 3: record 7 has dimension 3, expected 4',
    });
    serveHistory(() => []);
    const result = await startAwsRun({
      stateMachineArn: STATE_MACHINE,
      inputUri: 's3://b/p',
      client: sfn,
      s3Client: s3,
    });
    expect(result.status).toBe('FAILED');
    expect(result.error).toEqual({
      name: 'BadInputError',
      message: 'delta 3: record 7 has dimension 3, expected 4',
    });
  });
});

describe('getAwsExecution', () => {
  it('reads the whole paginated history in order and converts each event to the local shape', async () => {
    sfnMock.on(DescribeExecutionCommand).resolves({
      executionArn: EXECUTION,
      name: 'run-1-abc',
      status: 'SUCCEEDED',
      startDate: at(0),
      stopDate: at(5),
      input: json({ runId: 'r' }),
      output: json({ ok: true }),
    });
    serveHistory(history);
    const execution = await getAwsExecution(EXECUTION, sfn);
    expect(execution).toMatchObject({ executionId: EXECUTION, name: 'run-1-abc', input: { runId: 'r' } });
    expect(execution.events.map((event) => event.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const [started, , iteration, entered, , failed, succeeded, done] = execution.events;
    expect(started).toEqual({
      id: 1,
      previousEventId: 0,
      type: 'ExecutionStarted',
      timestamp: at(0).toISOString(),
      input: { runId: 'r' },
    });
    expect(iteration).toMatchObject({
      type: 'MapIterationStarted',
      stateName: 'ProcessChunks',
      mapIterationIndex: 4,
    });
    expect(entered).toMatchObject({
      stateName: 'ProcessChunk',
      input: { chunkIndex: 4 },
      previousEventId: 3,
    });
    expect(failed).toMatchObject({
      type: 'LambdaFunctionFailed',
      stateName: 'ProcessChunk',
      error: 'StorageError',
      cause: 'slow down',
    });
    expect(succeeded).toMatchObject({ stateName: 'ProcessChunk', output: { segmentKey: 'runs/r/s' } });
    expect(done).toEqual({
      id: 8,
      previousEventId: 7,
      type: 'ExecutionSucceeded',
      timestamp: at(5).toISOString(),
      output: { ok: true },
    });
  });
});

describe('listAwsExecutions', () => {
  it('follows pages up to the limit and keeps the local store’s fields', async () => {
    const item = (n: number) => ({
      executionArn: executionArnFor(STATE_MACHINE, `run-${n}`),
      stateMachineArn: STATE_MACHINE,
      name: `run-${n}`,
      status: 'SUCCEEDED' as const,
      startDate: at(n),
      stopDate: at(n + 1),
    });
    sfnMock
      .on(ListExecutionsCommand, { nextToken: undefined })
      .resolves({ executions: [item(1), item(2)], nextToken: 'next' })
      .on(ListExecutionsCommand, { nextToken: 'next' })
      .resolves({ executions: [item(3)] });
    const all = await listAwsExecutions(STATE_MACHINE, sfn);
    expect(all.map((e) => e.name)).toEqual(['run-1', 'run-2', 'run-3']);
    expect(all[0]).toEqual({
      executionId: 'arn:aws:states:eu-west-1:123456789012:execution:EmbeddingMerge:run-1',
      name: 'run-1',
      status: 'SUCCEEDED',
      startDate: at(1).toISOString(),
      stopDate: at(2).toISOString(),
    });
    expect(await listAwsExecutions(STATE_MACHINE, sfn, 2)).toHaveLength(2);
  });
});
