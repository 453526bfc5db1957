import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPublishedCollection } from '../../lambdas/core/chroma/published-snapshot.ts';
import { lockId } from '../../lambdas/core/protocol/lock.ts';
import type { Pointer } from '../../lambdas/core/protocol/pointer.ts';
import { publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { publishDeps, type Runtime } from '../../lambdas/core/runtime.ts';
import { parseSnapshotKey } from '../../lambdas/core/storage/snapshot-store.ts';
import { startTestStack, type TestStack, uniqueCollection } from '../helpers/local-stack.ts';
import { runTs } from '../helpers/processes.ts';
import { makeUpserts } from '../helpers/records.ts';

const DIM = 8;
const CRASHER = join(import.meta.dirname, '../helpers/crash-publisher.ts');
// Short leases so a dead holder's lease runs out within the test.
const FAST_LOCK = { LOCK_DURATION_SECONDS: '3', HEARTBEAT_INTERVAL_SECONDS: '1', LOCK_WAIT_SECONDS: '30' };
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function crash(collection: string, runId: string, at: string, prefix: string) {
  const result = await runTs(
    CRASHER,
    [collection, runId, at, prefix, '10', String(DIM)],
    stack.env(FAST_LOCK),
  );
  expect(result.signal, result.stderr).toBe('SIGKILL');
}

/** Opens the snapshot the pointer names in a fresh Chroma server and returns its ids. */
function snapshotIds(rt: Runtime, pointer: Pointer): Promise<string[]> {
  return withPublishedCollection(rt, pointer.collection, async ({ collection }) =>
    (await collection.get({ include: [] })).ids.sort(),
  );
}

describe('crashes between phases', () => {
  it('a crash after upload leaves the pointer untouched and the orphan is cleaned by the next publish', async () => {
    const rt = stack.runtime(FAST_LOCK);
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('base', makeUpserts('base', 5, DIM)));
    await crash(collection, 'crashed', 'after-upload', 'lost');

    const pointer = await rt.pointers.read(collection);
    expect(pointer.version).toBe(1);
    const keys = await rt.snapshots.listKeys(collection);
    expect(keys).toHaveLength(2);
    expect(
      keys.filter((key) => key !== pointer.snapshotKey).map((key) => parseSnapshotKey(key)?.version),
    ).toEqual([2]);

    const next = await publish(publishDeps(rt), collection, opsChange('next', makeUpserts('next', 5, DIM)));
    expect(next).toMatchObject({
      status: 'published',
      snapshotVersion: 2,
      recordCount: 10,
      deletedObjects: 1,
    });
    expect(await rt.snapshots.listKeys(collection)).toEqual(
      [pointer.snapshotKey, next.snapshotKey].sort() as string[],
    );
    expect(await snapshotIds(rt, await rt.pointers.read(collection))).not.toContain('lost-00000');
  });

  it('a holder that dies with the lock blocks others only until its lease expires', async () => {
    const rt = stack.runtime(FAST_LOCK);
    const collection = uniqueCollection('lines');
    await crash(collection, 'dead-holder', 'holding-lock', 'dead');

    const locks = await rt.lock.list();
    const held = locks.find((lock) => lock.lockId === lockId(collection));
    expect(held?.owner).toBeTruthy();
    expect(await rt.pointers.read(collection)).toMatchObject({ version: 0 });

    const next = await publish(
      publishDeps(rt),
      collection,
      opsChange('after-dead', makeUpserts('live', 7, DIM)),
    );
    expect(next).toMatchObject({ status: 'published', snapshotVersion: 1, recordCount: 7 });
    expect(next.lockCollisions).toBeGreaterThan(0);
    const ids = await snapshotIds(rt, await rt.pointers.read(collection));
    expect(ids).toHaveLength(7);
    expect(ids.every((id) => id.startsWith('live-'))).toBe(true);
    // the dead holder's upload was never published; the next publish removed it
    expect(await rt.snapshots.listKeys(collection)).toEqual([next.snapshotKey]);
  });

  it('a crash after the swap leaves a complete published snapshot, and re-running that run is a no-op', async () => {
    const rt = stack.runtime(FAST_LOCK);
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('one', makeUpserts('one', 4, DIM)));
    await crash(collection, 'swapped', 'after-swap', 'two');

    const pointer = await rt.pointers.read(collection);
    expect(pointer).toMatchObject({ version: 2, recordCount: 14 });
    expect(await snapshotIds(rt, pointer)).toHaveLength(14);

    const rerun = await publish(
      publishDeps(rt),
      collection,
      opsChange('swapped', makeUpserts('two', 10, DIM, 99)),
    );
    expect(rerun).toMatchObject({ status: 'already-applied', snapshotVersion: 2 });
  });
});
