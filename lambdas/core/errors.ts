/**
 * Named error classes. Step Functions Retry/Catch match on `error.name`, so every class sets it:
 * transient ones (LockBusyError, CasConflictError, LeaseLostError) are retried by the workflow,
 * BadInputError and ConfigError never are.
 */
export class EmbedflowError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Input that can never succeed as given: a malformed line, a wrong dimension, an empty run. */
export class BadInputError extends EmbedflowError {}

/** An environment variable or flag with a value outside what is accepted. */
export class ConfigError extends EmbedflowError {}

/** The collection lock stayed held by someone else for the whole wait. */
export class LockBusyError extends EmbedflowError {}

/** The pointer moved on every attempt: MAX_CAS_RETRIES rebases were not enough. Retryable. */
export class CasConflictError extends EmbedflowError {}

/** A holder's lease was taken over by another owner; it must stop and never write the lock again. */
export class LeaseLostError extends EmbedflowError {}

/** DynamoDB kept failing (throttled, 5xx) and the stored state shows the write did not apply. Retryable. */
export class StoreUnavailableError extends EmbedflowError {}

/** A change is committed to the log but was not published within PUBLISH_WAIT_SECONDS. Retryable: the retry waits again. */
export class PublicationPendingError extends EmbedflowError {}

/** A freshly built snapshot failed its checks (count, dimension, probe query): nothing is published. */
export class SnapshotValidationError extends EmbedflowError {}

/** A snapshot or segment named by the pointer or a manifest is missing or unreadable. */
export class StorageError extends EmbedflowError {}

/** A Chroma server could not be started (it exited, or never answered its heartbeat). */
export class ChromaStartError extends EmbedflowError {}

/** A Chroma server answered a request with an error status. */
export class ChromaRequestError extends EmbedflowError {}

export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

export function describeError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/**
 * The message inside a Step Functions error Cause: for a Lambda error the Cause is the runtime's
 * JSON (`{"errorType","errorMessage","trace"}`); any other Cause is already a message.
 */
export function causeMessage(cause: string): string {
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown; message?: unknown } | null;
    if (typeof parsed?.errorMessage === 'string') return parsed.errorMessage;
    if (typeof parsed?.message === 'string') return parsed.message;
  } catch {
    // not JSON: the cause is the message
  }
  return cause;
}
