import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
} from 'aws-local-stepfunctions';
import { causeMessage } from '../lambdas/core/errors.ts';
import { type AslDocument, replacePlaceholders, statesOf } from '../statemachines/definition.ts';
import { assertNoDataLimitHandlers, checkPayload, PAYLOAD_LIMIT_BYTES, payloadBytes } from './asl-limits.ts';
import { currentThread, dispatchInThread } from './asl-threads.ts';
import {
  type ExecutionStatus,
  type HandlerEvent,
  History,
  type HistoryEvent,
  type StateInfo,
} from './execution-history.ts';

/**
 * Runs an ASL definition locally with aws-local-stepfunctions, each Task state served by an
 * in-process handler keyed by state name, and converts the library's event log into history
 * events named as Step Functions' GetExecutionHistory names them.
 */
export type TaskHandler = (input: unknown) => Promise<unknown>;

export type { HistoryEvent } from './execution-history.ts';

export interface ExecutionResult {
  status: Extract<ExecutionStatus, 'SUCCEEDED' | 'FAILED'>;
  output?: unknown;
  error?: { name: string; message: string };
  events: HistoryEvent[];
  startDate: string;
  stopDate: string;
}

export interface LocalExecutionResult extends ExecutionResult {
  /**
   * Settles once every handler this execution started has returned: the execution itself may have
   * ended before (a Lambda keeps running after its Map failed). Only tests and shutdown wait for it.
   */
  handlersSettled: Promise<void>;
}

export interface RunOptions {
  definition: object | string;
  handlers: Record<string, TaskHandler>;
  input: unknown;
  executionId: string;
  /** The definition is known to be valid ASL (checked by its own tests): skip asl-validator. */
  validated?: boolean;
  /** Retry waits of 0 ms instead of IntervalSeconds/BackoffRate (tests). */
  zeroRetryWaits?: boolean;
  /** Called as events happen. A throw does not stop the run: the first one is rethrown once it ended. */
  onEvent?: (event: HistoryEvent) => void;
}

// Two library gaps would let handlers run after their Map has failed: queued iterations keep
// starting after one failed (a caught Map failure would run the rest behind the Catch's back), and
// an iteration started under an aborted parent still runs its first state. Step Functions stops a
// Map at its first failed iteration, so: a machine with a failed run (the Map builds one per visit)
// starts no more runs, and neither does anything under an aborted execution.
const failedMachines = new WeakSet<StateMachine>();
const FAIL_FAST = Symbol.for('embedflow.asl-runner.fail-fast');
const machineProto = StateMachine.prototype as StateMachine & { [FAIL_FAST]?: true };
if (!machineProto[FAIL_FAST]) {
  const run = machineProto.run;
  machineProto.run = function (this: StateMachine, ...args: Parameters<StateMachine['run']>) {
    const parentSignal = (args[1] as { _rootAbortSignal?: AbortSignal } | undefined)?._rootAbortSignal;
    if (failedMachines.has(this) || parentSignal?.aborted) {
      const eventLogs = (async function* () {})() as ReturnType<StateMachine['run']>['eventLogs'];
      return { abort() {}, eventLogs, result: Promise.reject(new ExecutionAbortedError()) };
    }
    const execution = run.apply(this, args);
    execution.result.catch(() => failedMachines.add(this));
    return execution;
  };
  machineProto[FAIL_FAST] = true;
}

/** Every state, nested Map and Parallel states included, as the history needs to know it. */
function describeStates(definition: object): Map<string, StateInfo> {
  const entries = [...statesOf(definition as AslDocument)].map(
    ([name, { state, parent }]): [string, StateInfo] => {
      assertNoDataLimitHandlers(name, state);
      const info: StateInfo = {
        type: state.Type,
        parent,
        timeoutSeconds: state.TimeoutSeconds as number | undefined,
        retries: Array.isArray(state.Retry) && state.Retry.length > 0,
        lambda: state.Type === 'Task' && LAMBDA_ARN.test(String(state.Resource ?? '')),
      };
      return [name, info];
    },
  );
  return new Map(entries);
}

/** name → type of every state, nested ones included. */
export function stateTypes(definition: object): Map<string, string> {
  return new Map([...describeStates(definition)].map(([name, info]) => [name, info.type]));
}

export function findTaskStates(definition: object): string[] {
  return [...describeStates(definition)].filter(([, info]) => info.type === 'Task').map(([name]) => name);
}

/**
 * Replaces CDK DefinitionSubstitutions placeholders (`${ProcessChunkArn}`), which the library
 * does not know, in every string of the definition: with `values[Name]`, else a local fake
 * Lambda ARN (`arn:aws:lambda:local:000000000000:function:ProcessChunk`).
 */
export function substitutePlaceholders(
  definition: object | string,
  values: Record<string, string> = {},
): object {
  const parsed: unknown = typeof definition === 'string' ? JSON.parse(definition) : definition;
  const left = new Set<string>();
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const text = replacePlaceholders(
        value,
        (name) =>
          values[name] ?? `arn:aws:lambda:local:000000000000:function:${name.replace(/Arn$/, '') || name}`,
      );
      for (const match of text.matchAll(/\$\{[^}]*\}?/g)) left.add(match[0]);
      return text;
    }
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walk(item)]));
    }
    return value;
  };
  const result = walk(parsed);
  if (left.size > 0)
    throw new Error(`unsubstituted placeholder(s) in the definition: ${[...left].join(', ')}`);
  if (result === null || typeof result !== 'object')
    throw new Error('an ASL definition must be a JSON object');
  return result;
}

