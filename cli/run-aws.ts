import { checkStateMachineArn, parseS3Uri } from './aws-arguments.ts';
import { startAwsRun } from './aws-mode.ts';
import { EXIT_OK, EXIT_RUN_FAILED, UsageError } from './output.ts';
import { RunProgress } from './progress.ts';
import {
  checkRunIdOption,
  collectSummaries,
  duplicateStart,
  newRunId,
  type RunOptions,
  type RunSummary,
} from './run.ts';

export interface AwsRunOptions extends RunOptions {
  stateMachineArn: string;
}

/**
 * `embedflow run --state-machine-arn ARN --input s3://bucket/prefix/`: starts the deployed state
 * machine on deltas already in S3 and follows it with the same progress and summary as a local run.
 * Sizes come from the deployed functions' environment, not from this shell's.
 */
export async function runAws(options: AwsRunOptions): Promise<{ summary: RunSummary; exitCode: number }> {
  checkStateMachineArn(options.stateMachineArn);
  if (options.demo) throw new UsageError('--demo runs locally only: drop --state-machine-arn');
  if (!options.input) throw new UsageError('AWS mode needs --input s3://bucket/prefix/');
  parseS3Uri(options.input);
  checkRunIdOption(options.runId);
  const runId = options.runId ?? newRunId();
  const progress = new RunProgress();
  const started = performance.now();
  try {
    progress.message(`run ${runId}: starting ${options.stateMachineArn} on ${options.input}`);
    const execution = await startAwsRun({
      stateMachineArn: options.stateMachineArn,
      inputUri: options.input,
      runId,
      onEvent: (event) => progress.handle(event),
    });
    if (execution.start.outcome !== 'started')
      return duplicateStart(execution, execution.start, runId, started);
    const succeeded = execution.status === 'SUCCEEDED';
    const summary: RunSummary = {
      executionId: execution.executionId,
      runId,
      status: succeeded ? 'SUCCEEDED' : 'FAILED',
      ...(execution.error && { error: execution.error }),
      collections: collectSummaries(execution.output, execution.events),
      wallMs: Math.round(performance.now() - started),
    };
    return { summary, exitCode: succeeded ? EXIT_OK : EXIT_RUN_FAILED };
  } finally {
    progress.stop();
  }
}
