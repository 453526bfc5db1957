import { createHash } from 'node:crypto';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';

/**
 * Executions are named by run id, so that a run id never runs twice at once: Step Functions refuses
 * a second execution of a name (for 90 days), and the local execution store refuses a second
 * directory of one. A duplicate start (EventBridge retrying a start that had in fact succeeded, a
 * second `embedflow run --run-id X`) then finds the first and reports it instead of running the
 * run again under it. Only a run id whose last execution ended without succeeding starts again, as
 * the next attempt: `<name>`, `<name>_2`, `<name>_3`…
 */
export type ExecutionState = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';

export interface ExecutionStarter {
  /** Starts an execution of this name; false when the name is taken. */
  start(name: string): Promise<boolean>;
  /** The status of the execution of this name, null if there is none. */
  status(name: string): Promise<ExecutionState | null>;
}

export type StartOutcome = {
  outcome: 'started' | 'already-running' | 'already-applied';
  /** The execution started, or the one found running or succeeded. */
  name: string;
  attempt: number;
};

const NAME_LIMIT = 80; // Step Functions' execution name length
const MAX_ATTEMPTS = 1000;

/**
 * A run id as an execution name: Step Functions allows up to 80 characters and, for CloudWatch
 * logging, only letters, digits, `-` and `_`. A run id that needs changing to fit (it has `.` or
 * `_`, or is too long) gets a hash of itself appended, so two run ids never share a name; `_` then
 * only ever separates the attempt.
 */
export function executionBaseName(runId: string): string {
  const room = NAME_LIMIT - `_${MAX_ATTEMPTS}`.length;
  if (/^[A-Za-z0-9-]+$/.test(runId) && runId.length <= room) return runId;
  const hash = createHash('sha256').update(runId).digest('hex').slice(0, 10);
  return `${runId.replace(/[^A-Za-z0-9-]/g, '-').slice(0, room - hash.length - 1)}-${hash}`;
}

export function executionName(runId: string, attempt: number): string {
  const base = executionBaseName(runId);
  return attempt === 1 ? base : `${base}_${attempt}`;
}

/** Starts the run's next execution, unless an earlier one is running or has succeeded. */
export async function startRunExecution(starter: ExecutionStarter, runId: string): Promise<StartOutcome> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const name = executionName(runId, attempt);
    if (await starter.start(name)) return { outcome: 'started', name, attempt };
    const status = await starter.status(name);
    // No status yet: another starter has just claimed the name and is still writing it down.
    if (status === null || status === 'RUNNING' || status === 'PENDING_REDRIVE') {
      return { outcome: 'already-running', name, attempt };
    }
    if (status === 'SUCCEEDED') return { outcome: 'already-applied', name, attempt };
    // FAILED, TIMED_OUT, ABORTED: that attempt is over; the next one may start.
  }
  throw new Error(`run ${runId} has ${MAX_ATTEMPTS} executions already: start it under a new run id`);
}

/** The names `startRunExecution` may have given a run's executions, newest attempt last. */
export async function runExecutionNames(starter: Pick<ExecutionStarter, 'status'>, runId: string) {
  const names: string[] = [];
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const name = executionName(runId, attempt);
    if ((await starter.status(name)) === null) break;
    names.push(name);
  }
  return names;
}

/** `arn:…:stateMachine:NAME` + execution name → `arn:…:execution:NAME:EXECUTION`. */
export function executionArnFor(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

/** Starts executions of a deployed state machine. */
export function sfnExecutionStarter(
  client: SFNClient,
  stateMachineArn: string,
  input: unknown,
): ExecutionStarter {
  return {
    async start(name) {
      try {
        await client.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
        return true;
      } catch (error) {
        if (error instanceof ExecutionAlreadyExists || (error as Error).name === 'ExecutionAlreadyExists')
          return false;
        throw error;
      }
    },
    async status(name) {
      try {
        const described = await client.send(
          new DescribeExecutionCommand({ executionArn: executionArnFor(stateMachineArn, name) }),
        );
        return (described.status ?? null) as ExecutionState | null;
      } catch (error) {
        if ((error as Error).name === 'ExecutionDoesNotExist') return null;
        throw error;
      }
    },
  };
}
