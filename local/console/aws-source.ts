import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  GetExecutionHistoryCommand,
} from '@aws-sdk/client-sfn';
import {
  executionArnFor,
  runExecutionNames,
  sfnExecutionStarter,
} from '../../lambdas/core/workflow/run-executions.ts';
import { getAwsExecution, listAwsExecutions, sfnClientFor } from './aws-executions.ts';
import {
  detailOf,
  type ExecutionDetail,
  type ExecutionSource,
  type ExecutionSummary,
  summaryOf,
} from './execution-source.ts';

/**
 * Executions of a deployed state machine (`embedflow console --state-machine-arn ARN`), read with
 * the same calls the AWS console makes. Execution ids are execution ARNs.
 */
export class AwsExecutionSource implements ExecutionSource {
  readonly description: string;
  private readonly executionArnPrefix: string;

  constructor(
    private readonly stateMachineArn: string,
    private readonly client = sfnClientFor(stateMachineArn),
  ) {
    this.description = `AWS executions of ${stateMachineArn}`;
    this.executionArnPrefix = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:`;
  }

  async list(): Promise<ExecutionSummary[]> {
    // ListExecutions carries no input: collections show once an execution is opened.
    const executions = await listAwsExecutions(this.stateMachineArn, this.client);
    return executions.map(summaryOf);
  }

  async get(executionId: string): Promise<ExecutionDetail | null> {
    // Only this state machine's executions: the console never becomes a reader of arbitrary ARNs.
    if (!executionId.startsWith(this.executionArnPrefix)) return null;
    try {
      return detailOf(await getAwsExecution(executionId, this.client));
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /** Executions are named by run id (run-executions.ts): the run's newest attempt. */
  async findRun(runId: string): Promise<ExecutionDetail | null> {
    const names = await runExecutionNames(
      sfnExecutionStarter(this.client, this.stateMachineArn, null),
      runId,
    );
    const newest = names.at(-1);
    return newest ? this.get(executionArnFor(this.stateMachineArn, newest)) : null;
  }

  /** Status and newest event id: two small calls instead of the whole history on every poll. */
  async changeToken(executionId: string): Promise<string | null> {
    if (!executionId.startsWith(this.executionArnPrefix)) return null;
    try {
      const [described, newest] = await Promise.all([
        this.client.send(new DescribeExecutionCommand({ executionArn: executionId })),
        this.client.send(
          new GetExecutionHistoryCommand({ executionArn: executionId, reverseOrder: true, maxResults: 1 }),
        ),
      ]);
      return `${described.status}:${newest.events?.[0]?.id ?? 0}`;
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /** The deployed definition (ARNs substituted), so the graph is the one that actually ran. */
  async definition(): Promise<object> {
    const described = await this.client.send(
      new DescribeStateMachineCommand({ stateMachineArn: this.stateMachineArn }),
    );
    return JSON.parse(described.definition ?? '{"States":{}}') as object;
  }
}

function isMissing(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name;
  return name === 'ExecutionDoesNotExist' || name === 'InvalidArn';
}
