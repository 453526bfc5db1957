import { logger } from '../core/observability/observability.ts';
import { runtime } from '../core/runtime.ts';
import { stateMachineClient } from '../core/storage/aws-clients.ts';
import { sfnExecutionStarter, startRunExecution } from '../core/workflow/run-executions.ts';
import { resolveRunInput } from '../core/workflow/run-input.ts';

let client: ReturnType<typeof stateMachineClient> | undefined;

/**
 * StartRun: the target of the run-manifest and schedule rules. EventBridge's own Step Functions
 * target starts an unnamed execution and retries it, so one manifest could start two runs; this
 * names the execution by the run id, and a run id already running or applied is reported (and not
 * retried) instead of started again. A manifest that cannot be read or is invalid fails the
 * invocation: EventBridge retries it, then leaves it in the triggers' dead-letter queue.
 */
export const handler = async (event: unknown) => {
  client ??= stateMachineClient();
  const run = await resolveRunInput(event, runtime().objects);
  const start = await startRunExecution(
    sfnExecutionStarter(client.sfn, client.stateMachineArn, event),
    run.runId,
  );
  if (start.outcome === 'started') logger.info('run started', { runId: run.runId, ...start });
  else logger.warn(`run ${start.outcome}: not started again`, { runId: run.runId, ...start });
  return start;
};
