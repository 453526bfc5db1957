import { describe, expect, it } from 'vitest';
import { putVerified } from '../../../lambdas/core/protocol/conditional-write.ts';
import { when } from '../../../lambdas/core/protocol/ports.ts';
import { FastClock } from '../../helpers/memory/clocks.ts';
import { type Fault, MemoryItemStore, ServerError } from '../../helpers/memory/memory-item-store.ts';

const clock = new FastClock();
const once = (fault: Fault) => {
  let used = false;
  return () => {
    if (used) return 'none' as const;
    used = true;
    return fault;
  };
};
const write = (value: string) => ({
  key: 'k',
  item: { value, version: 2 },
  condition: when.equals('version', 1),
  isOurs: (stored: Record<string, unknown> | undefined) => stored?.value === value,
  what: 'test write',
});

describe('a conditional write is decided by what is stored', () => {
  it.each(['lost', 'lost-retried'] as const)(
    '%s: applied but answered with an error: it is a success',
    async (fault) => {
      const store = new MemoryItemStore(once(fault));
      store.items.set('k', { value: 'old', version: 1 });
      expect(await putVerified(store, clock, write('ours'))).toMatchObject({ written: true });
      expect(store.items.get('k')).toEqual({ value: 'ours', version: 2 });
      expect(store.stats.faults[fault]).toBe(1);
    },
  );

  it('throttled: not applied, written again', async () => {
    const store = new MemoryItemStore(once('throttled'));
    store.items.set('k', { value: 'old', version: 1 });
    expect(await putVerified(store, clock, write('ours'))).toMatchObject({ written: true });
    expect(store.stats.calls).toBeGreaterThanOrEqual(3); // put (throttled), get, put
  });

  it('refused: the condition failed against someone else, and the stored item says whose', async () => {
    const store = new MemoryItemStore();
    store.items.set('k', { value: 'theirs', version: 2 });
    expect(await putVerified(store, clock, write('ours'))).toEqual({
      written: false,
      stored: { value: 'theirs', version: 2 },
    });
  });

  it('a store that keeps failing ends in StoreUnavailableError, with the write named', async () => {
    const store = new MemoryItemStore((call) => (call.op === 'put' ? 'throttled' : 'none'));
    store.items.set('k', { value: 'old', version: 1 });
    await expect(putVerified(store, clock, write('ours'))).rejects.toMatchObject({
      name: 'StoreUnavailableError',
      message: expect.stringContaining('test write: not applied after 5 attempts'),
    });
  });

  it('an error that proves nothing was applied is thrown at once', async () => {
    const store = new MemoryItemStore();
    store.put = async () => {
      throw new ServerError('ValidationException', 'item too large');
    };
    await expect(putVerified(store, clock, write('ours'))).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });
});
