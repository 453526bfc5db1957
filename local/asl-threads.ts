import { AsyncLocalStorage } from 'node:async_hooks';
import { StateMachine } from 'aws-local-stepfunctions';

/**
 * Which run of a state machine (the execution, or one Map iteration or Parallel branch) an event of
 * aws-local-stepfunctions belongs to. The library forwards an iteration's events to the root log
 * with no such mark, so interleaved iterations could not be told apart; Step Functions links every
 * event to the previous one of its own iteration (previousEventId). Each run gets a thread number,
 * held in an AsyncLocalStorage while the run executes and stamped on every event it dispatches.
 */
export interface ThreadMark {
  thread: number;
  /** The thread that started this one (a Map iteration's parent); absent for the execution. */
  parentThread?: number;
}

type Dispatchable = { dispatch(event: object): void };
type Execute = (
  input: unknown,
  options: { eventLogger: Dispatchable },
  cleanup: () => void,
) => Promise<unknown>;

const current = new AsyncLocalStorage<number>();
const loggers = new Map<number, Dispatchable>();
let nextThread = 1;

/** The thread whose code is running now (inside a Task handler: the state's own iteration). */
export function currentThread(): number | undefined {
  return current.getStore();
}

/** Dispatches a runner-made event (a Lambda's scheduling, its result) into a thread's log. */
export function dispatchInThread(thread: number | undefined, event: object): void {
  if (thread !== undefined) loggers.get(thread)?.dispatch(event);
}

const INSTALLED = Symbol.for('embedflow.asl-threads');
const proto = StateMachine.prototype as unknown as { execute: Execute; [INSTALLED]?: true };
if (!proto[INSTALLED]) {
  const execute = proto.execute;
  proto.execute = function (this: unknown, input, options, cleanup) {
    const mark: ThreadMark = { thread: nextThread++, parentThread: current.getStore() };
    const logger = options.eventLogger;
    const dispatch = logger.dispatch.bind(logger);
    // Events forwarded up from an iteration were stamped by the iteration's own logger first.
    logger.dispatch = (event: Partial<ThreadMark>) =>
      dispatch(event.thread === undefined ? Object.assign(event, mark) : event);
    loggers.set(mark.thread, logger);
    const done = () => {
      loggers.delete(mark.thread);
      cleanup();
    };
    return current.run(mark.thread, () => execute.call(this, input, options, done));
  };
  proto[INSTALLED] = true;
}