/**
 * A handler's error as Lambda hands it to Step Functions: the name is the Error (what Retry and
 * Catch match), the Cause is the Node runtime's JSON of it (the library's Cause is `message`).
 */
function taskError(error: unknown): Error {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  const trace = error instanceof Error ? (error.stack ?? '').split('\n') : [];
  const plain = new Error(JSON.stringify({ errorType: name, errorMessage: message, trace }));
  plain.name = name;
  return plain;
}

const LAMBDA_ARN = /^arn:aws[a-z-]*:lambda:[^:]*:[^:]*:function:/;

/** StartExecution's own check: an input over the quota never becomes an execution. */
function assertExecutionInputSize(input: unknown): void {
  const bytes = payloadBytes(input);
  if (bytes > PAYLOAD_LIMIT_BYTES) {
    const error = new Error(
      `1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to ${PAYLOAD_LIMIT_BYTES} (it has ${bytes} bytes)`,
    );
    error.name = 'ValidationException';
    throw error;
  }
}

const validatedDefinitions = new Set<string>();

export async function runStateMachine(options: RunOptions): Promise<LocalExecutionResult> {
  assertExecutionInputSize(options.input);
  const definition = substitutePlaceholders(options.definition);
  const states = describeStates(definition);
  const missing = [...states].filter(([name, info]) => info.type === 'Task' && !options.handlers[name]);
  if (missing.length > 0) {
    const names = missing.map(([name]) => name).join(', ');
    throw new Error(`refusing to run: no local handler for Task state(s) ${names} (keyed by state name)`);
  }
  // asl-validator takes about half a second a call: a definition validated once is not validated again.
  const key = JSON.stringify(definition);
  const skip = options.validated || validatedDefinitions.has(key);
  const validationOptions = skip ? { noValidate: true } : { checkArn: false };
  const machine = new StateMachine(definition as never, { validationOptions });
  validatedDefinitions.add(key);

  let closed = false;
  const inFlight = new Set<Promise<unknown>>();
  const local = (name: string, handler: TaskHandler) => async (input: unknown) => {
    if (closed) throw new Error(`execution already ended: ${name} not run`);
    checkPayload(input, name, 'input'); // what Step Functions would send to the Lambda
    const thread = currentThread();
    const stamp = { timestamp: Date.now(), state: { name } };
    dispatchInThread(thread, { type: 'HandlerScheduled', ...stamp, input } satisfies HandlerEvent);
    // JSON in and out, as through Lambda: a handler cannot alias the state's data, Dates become strings.
    const call = Promise.resolve().then(() => handler(JSON.parse(JSON.stringify(input ?? null))));
    inFlight.add(call);
    let result: unknown;
    try {
      result = await call;
    } catch (error) {
      throw taskError(error);
    } finally {
      inFlight.delete(call);
    }
    const output: unknown = JSON.parse(JSON.stringify(result ?? null) ?? 'null');
    checkPayload(output, name, 'result');
    const succeeded = { type: 'HandlerSucceeded', timestamp: Date.now(), state: { name }, output } as const;
    dispatchInThread(thread, succeeded satisfies HandlerEvent);
    return output;
  };
  const localHandlers = Object.fromEntries(
    Object.entries(options.handlers).map(([name, handler]) => [name, local(name, handler)]),
  );
  const retryIntervalOverrides = options.zeroRetryWaits
    ? Object.fromEntries([...states].filter(([, info]) => info.retries).map(([name]) => [name, 0]))
    : undefined;

  const startDate = new Date().toISOString();
  const Name = options.executionId.split(':').at(-1) || options.executionId;
  const Execution = { Id: options.executionId, Name, StartTime: startDate, Input: options.input as never };
  const execution = machine.run(options.input as never, {
    overrides: { taskResourceLocalHandlers: localHandlers as never, retryIntervalOverrides },
    context: { Execution },
  });

  const history = new History(states, options.onEvent);
  const collecting = (async () => {
    for await (const log of execution.eventLogs) history.add(log);
    history.finish();
  })();

  let outcome: Pick<ExecutionResult, 'status' | 'output' | 'error'>;
  try {
    outcome = { status: 'SUCCEEDED', output: await execution.result };
  } catch (error) {
    // ExecutionError wraps what failed: a handler's error, a Fail state's Error and Cause, a runtime error.
    const inner = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : error;
    const timedOut = inner instanceof ExecutionTimeoutError && {
      name: 'States.Timeout',
      message: inner.message,
    };
    const { name, message } =
      timedOut || (inner instanceof Error ? inner : { name: 'Error', message: String(inner) });
    outcome = { status: 'FAILED', error: { name, message: causeMessage(message) } };
  }
  const stopDate = new Date().toISOString();
  closed = true;
  execution.abort(); // stops iterations still running after a failure at their next state
  await collecting;
  if (history.listenerError !== undefined) throw history.listenerError;
  // As in Step Functions, the execution ends without waiting for handlers still running (siblings
  // of a failed Map iteration, timed-out tasks): a Lambda is not stopped when its execution ends.
  const stragglers = Promise.allSettled([...inFlight]).then(() => undefined);
  // The execution's start is its ExecutionStarted event, as DescribeExecution's startDate is.
  const started = history.startDate ?? startDate;
  return { ...outcome, events: history.events, startDate: started, stopDate, handlersSettled: stragglers };
}
