import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { executionSource, listExecutions, showExecution } from '../../cli/executions.ts';
import { UsageError } from '../../cli/output.ts';
import { runAws } from '../../cli/run-aws.ts';

/**
 * The CLI's AWS mode as `embedflow run|executions --state-machine-arn` drives it: the same summary
 * and history view as locally, from StartExecution, DescribeExecution and GetExecutionHistory.
 */
const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:EmbeddingMerge';
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:EmbeddingMerge:run-7-abc';
const sfnMock = mockClient(SFNClient);
const s3Mock = mockClient(S3Client);
const at = (second: number) => new Date(Date.UTC(2026, 10, 25, 12, 0, second));

const wordsSummary = {
  collection: 'words',
  deltas: 3,
  records: 30,
  chunkSize: 15,
  chunks: 1,
  groupSize: 20,
  intermediateMerges: 0,
  shortCircuit: true,
  previousVersion: 4,
  snapshotVersion: 5,
  recordCount: 900,
  lockHoldMs: 41,
  lockAcquireMs: 3,
  casRetries: 0,
};

function serveExecution(status: 'SUCCEEDED' | 'FAILED') {
  sfnMock.on(DescribeExecutionCommand).resolves({
    executionArn: EXECUTION,
    stateMachineArn: STATE_MACHINE,
    name: 'run-7-abc',
    status,
    startDate: at(0),
    stopDate: at(9),
    input: JSON.stringify({
      runId: 'run-7',
      collections: [{ name: 'words', deltaPrefix: 'input/x/words/' }],
    }),
    ...(status === 'SUCCEEDED'
      ? { output: JSON.stringify({ collections: [wordsSummary] }) }
      : { error: 'BadInputError', cause: 'words/d1.jsonl line 3: missing id' }),
  });
  sfnMock.on(GetExecutionHistoryCommand).resolves({
    events: [
      { id: 1, type: 'ExecutionStarted', timestamp: at(0), executionStartedEventDetails: { input: '{}' } },
      {
        id: 2,
        previousEventId: 1,
        type: 'TaskStateEntered',
        timestamp: at(1),
        stateEnteredEventDetails: { name: 'FinalMerge', input: '{}' },
      },
      {
        id: 3,
        previousEventId: 2,
        type: 'LambdaFunctionFailed',
        timestamp: at(2),
        lambdaFunctionFailedEventDetails: { error: 'LockBusyError', cause: 'lock held by another run' },
      },
    ]
      .reverse()
      .map((event) => event as HistoryEvent),
  });
}

beforeEach(() => {
  sfnMock.reset();
  s3Mock.reset();
});

describe('run --state-machine-arn', () => {
  it('starts the execution on the S3 input and returns the summary of a local run', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ CommonPrefixes: [{ Prefix: 'input/x/words/' }] });
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: EXECUTION, startDate: at(0) });
    serveExecution('SUCCEEDED');
    const { summary, exitCode } = await runAws({
      stateMachineArn: STATE_MACHINE,
      input: 's3://bucket/input/x/',
      runId: 'run-7',
      dataDir: '.',
      wordsDeltas: 0,
      linesDeltas: 0,
      recordsPerDelta: 1,
      dim: 2,
      seed: 0,
    });
    expect(exitCode).toBe(0);
    const started = JSON.parse(sfnMock.commandCalls(StartExecutionCommand)[0]!.args[0].input.input!);
    expect(started).toEqual({
      runId: 'run-7',
      collections: [{ name: 'words', deltaPrefix: 'input/x/words/' }],
    });
    const { collection: _, ...words } = wordsSummary;
    expect(summary).toMatchObject({ executionId: EXECUTION, runId: 'run-7', status: 'SUCCEEDED' });
    expect(summary.collections).toEqual({ words });
  });

  it('reports a failed execution with its error and exit code 1', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ CommonPrefixes: [{ Prefix: 'input/x/words/' }] });
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: EXECUTION, startDate: at(0) });
    serveExecution('FAILED');
    const base = { dataDir: '.', wordsDeltas: 0, linesDeltas: 0, recordsPerDelta: 1, dim: 2, seed: 0 };
    const { summary, exitCode } = await runAws({
      ...base,
      stateMachineArn: STATE_MACHINE,
      input: 's3://bucket/input/x/',
    });
    expect(exitCode).toBe(1);
    expect(summary.error).toEqual({ name: 'BadInputError', message: 'words/d1.jsonl line 3: missing id' });
  });

  it('rejects a bad ARN, a local input or --demo before any AWS call, naming the flag', async () => {
    const base = { dataDir: '.', wordsDeltas: 0, linesDeltas: 0, recordsPerDelta: 1, dim: 2, seed: 0 };
    await expect(runAws({ ...base, stateMachineArn: 'nope', input: 's3://b/p/' })).rejects.toThrow(
      /--state-machine-arn "nope"/,
    );
    await expect(runAws({ ...base, stateMachineArn: STATE_MACHINE, input: './deltas' })).rejects.toThrow(
      UsageError,
    );
    await expect(runAws({ ...base, stateMachineArn: STATE_MACHINE, demo: true })).rejects.toThrow(/--demo/);
    expect(sfnMock.calls()).toHaveLength(0);
    expect(s3Mock.calls()).toHaveLength(0);
  });
});

describe('executions --state-machine-arn', () => {
  it('lists and shows deployed executions with the local history view', async () => {
    sfnMock.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: EXECUTION,
          stateMachineArn: STATE_MACHINE,
          name: 'run-7-abc',
          status: 'FAILED',
          startDate: at(0),
          stopDate: at(9),
        },
      ],
    });
    serveExecution('FAILED');
    const source = await executionSource({ dataDir: '.', stateMachineArn: STATE_MACHINE });
    const list = await listExecutions(source);
    expect(list.value.executions).toEqual([
      expect.objectContaining({ executionId: EXECUTION, status: 'FAILED' }),
    ]);

    const shown = await showExecution(source, EXECUTION);
    expect(shown.value.error).toEqual({
      name: 'BadInputError',
      message: 'words/d1.jsonl line 3: missing id',
    });
    expect(shown.value.events.map((e) => [e.type, e.stateName])).toEqual([
      ['ExecutionStarted', undefined],
      ['TaskStateEntered', 'FinalMerge'],
      ['LambdaFunctionFailed', 'FinalMerge'],
    ]);
    const text = shown.human();
    expect(text).toContain('LambdaFunctionFailed');
    expect(text).toContain('LockBusyError: lock held by another run');
  });

  it('names the state machine when an execution is not one of its own', async () => {
    const source = await executionSource({ dataDir: '.', stateMachineArn: STATE_MACHINE });
    await expect(
      showExecution(source, 'arn:aws:states:eu-west-1:123456789012:execution:Other:x'),
    ).rejects.toThrow(/no execution .* in AWS executions of arn:aws:states/);
  });
});
