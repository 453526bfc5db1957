import { describe, expect, it } from 'vitest';
import { type HeartbeatFailure, LeaseLock, lockId } from '../../../lambdas/core/protocol/lock.ts';
import { FastClock, ManualClock } from '../../helpers/memory/clocks.ts';
import { type Fault, MemoryItemStore } from '../../helpers/memory/memory-item-store.ts';

const OPTIONS = { leaseSeconds: 60, heartbeatSeconds: 15, waitSeconds: 30 };
const isLock = (key: string) => key === lockId('words');

describe('lease lock', () => {
  it.each(['lost', 'lost-retried'] as const)(
    'acquire whose response was %s: the lock is ours, no phantom lease',
    async (fault) => {
      let first = true;
      const store = new MemoryItemStore((call) => {
        if (call.op !== 'put' || !first) return 'none';
        first = false;
        return fault as Fault;
      });
      const lock = new LeaseLock(store, { ...OPTIONS, clock: new FastClock() });
      const held = await lock.acquire('words');
      expect(held.collisions).toBe(0);
      expect(store.items.get(lockId('words'))?.owner).toBe(held.owner);
      await held.release();
      expect(store.items.get(lockId('words'))?.owner).toBeUndefined();
      // the next writer gets it at once
      const next = await lock.acquire('words');
      expect(next.collisions).toBe(0);
      await next.release();
    },
  );

  it('a lock item removed by TTL weakens nothing: the next acquire starts afresh and publishes still fence', async () => {
    const clock = new ManualClock();
    const store = new MemoryItemStore();
    const lock = new LeaseLock(store, { ...OPTIONS, clock });
    await (await lock.acquire('words')).release();
    await (await lock.acquire('words')).release();
    expect(store.items.get(lockId('words'))?.fence).toBe(2);
    await clock.advance(2 * 86_400_000, 86_400_000);
    expect(store.expire(clock.now() / 1000)).toEqual([lockId('words')]);
    const again = await lock.acquire('words');
    expect(again.fence).toBe(1);
    await again.release();
  });

  it('heartbeats that fail for longer than the lease: the holder knows its lease is gone, each failure reported', async () => {
    const clock = new ManualClock();
    let throttle = false;
    const store = new MemoryItemStore((call) =>
      throttle && call.op === 'put' && isLock(call.key) ? 'throttled' : 'none',
    );
    const failures: HeartbeatFailure[] = [];
    const lock = new LeaseLock(store, {
      ...OPTIONS,
      clock,
      onHeartbeatFailure: (failure) => failures.push(failure),
    });
    const held = await lock.acquire('words');
    await clock.advance(20_000, 1000);
    expect(held.valid()).toBe(true); // renewed at 15 s
    throttle = true;
    await clock.advance(45_000, 1000);
    expect(held.valid()).toBe(true); // 65 s after acquire, renewed at 15 s: lease to 75 s, minus the 5 s margin
    await clock.advance(6_000, 1000);
    expect(held.valid()).toBe(false);
    expect(() => held.assertHeld()).toThrow(
      /lease on chroma-words-update \(fence 1\) ran out: not renewed for \d+s \(\d+ failed heartbeats\)/,
    );
    expect(held.heartbeatFailures).toBeGreaterThanOrEqual(2);
    expect(failures.length).toBe(held.heartbeatFailures);
    expect(failures[0]).toMatchObject({ collection: 'words', owner: held.owner });
    // once DynamoDB answers again, a renewal that finds the lease still ours restores it
    throttle = false;
    await clock.advance(16_000, 1000);
    expect(held.valid()).toBe(true);
    await held.release();
  });

  it('a holder whose lease was taken over finds out at its next heartbeat and never writes the lock again', async () => {
    const clock = new ManualClock();
    const store = new MemoryItemStore();
    const lock = new LeaseLock(store, { ...OPTIONS, clock });
    const first = await lock.acquire('words');
    const stored = store.items.get(lockId('words'))!;
    store.items.set(lockId('words'), { ...stored, expiresAt: 0 }); // as if its holder had paused past its lease
    const second = await lock.acquire('words');
    await clock.advance(16_000, 1000);
    expect(first.valid()).toBe(false);
    expect(() => first.assertHeld()).toThrow(/taken over/);
    await first.release();
    expect(store.items.get(lockId('words'))).toMatchObject({ owner: second.owner, fence: second.fence });
    await second.release();
  });

  it('a waiter waits at least one lease, so a crashed holder never makes it give up early', async () => {
    const clock = new ManualClock();
    const store = new MemoryItemStore();
    const crashed = new LeaseLock(store, { ...OPTIONS, clock });
    await crashed.tryAcquire('words'); // a holder that dies: no heartbeat, no release
    const waiter = new LeaseLock(store, { ...OPTIONS, waitSeconds: 5, clock });
    let acquired = false;
    const waiting = waiter.acquire('words').then((held) => {
      acquired = true;
      return held;
    });
    await clock.advance(59_000, 250);
    expect(acquired).toBe(false);
    await clock.advance(3_000, 250);
    const held = await waiting;
    expect(held.collisions).toBeGreaterThan(0);
    await held.release();
  });

  it('a busy lock that outlasts the wait gives up with LockBusyError naming the holder', async () => {
    const clock = new ManualClock();
    const store = new MemoryItemStore();
    const holder = await new LeaseLock(store, { ...OPTIONS, clock }).acquire('words');
    const waiting = new LeaseLock(store, { ...OPTIONS, waitSeconds: 5, clock }).acquire('words');
    const outcome = waiting.then(
      () => 'acquired',
      (error: Error) => error,
    );
    await clock.advance(70_000, 500); // the holder keeps renewing
    expect(await outcome).toMatchObject({
      name: 'LockBusyError',
      message: expect.stringContaining(`holder ${holder.owner}`),
    });
    await holder.release();
  });
});
