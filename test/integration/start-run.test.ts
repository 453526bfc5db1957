import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

/**
 * The trigger path: EventBridge hands StartRun a manifest reference, and retries the target when it
 * is unsure a call got through. StartRun reads the manifest (real S3, local), names the execution by
 * the run id and, on a repeated delivery, reports the run already running instead of starting it
 * twice. Step Functions is mocked: it cannot run locally.
 */
const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:EmbeddingMerge';
let stack: TestStack;
Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
const { resetRuntime, runtime } = await import('../../lambdas/core/runtime.ts');
const { handler } = await import('../../lambdas/handlers/start-run.ts');

beforeAll(async () => {
  stack = await startTestStack();
  Object.assign(process.env, stack.env({ STATE_MACHINE_ARN: STATE_MACHINE }));
  resetRuntime();
});
afterAll(async () => {
  await stack?.stop();
});

describe('StartRun', () => {
  it('starts a manifest run named by its run id, and reports a repeated delivery as already running', async () => {
    const { objects } = runtime();
    await objects.putJson('input/nightly-7/run.json', {
      collections: [{ name: 'words', deltaPrefix: 'input/nightly-7/words/' }],
    });
    const event = { manifest: { bucket: objects.bucket, key: 'input/nightly-7/run.json' } };
    const sfn = mockClient(SFNClient);
    sfn
      .on(StartExecutionCommand)
      .resolvesOnce({ executionArn: `${STATE_MACHINE}:nightly-7`, startDate: new Date() })
      .rejects(new ExecutionAlreadyExists({ message: 'Execution Already Exists: nightly-7', $metadata: {} }));
    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' });

    expect(await handler(event)).toEqual({ outcome: 'started', name: 'nightly-7', attempt: 1 });
    expect(await handler(event)).toEqual({ outcome: 'already-running', name: 'nightly-7', attempt: 1 });
    const starts = sfn.commandCalls(StartExecutionCommand).map((call) => call.args[0].input);
    expect(starts).toEqual([
      { stateMachineArn: STATE_MACHINE, name: 'nightly-7', input: JSON.stringify(event) },
      { stateMachineArn: STATE_MACHINE, name: 'nightly-7', input: JSON.stringify(event) },
    ]);
    expect(sfn.commandCalls(DescribeExecutionCommand)[0]!.args[0].input).toEqual({
      executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:EmbeddingMerge:nightly-7',
    });
    sfn.restore();
  });

  it('fails on a manifest that names no valid run, so EventBridge keeps it in the dead-letter queue', async () => {
    const { objects } = runtime();
    await objects.putJson('input/bad/run.json', { runId: 'no spaces allowed', collections: [] });
    await expect(
      handler({ manifest: { bucket: objects.bucket, key: 'input/bad/run.json' } }),
    ).rejects.toMatchObject({
      name: 'BadInputError',
    });
  });
});
