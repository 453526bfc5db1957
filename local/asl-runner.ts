import { StateMachine } from 'aws-local-stepfunctions';

/**
 * Runs an ASL definition locally with aws-local-stepfunctions, each Task state served by an
 * in-process handler keyed by state name, and converts the library's event log into history
 * events named as Step Functions' GetExecutionHistory names them.
 */
export type TaskHandler = (input: never) => Promise<unknown>;

export interface HistoryEvent {
  id: number;
  type: string;
  timestamp: string;
  stateName?: string;
  input?: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
  mapIterationIndex?: number;
  parentStateName?: string;
  retryAttempt?: number;
}

export interface ExecutionResult {
  status: 'SUCCEEDED' | 'FAILED';
  output?: unknown;
  error?: { name: string; message: string };
  events: HistoryEvent[];
  startDate: string;
  stopDate: string;
}

export interface RunOptions {
  definition: object;
  handlers: Record<string, TaskHandler>;
  input: unknown;
  executionId: string;
  zeroRetryWaits?: boolean;
  onEvent?: (event: HistoryEvent) => void;
}

// aws-local-stepfunctions targets Node 22; Node 20 lacks Promise.withResolvers.
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

/** The library's event log entry (its type is not exported). */
type EventLog = ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

type StateDefinition = {
  Type: string;
  Resource?: string;
  Iterator?: Machine;
  ItemProcessor?: Machine;
  Branches?: Machine[];
};
type Machine = { States: Record<string, StateDefinition> };

/** Every state of a definition, nested Map and Parallel states included: name → type. */
export function stateTypes(definition: object): Map<string, string> {
  const types = new Map<string, string>();
  const visit = (machine: Machine) => {
    for (const [name, state] of Object.entries(machine.States)) {
      types.set(name, state.Type);
      const nested = [state.Iterator, state.ItemProcessor, ...(state.Branches ?? [])];
      for (const child of nested) if (child) visit(child);
    }
  };
  visit(definition as Machine);
  return types;
}

export function findTaskStates(definition: object): string[] {
  return [...stateTypes(definition)].filter(([, type]) => type === 'Task').map(([name]) => name);
}

/** Replaces `${Name}` placeholders (CDK DefinitionSubstitutions) with local fake ARNs. */
export function substitutePlaceholders(definition: object, values: Record<string, string> = {}): object {
  const text = JSON.stringify(definition).replace(
    /\$\{([A-Za-z0-9_]+)\}/g,
    (_, name: string) => values[name] ?? `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
  );
  return JSON.parse(text) as object;
}

const STATE_EVENT_PREFIX: Record<string, string> = {
  Task: 'Task',
  Map: 'Map',
  Parallel: 'Parallel',
  Choice: 'Choice',
  Pass: 'Pass',
  Wait: 'Wait',
  Succeed: 'Succeed',
  Fail: 'Fail',
};

function causeText(cause: unknown): string | undefined {
  if (cause === undefined || cause === null) return undefined;
  if (typeof cause === 'string') return cause;
  if (cause instanceof Error) return cause.message;
  return JSON.stringify(cause);
}

/** One library event can become several console events (TaskStateEntered + TaskScheduled...). */
function toHistory(log: EventLog, types: Map<string, string>): Omit<HistoryEvent, 'id'>[] {
  const timestamp = new Date(log.timestamp).toISOString();
  switch (log.type) {
    case 'ExecutionStarted':
      return [{ type: 'ExecutionStarted', timestamp, input: log.input }];
    case 'ExecutionSucceeded':
      return [{ type: 'ExecutionSucceeded', timestamp, output: log.output }];
    case 'ExecutionFailed':
      return [{ type: 'ExecutionFailed', timestamp, error: log.Error, cause: causeText(log.Cause) }];
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed':
      return [
        {
          type: log.type,
          timestamp,
          stateName: log.parentState.name,
          mapIterationIndex: log.index,
          ...(log.type === 'MapIterationFailed' && { error: log.Error, cause: causeText(log.Cause) }),
        },
      ];
    case 'ParallelBranchStarted':
    case 'ParallelBranchSucceeded':
    case 'ParallelBranchFailed':
      return [{ type: log.type, timestamp, stateName: log.parentState.name }];
    default:
      break;
  }
  if (!('state' in log)) return [{ type: 'ExecutionAborted', timestamp }];
  const name = log.state.name;
  const prefix = STATE_EVENT_PREFIX[types.get(name) ?? log.state.type] ?? log.state.type;
  const base = {
    timestamp,
    stateName: name,
    ...(log.index !== undefined && { mapIterationIndex: log.index }),
  };
  switch (log.type) {
    case 'StateEntered':
      return prefix === 'Task'
        ? [
            { ...base, type: 'TaskStateEntered', input: log.state.input },
            { ...base, type: 'TaskScheduled' },
          ]
        : [{ ...base, type: `${prefix}StateEntered`, input: log.state.input }];
    case 'StateExited':
      return prefix === 'Task'
        ? [
            { ...base, type: 'TaskSucceeded', output: log.state.output },
            { ...base, type: 'TaskStateExited', output: log.state.output },
          ]
        : [{ ...base, type: `${prefix}StateExited`, output: log.state.output }];
    case 'StateFailed':
      return [
        {
          ...base,
          type: prefix === 'Task' ? 'TaskFailed' : `${prefix}StateFailed`,
          error: log.Error,
          cause: causeText(log.Cause),
        },
      ];
    case 'StateRetried':
      return [{ ...base, type: 'TaskRetried', retryAttempt: log.retry.attempt }];
    default:
      return [{ ...base, type: 'StateCaught' }];
  }
}

export async function runStateMachine(options: RunOptions): Promise<ExecutionResult> {
  const definition = substitutePlaceholders(options.definition);
  const missing = findTaskStates(definition).filter((name) => !options.handlers[name]);
  if (missing.length > 0) {
    throw new Error(`refusing to run: no local handler for Task state(s) ${missing.join(', ')}`);
  }
  const types = stateTypes(definition);
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const startDate = new Date().toISOString();
  const retryIntervalOverrides = options.zeroRetryWaits
    ? Object.fromEntries([...types.keys()].map((name) => [name, 0]))
    : undefined;
  const execution = machine.run(options.input as never, {
    overrides: {
      taskResourceLocalHandlers: options.handlers as never,
      ...(retryIntervalOverrides && { retryIntervalOverrides }),
    },
    context: {
      Execution: {
        Id: options.executionId,
        Name: options.executionId,
        StartTime: startDate,
        Input: options.input as never,
      },
    },
  });

  const events: HistoryEvent[] = [];
  const collecting = (async () => {
    for await (const log of execution.eventLogs) {
      for (const event of toHistory(log, types)) {
        const withId = { id: events.length + 1, ...event };
        events.push(withId);
        options.onEvent?.(withId);
      }
    }
  })();

  let result: Pick<ExecutionResult, 'status' | 'output' | 'error'>;
  try {
    result = { status: 'SUCCEEDED', output: await execution.result };
  } catch (error) {
    result = { status: 'FAILED', error: failureOf(error) };
  }
  await collecting;
  const failed = events.findLast((event) => event.type === 'ExecutionFailed');
  if (result.status === 'FAILED' && failed?.error) {
    result.error = { name: failed.error, message: failed.cause ?? failed.error };
  }
  return { ...result, events, startDate, stopDate: new Date().toISOString() };
}

function failureOf(error: unknown): { name: string; message: string } {
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (inner instanceof Error)
    return { name: inner.name, message: String((inner as { cause?: unknown }).cause ?? inner.message) };
  return { name: 'Error', message: String(inner) };
}
