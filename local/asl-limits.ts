import { StateMachine } from 'aws-local-stepfunctions';

/**
 * Step Functions' payload quota, enforced locally as the service does: the input and the output of
 * every state (and what a Task hands to and gets back from its Lambda) is at most 256 KiB as a
 * UTF-8 JSON string. Past it the state fails with States.DataLimitExceeded, a terminal error that
 * `States.ALL` does not catch (and no Retry retries), so the execution fails.
 */
export const PAYLOAD_LIMIT_BYTES = 262_144;
export const DATA_LIMIT_EXCEEDED = 'States.DataLimitExceeded';

export class DataLimitExceededError extends Error {
  override name = DATA_LIMIT_EXCEEDED;
  // aws-local-stepfunctions reads these: not retried, not caught (the definition check below
  // refuses an explicit States.DataLimitExceeded catcher, the one case this cannot express).
  readonly isRetryable = false;
  readonly isCatchable = false;
}

export function payloadBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null) ?? 'null', 'utf8');
}

const over = (bytes: number) =>
  `(${bytes.toLocaleString('en-US')} bytes; the limit is ${PAYLOAD_LIMIT_BYTES.toLocaleString('en-US')})`;

/** Throws States.DataLimitExceeded, worded as Step Functions words it, when `value` is too large. */
export function checkPayload(value: unknown, stateName: string, kind: 'input' | 'result'): void {
  const bytes = payloadBytes(value);
  if (bytes <= PAYLOAD_LIMIT_BYTES) return;
  const what = kind === 'result' ? 'returned a result' : 'has an input';
  throw new DataLimitExceededError(
    `The state/task '${stateName}' ${what} with a size exceeding the maximum number of bytes service limit ${over(bytes)}`,
  );
}

/** Refuses before the start what the library cannot honour: a Retry or Catch naming the error. */
export function assertNoDataLimitHandlers(stateName: string, state: Record<string, unknown>): void {
  for (const field of ['Retry', 'Catch'] as const) {
    const rules = Array.isArray(state[field]) ? (state[field] as { ErrorEquals?: unknown[] }[]) : [];
    if (rules.some((rule) => rule.ErrorEquals?.includes(DATA_LIMIT_EXCEEDED))) {
      throw new Error(
        `state "${stateName}": a ${field} naming ${DATA_LIMIT_EXCEEDED} is not supported by the local runner`,
      );
    }
  }
}

type Logger = {
  dispatchStateEnteredEvent(name: string, type: string, input: unknown): void;
  dispatchStateExitedEvent(name: string, type: string, input: unknown, output: unknown): void;
};
type Execute = (input: unknown, options: { eventLogger: Logger }, cleanup: () => void) => Promise<unknown>;

// Every state's input and output pass through the machine loop's logger calls, inside the loop's
// try: a throw there fails the execution (or the Map iteration) without consulting any Catch, which
// is exactly what a terminal error does. The first state's input of an iteration is the Map's
// ItemSelector output; later inputs are earlier outputs, already checked.
const INSTALLED = Symbol.for('embedflow.asl-limits');
const proto = StateMachine.prototype as unknown as { execute: Execute; [INSTALLED]?: true };
if (!proto[INSTALLED]) {
  const execute = proto.execute;
  proto.execute = function (this: unknown, input, options, cleanup) {
    const logger = options.eventLogger;
    const entered = logger.dispatchStateEnteredEvent.bind(logger);
    const exited = logger.dispatchStateExitedEvent.bind(logger);
    logger.dispatchStateEnteredEvent = (name, type, stateInput) => {
      checkPayload(stateInput, name, 'input');
      entered(name, type, stateInput);
    };
    logger.dispatchStateExitedEvent = (name, type, stateInput, output) => {
      checkPayload(output, name, 'result');
      exited(name, type, stateInput, output);
    };
    return execute.call(this, input, options, cleanup);
  };
  proto[INSTALLED] = true;
}
