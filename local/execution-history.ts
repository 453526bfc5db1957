import type { StateMachine } from 'aws-local-stepfunctions';
import type { ThreadMark } from './asl-threads.ts';
import { type HistoryEvent, IterationTracker } from './history-event.ts';

/**
 * The execution history of a local run: aws-local-stepfunctions' event log turned into the events
 * Step Functions records for the same run (GetExecutionHistory): a Lambda Task is TaskStateEntered,
 * LambdaFunctionScheduled, LambdaFunctionStarted, LambdaFunctionSucceeded|Failed|TimedOut,
 * TaskStateExited; a retry is a new LambdaFunctionScheduled following the failure; a Map has
 * MapStateStarted, MapIteration* and MapStateSucceeded|Failed; every event names the previous one
 * of its own iteration. The library's own retry and catch events have no Step Functions
 * counterpart and are dropped.
 */
export type { HistoryEvent } from './history-event.ts';

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

/** What the history needs to know of each state of the definition. */
export type StateInfo = {
  type: string;
  parent?: string;
  timeoutSeconds?: number;
  retries: boolean;
  /** A Task whose Resource is a Lambda function ARN: its events are LambdaFunction*, else Task*. */
  lambda?: boolean;
};

type LibraryEvent = ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/** Events the runner itself dispatches into a thread (asl-threads.ts) around each handler call. */
export type HandlerEvent =
  | { type: 'HandlerScheduled'; timestamp: number; state: { name: string }; input: unknown }
  | { type: 'HandlerSucceeded'; timestamp: number; state: { name: string }; output: unknown };

type EventLog = (LibraryEvent | HandlerEvent) & Partial<ThreadMark>;

type Draft = Omit<HistoryEvent, 'id' | 'previousEventId' | 'mapIterationIndex' | 'parentStateName'> & {
  mapIterationIndex?: number;
};

const failure = (log: { Error: string; Cause: unknown }) => ({ error: log.Error, cause: String(log.Cause) });
const TERMINAL = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimeout']);
const ROOT = 0; // the key of the execution's own thread before its first state

interface OpenIteration {
  map: string;
  index: number;
  parent: number;
}

/** Turns the library's event log into Step Functions history events, numbered as they arrive. */
export class History {
  readonly events: HistoryEvent[] = [];
  listenerError: unknown;
  private readonly iterations = new IterationTracker();
  /** The last event of each thread: what its next event follows. */
  private readonly last = new Map<number, number>();
  /** The last iteration end of each thread's running Map: what MapStateSucceeded|Failed follows. */
  private readonly lastIterationEnd = new Map<number, HistoryEvent>();
  private readonly openIterations = new Map<number, OpenIteration>();
  /** Threads whose handler call is under way (a late result after a timeout is not recorded). */
  private readonly openHandlers = new Map<number, string>();
  /** Threads whose Map or Parallel failure was caught: their exit is not a success. */
  private readonly caughtFanOut = new Set<number>();
  private rootThread?: number;
  private terminal: EventLog[] = [];

  constructor(
    private readonly states: Map<string, StateInfo>,
    private readonly onEvent?: (event: HistoryEvent) => void,
  ) {}

  add(log: EventLog): void {
    // The execution's end is held back so that it stays last, after aborted iterations.
    if (TERMINAL.has(log.type)) this.terminal.push(log);
    else this.convert(log);
  }

  finish(): void {
    const at = this.terminal[0]?.timestamp ?? Date.now();
    for (const thread of [...this.openIterations.keys()]) this.abortIteration(thread, at);
    for (const log of this.terminal) this.convert(log);
  }

  /** The ExecutionStarted time: the execution's start date. */
  get startDate(): string | undefined {
    return this.events[0]?.timestamp;
  }

  private emit(draft: Draft, thread: number, follows = this.last.get(thread) ?? 0): HistoryEvent {
    const event = this.iterations.place({ id: this.events.length + 1, ...draft, previousEventId: follows });
    this.events.push(event);
    this.last.set(thread, event.id);
    try {
      this.onEvent?.(event);
    } catch (error) {
      this.listenerError ??= error;
    }
    return event;
  }

  private abortIteration(thread: number, at: number): void {
    const open = this.openIterations.get(thread);
    if (!open) return;
    this.openIterations.delete(thread);
    const stamp = new Date(at).toISOString();
    const draft = {
      type: 'MapIterationAborted',
      timestamp: stamp,
      stateName: open.map,
      mapIterationIndex: open.index,
    };
    this.emit(draft, thread);
  }

