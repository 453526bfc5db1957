import type { StateMachine } from 'aws-local-stepfunctions';

/**
 * The execution history of a local run: aws-local-stepfunctions' event log turned into events
 * named and ordered as Step Functions' GetExecutionHistory reports them.
 */

/**
 * An execution's status as Step Functions names it, for local and AWS executions alike. A local
 * run ends SUCCEEDED or FAILED, or is ABORTED when its process died.
 */
export type ExecutionStatus =
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'TIMED_OUT'
  | 'ABORTED'
  | 'PENDING_REDRIVE';

export interface HistoryEvent {
  id: number;
  type: string;
  timestamp: string;
  stateName?: string;
  input?: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
  /** Iteration of the enclosing Map; inside a nested Map the library reports the outermost one. */
  mapIterationIndex?: number;
  /** The Map or Parallel state the state belongs to. */
  parentStateName?: string;
  retryAttempt?: number;
}

/** What the history needs to know of each state of the definition. */
export type StateInfo = { type: string; parent?: string; timeoutSeconds?: number; retries: boolean };

type EventLog = ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

const failure = (log: { Error: string; Cause: unknown }) => ({ error: log.Error, cause: String(log.Cause) });

type Draft = Omit<HistoryEvent, 'id'>;
const TERMINAL = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimeout']);

/** Turns the library's event log into console-style history events, numbered as they arrive. */
export class History {
  readonly events: HistoryEvent[] = [];
  listenerError: unknown;
  /** Per Map, iterations started and not yet finished; the library drops an aborted one's end. */
  private readonly open = new Map<string, number[]>();
  // `state.input` is the same object in every event of one visit of a state: it ties a Catch to its exit.
  private readonly caught = new WeakMap<object, Set<string>>();
  private terminal: Draft[] = [];

  constructor(
    private readonly states: Map<string, StateInfo>,
    private readonly onEvent?: (event: HistoryEvent) => void,
  ) {}

  add(log: EventLog): void {
    const drafts = this.convert(log);
    // The execution's end is held back so that it stays last, after aborted iterations.
    if (TERMINAL.has(log.type)) this.terminal.push(...drafts);
    else for (const draft of drafts) this.emit(draft);
  }

  finish(): void {
    const timestamp = this.terminal[0]?.timestamp ?? new Date().toISOString();
    for (const [stateName, indexes] of this.open) {
      const aborted = {
        type: 'MapIterationAborted',
        timestamp,
        stateName,
        parentStateName: this.states.get(stateName)?.parent,
      };
      for (const index of indexes) this.emit({ ...aborted, mapIterationIndex: index });
    }
    for (const draft of this.terminal) this.emit(draft);
  }

  private emit(draft: Draft): void {
    const event: HistoryEvent = { id: this.events.length + 1, ...draft };
    this.events.push(event);
    try {
      this.onEvent?.(event);
    } catch (error) {
      this.listenerError ??= error;
    }
  }

  private convert(log: EventLog): Draft[] {
    const timestamp = new Date(log.timestamp).toISOString();
    switch (log.type) {
      case 'ExecutionStarted':
        return [{ type: 'ExecutionStarted', timestamp, input: log.input }];
      case 'ExecutionSucceeded':
        return [{ type: 'ExecutionSucceeded', timestamp, output: log.output }];
      case 'ExecutionFailed':
        return [{ type: 'ExecutionFailed', timestamp, ...failure(log) }];
      case 'ExecutionAborted':
        return [{ type: 'ExecutionAborted', timestamp }];
      case 'ExecutionTimeout':
        return [{ type: 'ExecutionTimedOut', timestamp, error: 'States.Timeout' }];
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed': {
        const { name } = log.parentState;
        const indexes = this.open.get(name) ?? this.open.set(name, []).get(name)!;
        if (log.type === 'MapIterationStarted') indexes.push(log.index);
        else if (indexes.includes(log.index)) indexes.splice(indexes.indexOf(log.index), 1);
        const event = { type: log.type, timestamp, stateName: name, mapIterationIndex: log.index };
        const failed = log.type === 'MapIterationFailed' && failure(log);
        return [{ ...event, parentStateName: this.states.get(name)?.parent, ...failed }];
      }
      case 'ParallelBranchStarted':
      case 'ParallelBranchSucceeded':
      case 'ParallelBranchFailed':
        return []; // Step Functions reports Parallel states, not their branches
    }
    const name = log.state.name;
    const info = this.states.get(name);
    const kind = info?.type ?? log.state.type;
    const base = { timestamp, stateName: name, parentStateName: info?.parent, mapIterationIndex: log.index };
    const visit =
      typeof log.state.input === 'object' && log.state.input !== null ? log.state.input : undefined;
    const fanOut = kind === 'Map' || kind === 'Parallel';
    switch (log.type) {
      case 'StateEntered': {
        const started =
          kind === 'Task' ? ['TaskScheduled', 'TaskStarted'] : fanOut ? [`${kind}StateStarted`] : [];
        const entered = { ...base, type: `${kind}StateEntered`, input: log.state.input };
        return [entered, ...started.map((type) => ({ ...base, type }))];
      }
      case 'StateExited': {
        const wasCaught = visit !== undefined && this.caught.get(visit)?.delete(name) === true;
        const succeeded = kind === 'Task' ? 'TaskSucceeded' : fanOut ? `${kind}StateSucceeded` : undefined;
        return [
          ...(succeeded && !wasCaught ? [{ ...base, type: succeeded, output: log.state.output }] : []),
          { ...base, type: `${kind}StateExited`, output: log.state.output },
        ];
      }
      case 'StateFailed':
        if (kind === 'Fail') return []; // ExecutionFailed follows with the same error
        return [{ ...base, type: `${kind === 'Task' ? 'Task' : `${kind}State`}Failed`, ...failure(log) }];
      case 'StateRetried': {
        const again =
          kind === 'Task' ? ['TaskRetried', 'TaskScheduled', 'TaskStarted'] : [`${kind}StateRetried`];
        return again.map((type) => ({ ...base, type, retryAttempt: log.retry.attempt }));
      }
      case 'StateCaught':
        if (visit) this.caught.set(visit, (this.caught.get(visit) ?? new Set()).add(name));
        return [{ ...base, type: 'StateCaught' }]; // not a Step Functions event; the console counts it
    }
  }
}
