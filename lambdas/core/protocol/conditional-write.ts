import { StoreUnavailableError } from '../errors.ts';
import { type Clock, type Condition, holds, type Item, type ItemStore } from './ports.ts';

/**
 * The one rule for every conditional write of the protocol: its outcome is decided by what is
 * stored, never by the error alone. DynamoDB can apply a write and still answer 500 or time out;
 * the SDK then retries it and the retry fails its own condition. So after a condition failure or
 * an error we read the item back (strongly consistent) and compare it with what we wrote:
 *   - it is ours: the write happened (whatever the error said);
 *   - the condition no longer holds: refused, and the stored item says by whom;
 *   - the condition still holds and the item is not ours: it did not apply; write again.
 */
export interface ConditionalWrite {
  key: string;
  item: Item;
  condition?: Condition;
  /** Whether `stored` is the item this write put there (our owner token, our snapshot key…). */
  isOurs(stored: Item | undefined): boolean;
  /** For errors: what this write is, e.g. `pointer of "words" v3 -> v4`. */
  what: string;
}

export type WriteOutcome =
  | { written: true; stored: Item | undefined }
  | { written: false; stored: Item | undefined };

const ATTEMPTS = 5;
/** Errors that prove the request was refused before anything was applied: no point retrying. */
const DEFINITE_FAILURES = new Set([
  'ValidationException',
  'AccessDeniedException',
  'ResourceNotFoundException',
  'ItemCollectionSizeLimitExceededException',
  'UnrecognizedClientException',
]);

const backoffMs = (attempt: number) => Math.min(1000, 20 * 2 ** attempt) * (0.5 + Math.random() / 2);

export async function putVerified(
  store: ItemStore,
  clock: Clock,
  write: ConditionalWrite,
): Promise<WriteOutcome> {
  return verified(store, clock, write, () => store.put(write.key, write.item, write.condition));
}

/** A conditional delete, decided the same way (`isOurs` then means "the item is gone as we wanted"). */
export async function deleteVerified(
  store: ItemStore,
  clock: Clock,
  write: Omit<ConditionalWrite, 'item'>,
): Promise<WriteOutcome> {
  return verified(store, clock, { ...write, item: {} }, () => store.delete(write.key, write.condition));
}

async function verified(
  store: ItemStore,
  clock: Clock,
  write: ConditionalWrite,
  attemptWrite: () => Promise<boolean>,
): Promise<WriteOutcome> {
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      if (await attemptWrite()) return { written: true, stored: write.item };
    } catch (error) {
      if (DEFINITE_FAILURES.has((error as Error).name)) throw error;
      lastError = error;
    }
    const stored = await readConsistently(store, clock, write.key, write.what);
    if (write.isOurs(stored)) return { written: true, stored };
    if (write.condition && !holds(write.condition, stored)) return { written: false, stored };
    await clock.sleep(backoffMs(attempt));
  }
  throw new StoreUnavailableError(
    `${write.what}: not applied after ${ATTEMPTS} attempts (${(lastError as Error | undefined)?.message ?? 'condition kept changing'})`,
    { cause: lastError },
  );
}

/** A strongly consistent read that rides out throttling and transient errors. */
export async function readConsistently(
  store: ItemStore,
  clock: Clock,
  key: string,
  what = key,
): Promise<Item | undefined> {
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      return await store.get(key);
    } catch (error) {
      if (DEFINITE_FAILURES.has((error as Error).name)) throw error;
      lastError = error;
      await clock.sleep(backoffMs(attempt));
    }
  }
  throw new StoreUnavailableError(
    `${what}: read failed ${ATTEMPTS} times (${(lastError as Error).message})`,
    {
      cause: lastError,
    },
  );
}