  private convert(log: EventLog): void {
    const timestamp = new Date(log.timestamp).toISOString();
    const thread = log.thread ?? ROOT;
    switch (log.type) {
      case 'ExecutionStarted':
        this.rootThread = thread;
        // Step Functions links the first state to nothing (0), not to ExecutionStarted.
        this.emit({ type: 'ExecutionStarted', timestamp, input: log.input }, ROOT, 0);
        this.last.delete(ROOT);
        return;
      case 'ExecutionSucceeded':
        this.emit({ type: 'ExecutionSucceeded', timestamp, output: log.output }, this.rootThread ?? ROOT);
        return;
      case 'ExecutionFailed':
        this.emit({ type: 'ExecutionFailed', timestamp, ...failure(log) }, this.rootThread ?? ROOT);
        return;
      case 'ExecutionAborted':
        this.emit({ type: 'ExecutionAborted', timestamp }, this.rootThread ?? ROOT);
        return;
      case 'ExecutionTimeout':
        this.emit({ type: 'ExecutionTimedOut', timestamp, error: 'States.Timeout' }, this.rootThread ?? ROOT);
        return;
      case 'MapIterationStarted': {
        const parent = log.parentThread ?? ROOT;
        const map = log.parentState.name;
        this.openIterations.set(thread, { map, index: log.index, parent });
        const draft = { type: log.type, timestamp, stateName: map, mapIterationIndex: log.index };
        // As recorded by AWS: an iteration that waited for a free slot follows the end of the one
        // before it (the last event of that iteration), the first ones follow MapStateStarted.
        const previous = this.lastIterationEnd.get(parent);
        this.emit(draft, thread, previous?.previousEventId ?? this.last.get(parent) ?? 0);
        return;
      }
      case 'MapIterationSucceeded':
      case 'MapIterationFailed': {
        const open = this.openIterations.get(thread);
        this.openIterations.delete(thread);
        // AWS gives a failed iteration no error of its own: the failed state's event carries it.
        const draft = {
          type: log.type,
          timestamp,
          stateName: log.parentState.name,
          mapIterationIndex: log.index,
        };
        const event = this.emit(draft, thread);
        this.lastIterationEnd.set(open?.parent ?? log.parentThread ?? ROOT, event);
        return;
      }
      case 'ParallelBranchStarted':
      case 'ParallelBranchSucceeded':
      case 'ParallelBranchFailed':
        return; // Step Functions reports Parallel states, not their branches
      case 'HandlerScheduled': {
        const lambda = this.states.get(log.state.name)?.lambda;
        const base = { timestamp, stateName: log.state.name };
        this.emit(
          { ...base, type: lambda ? 'LambdaFunctionScheduled' : 'TaskScheduled', input: log.input },
          thread,
        );
        this.emit({ ...base, type: lambda ? 'LambdaFunctionStarted' : 'TaskStarted' }, thread);
        this.openHandlers.set(thread, log.state.name);
        return;
      }
      case 'HandlerSucceeded': {
        if (this.openHandlers.get(thread) !== log.state.name) return; // it timed out meanwhile
        this.openHandlers.delete(thread);
        const lambda = this.states.get(log.state.name)?.lambda;
        const type = lambda ? 'LambdaFunctionSucceeded' : 'TaskSucceeded';
        this.emit({ type, timestamp, stateName: log.state.name, output: log.output }, thread);
        return;
      }
    }
    this.convertStateEvent(log, timestamp, thread);
  }

  private convertStateEvent(
    log: Extract<LibraryEvent, { state: unknown }>,
    timestamp: string,
    thread: number,
  ) {
    const name = log.state.name;
    const info = this.states.get(name);
    const kind = info?.type ?? log.state.type;
    const fanOut = kind === 'Map' || kind === 'Parallel';
    const base = { timestamp, stateName: name };
    switch (log.type) {
      case 'StateEntered': {
        this.emit({ ...base, type: `${kind}StateEntered`, input: log.state.input }, thread);
        if (fanOut) this.emit({ ...base, type: `${kind}StateStarted` }, thread);
        return;
      }
      case 'StateExited': {
        const ended = this.lastIterationEnd.get(thread);
        this.lastIterationEnd.delete(thread);
        const exit = { ...base, type: `${kind}StateExited`, output: log.state.output };
        if (fanOut && !this.caughtFanOut.delete(thread)) {
          // Both follow the last iteration's end, as AWS records them.
          const follows = ended?.id ?? this.last.get(thread);
          this.emit({ ...base, type: `${kind}StateSucceeded` }, thread, follows);
          this.emit(exit, thread, follows);
        } else this.emit(exit, thread);
        return;
      }
      case 'StateFailed': {
        if (kind === 'Task' && this.openHandlers.get(thread) === name) {
          this.openHandlers.delete(thread);
          const lambda = info?.lambda;
          const timedOut = log.Error === 'States.Timeout';
          const type = `${lambda ? 'LambdaFunction' : 'Task'}${timedOut ? 'TimedOut' : 'Failed'}`;
          this.emit({ ...base, type, ...failure(log) }, thread);
        } else if (fanOut) {
          // Step Functions stops the Map's other iterations when one fails.
          for (const [child, open] of this.openIterations) {
            if (open.parent === thread && open.map === name) this.abortIteration(child, log.timestamp);
          }
          const ended = this.lastIterationEnd.get(thread);
          this.emit(
            { ...base, type: `${kind}StateFailed` },
            thread,
            ended?.previousEventId ?? this.last.get(thread),
          );
        }
        // Other states have no failure event of their own: ExecutionFailed (or the Catch) tells.
        return;
      }
      case 'StateCaught':
        if (fanOut) this.caughtFanOut.add(thread);
        return;
      case 'StateRetried':
        return; // the retry is the next LambdaFunctionScheduled, following the failure
    }
  }
}
