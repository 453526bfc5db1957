import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPublishedCollection } from '../../lambdas/core/chroma/published-snapshot.ts';
import { BUILD_LEASE, lockId } from '../../lambdas/core/protocol/lock.ts';
import type { Pointer } from '../../lambdas/core/protocol/pointer.ts';
import { publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { publishDeps, type Runtime } from '../../lambdas/core/runtime.ts';
import { startTestStack, storedSnapshots, type TestStack, uniqueCollection } from '../helpers/local-stack.ts';
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

describe('crashes (SIGKILL) at each step', () => {
  it('after the change set is written: nothing is committed; the retry commits it once', async () => {
    const rt = stack.runtime(FAST_LOCK);
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('base', makeUpserts('base', 5, DIM)));
    await crash(collection, 'crashed', 'after-changeset', 'lost');
    expect((await rt.log.pending(collection, 1)).length).toBe(0);
    const retried = await publish(
      publishDeps(rt),
      collection,
      opsChange('crashed', makeUpserts('lost', 10, DIM, 99)),
    );
    expect(retried).toMatchObject({ status: 'published', recordCount: 15 });
  });

  it('after the append: the commit is durable, and the next publisher folds it', async () => {
    const rt = stack.runtime(FAST_LOCK);
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('base', makeUpserts('base', 5, DIM)));
    await crash(collection, 'committed', 'after-append', 'kept');
    const next = await publish(publishDeps(rt), collection, opsChange('next', makeUpserts('next', 5, DIM)));
    expect(next).toMatchObject({ status: 'published', recordCount: 20 });
    expect(await snapshotIds(rt, await rt.pointers.read(collection))).toContain('kept-00009');
    const rerun = await publish(
      publishDeps(rt),
      collection,
      opsChange('committed', makeUpserts('kept', 10, DIM, 99)),
    );
    expect(rerun.status).toBe('already-applied');
  });

  it('mid-build, holding the build lease: the next publisher builds once that lease runs out', async () => {
    const rt = stack.runtime(FAST_LOCK);
    const collection = uniqueCollection('lines');
    await crash(collection, 'dead-holder', 'mid-build', 'dead');
    const leases = await rt.buildLease.list();
    expect(leases.find((lease) => lease.lockId === lockId(collection, BUILD_LEASE))?.owner).toBeTruthy();
    expect(await rt.pointers.read(collection)).toMatchObject({ version: 0 });
    const next = await publish(
      publishDeps(rt),
      collection,
      opsChange('after-dead', makeUpserts('live', 7, DIM)),
    );
    expect(next).toMatchObject({ status: 'published', recordCount: 17 });
    const ids = await snapshotIds(rt, await rt.pointers.read(collection));
    expect(ids).toHaveLength(17);
  });

  it('after the upload, before the swap: the orphan upload is garbage and goes with the next publish', async () => {
    const rt = stack.runtime(FAST_LOCK);
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('base', makeUpserts('base', 5, DIM)));
    await crash(collection, 'uploaded', 'after-upload', 'up');
    const pointer = await rt.pointers.read(collection);
    expect(pointer.version).toBe(1);
    expect(await storedSnapshots(rt, collection)).toHaveLength(2);
    const next = await publish(publishDeps(rt), collection, opsChange('next', makeUpserts('next', 5, DIM)));
    expect(next).toMatchObject({ status: 'published', snapshotVersion: 2, recordCount: 20 });
    expect(await storedSnapshots(rt, collection)).toEqual(
      [pointer.snapshotKey, next.snapshotKey].sort() as string[],
    );
  });

  it('after the swap: the snapshot is complete and running that run again changes nothing', async () => {
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
