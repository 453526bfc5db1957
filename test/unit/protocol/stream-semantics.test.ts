import { describe, expect, it } from 'vitest';
import { commit } from '../../../lambdas/core/protocol/commit.ts';
import { settle } from '../../../lambdas/core/protocol/publication.ts';
import { publish } from '../../../lambdas/core/protocol/publish.ts';
import { Tracker } from '../../../lambdas/core/protocol/publish-result.ts';
import { opsChange } from '../../../lambdas/core/records/changes.ts';
import type { ObjectStore } from '../../../lambdas/core/storage/object-store.ts';
import { compactWith, type StreamRecord } from '../../../lambdas/core/stream/stream-compaction.ts';
import { type MemoryWorld, memoryWorld } from '../../helpers/memory/memory-runtime.ts';
import { makeUpserts } from '../../helpers/records.ts';

const DIM = 4;
const NO_DELTAS = {} as ObjectStore; // these batches carry no applyDelta message

const sqs = (messageId: string, body: object, sqsId = `sqs-${messageId}`): StreamRecord => ({
  messageId: sqsId,
  body: JSON.stringify({ messageId, ...body }),
});
const upsert = (messageId: string, collection: string, ids: string[], dimension = DIM, sqsId?: string) =>
  sqs(
    messageId,
    {
      collection,
      operation: 'upsert',
      records: ids.map((id, index) => ({
        id,
        embedding: Array.from({ length: dimension }, (_, i) => i + index + 1),
      })),
    },
    sqsId,
  );
const update = (messageId: string, collection: string, updates: Record<string, object>) =>
  sqs(messageId, {
    collection,
    operation: 'updateMetadata',
    updates: Object.entries(updates).map(([id, metadata]) => ({ id, metadata })),
  });
const remove = (messageId: string, collection: string, ids: string[]) =>
  sqs(messageId, { collection, operation: 'delete', ids });

async function live(world: MemoryWorld, collection: string) {
  const pointer = await world.deps().pointers.read(collection);
  return pointer.snapshotKey ? world.snapshots.read(pointer.snapshotKey) : new Map();
}
const batch = (world: MemoryWorld, records: StreamRecord[]) => compactWith(world.deps(), NO_DELTAS, records);

describe('stream messages apply whole or not at all, in order, per collection', () => {
  it('a failed updateMetadata, redelivered after its record exists, applies (no synthetic run id)', async () => {
    const world = memoryWorld();
    const first = await batch(world, [update('u1', 'words', { later: { ok: true } })]);
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'sqs-u1' }]);
    expect(first.publishes.words?.status).toBe('failed'); // refused at commit: nothing entered the log
    await batch(world, [upsert('u2', 'words', ['later'])]);
    const retried = await batch(world, [update('u1', 'words', { later: { ok: true } })]);
    expect(retried.batchItemFailures).toEqual([]);
    expect((await live(world, 'words')).get('later')?.metadata).toEqual({ ok: true });
  });

  it('a batch whose first message id equals a recorded run id is applied, not skipped', async () => {
    const world = memoryWorld();
    await publish(world.deps(), 'words', opsChange('stream-q1', makeUpserts('a', 1, DIM)));
    await publish(world.deps(), 'words', opsChange('q1', makeUpserts('b', 1, DIM)));
    const result = await batch(world, [upsert('q1', 'words', ['x']), upsert('stream-q1', 'words', ['y'])]);
    expect(result.publishes.words).toMatchObject({ status: 'published', applied: 2 });
    expect([...(await live(world, 'words')).keys()].sort()).toEqual(['a-00000', 'b-00000', 'x', 'y']);
  });

  it('the same message id in two collections applies in both', async () => {
    const world = memoryWorld();
    const result = await batch(world, [
      upsert('m1', 'words', ['w']),
      upsert('m1', 'lines', ['l'], DIM, 'sqs-2'),
    ]);
    expect(result.batchItemFailures).toEqual([]);
    expect([...(await live(world, 'words')).keys()]).toEqual(['w']);
    expect([...(await live(world, 'lines')).keys()]).toEqual(['l']);
  });

  it('delete x then updateMetadata x in one batch: x stays deleted and the update fails alone', async () => {
    const world = memoryWorld();
    await batch(world, [upsert('seed', 'words', ['x', 'y'])]);
    const result = await batch(world, [
      remove('d1', 'words', ['x']),
      update('d2', 'words', { x: { back: true } }),
    ]);
    expect(result.failures).toEqual([
      expect.objectContaining({
        messageId: 'd2',
        reason: 'updateMetadata: no record "x" in collection "words"',
      }),
    ]);
    expect([...(await live(world, 'words')).keys()]).toEqual(['y']);
  });

  it('an updateMetadata naming an existing and a missing id changes nothing; redelivered later it applies whole', async () => {
    const world = memoryWorld();
    await batch(world, [upsert('seed', 'words', ['have'])]);
    const message = update('u', 'words', { have: { v: 1 }, missing: { v: 1 } });
    const first = await batch(world, [message]);
    expect(first.failures.map((failure) => failure.messageId)).toEqual(['u']);
    expect((await live(world, 'words')).get('have')?.metadata).toBeNull();
    await batch(world, [upsert('later', 'words', ['missing'])]);
    expect((await batch(world, [message])).failures).toEqual([]);
    const content = await live(world, 'words');
    expect(content.get('have')?.metadata).toEqual({ v: 1 });
    expect(content.get('missing')?.metadata).toEqual({ v: 1 });
  });

  it('one message of the wrong dimension fails alone; its neighbours apply', async () => {
    const world = memoryWorld();
    await batch(world, [upsert('seed', 'words', ['s'])]);
    const result = await batch(world, [
      upsert('ok1', 'words', ['a']),
      upsert('bad', 'words', ['b'], 3),
      upsert('ok2', 'words', ['c']),
    ]);
    expect(result.failures).toEqual([
      expect.objectContaining({
        messageId: 'bad',
        reason: expect.stringMatching(/dimension 3.*dimension 4/),
      }),
    ]);
    expect(result.publishes.words).toMatchObject({ applied: 2, status: 'published' });
    expect([...(await live(world, 'words')).keys()].sort()).toEqual(['a', 'c', 's']);
  });

  it('a batch that changes nothing publishes no version; a delete into an unknown collection creates none', async () => {
    const world = memoryWorld();
    await batch(world, [upsert('seed', 'words', ['s'])]);
    const result = await batch(world, [remove('gone', 'words', ['never-there'])]);
    expect(result.publishes.words).toMatchObject({ status: 'no-change', snapshotVersion: 1 });
    const pointer = await world.deps().pointers.read('words');
    expect(pointer.history.map((entry) => entry.version)).toEqual([1]);
    expect((await world.deps().applied.lookup('words', [], ['gone'])).messages.has('gone')).toBe(true);
    await batch(world, [remove('typo', 'wrods', ['s'])]);
    expect((await world.deps().pointers.listCollections()).map((listed) => listed.collection)).toEqual([
      'words',
    ]);
  });

  it('a redelivered message is applied once: it never reverts a newer update', async () => {
    const world = memoryWorld();
    const old = update('v1', 'words', { x: { v: 1 } });
    await batch(world, [upsert('seed', 'words', ['x']), old]);
    await batch(world, [update('v2', 'words', { x: { v: 2 } })]);
    const again = await batch(world, [old]);
    expect(again.publishes.words?.status).toBe('already-applied');
    expect((await live(world, 'words')).get('x')?.metadata).toEqual({ v: 2 });
  });

  it('an applyDelta outside the input prefixes fails alone, naming the key', async () => {
    const world = memoryWorld();
    const result = await batch(world, [
      sqs('d', { collection: 'words', operation: 'applyDelta', deltaKey: 'snapshots/words/v00000001-x.tar' }),
      upsert('ok', 'words', ['a']),
    ]);
    expect(result.failures).toEqual([
      expect.objectContaining({
        messageId: 'd',
        reason: expect.stringContaining('outside the input prefixes'),
      }),
    ]);
    expect(result.publishes.words?.applied).toBe(1);
  });

  it('an updateMetadata of an existing record is checked at commit and acknowledged without waiting for a build', async () => {
    const world = memoryWorld();
    await batch(world, [upsert('seed', 'words', ['x'])]);
    const builder = await world.deps().buildLease.tryHold('words'); // someone else is building
    const result = await batch(world, [
      update('u', 'words', { x: { v: 1 } }),
      update('bad', 'words', { nope: { v: 1 } }),
    ]);
    expect(result.publishes.words).toMatchObject({ status: 'committed', applied: 1 });
    expect(result.failures.map((failure) => failure.messageId)).toEqual(['bad']);
    await builder!.release();
  });

  it("an updateMetadata behind a pending run's entry is checked against the run's presence, without waiting", async () => {
    const world = memoryWorld();
    await batch(world, [upsert('seed', 'words', ['gone', 'kept'])]);
    const deps = world.deps();
    // a run committed but not yet published: it upserts "fresh" and deletes "gone"
    const ops = [
      { op: 'upsert' as const, id: 'fresh', embedding: Float32Array.from([1, 2, 3, 4]) },
      { op: 'delete' as const, id: 'gone' },
    ];
    const builder = await deps.buildLease.tryHold('words'); // someone else is building
    await deps.log.append(
      'words',
      { changeSet: await deps.changeSets.writeOps('words', 'run', ops, DIM), label: 'run', runId: 'run' },
      1,
    );
    const result = await batch(world, [
      update('on-fresh', 'words', { fresh: { v: 1 } }),
      update('on-gone', 'words', { gone: { v: 1 } }),
      update('on-kept', 'words', { kept: { v: 1 } }),
    ]);
    expect(result.publishes.words).toMatchObject({ status: 'committed', applied: 2 });
    expect(result.failures.map((failure) => failure.messageId)).toEqual(['on-gone']);
    await builder!.release();
    const { settle } = await import('../../../lambdas/core/protocol/publication.ts');
    await settle(deps, 'words');
    const records = await live(world, 'words');
    expect([...records.keys()].sort()).toEqual(['fresh', 'kept']);
    expect(records.get('fresh')?.metadata).toEqual({ v: 1 });
  });

  it('an update that passed its check but whose record was deleted before it applied is reported as rejected', async () => {
    const world = memoryWorld();
    await batch(world, [upsert('seed', 'words', ['x'])]);
    const rejected: string[] = [];
    const holder = await world.deps().buildLease.tryHold('words');
    // checked against the live snapshot (x exists); a delete is appended between that check and our append
    let raced = false;
    const deps = world.deps({
      onRejected: (_collection, outcome) =>
        rejected.push(...(outcome.failedMessages ?? []).map((failure) => failure.messageId)),
      faults: async (point) => {
        if (point !== 'after-changeset' || raced) return;
        raced = true;
        await compactWith(world.deps(), NO_DELTAS, [remove('d', 'words', ['x'])]);
      },
    });
    const late = await compactWith(deps, NO_DELTAS, [update('late', 'words', { x: { v: 1 } })]);
    expect(late.publishes.words?.status).toBe('committed');
    await holder!.release();
    const { settle } = await import('../../../lambdas/core/protocol/publication.ts');
    await settle(deps, 'words');
    expect(await live(world, 'words')).toEqual(new Map());
    expect(rejected).toEqual(['late']);
  });
});

describe('one fold over a run and a stream batch', () => {
  it('a record the run upserts and a later stream message deletes is gone, and the build still validates', async () => {
    const world = memoryWorld();
    const deps = world.deps();
    await publish(deps, 'words', opsChange('seed', makeUpserts('s', 3, DIM)));
    // both committed before any build: the fold applies the run's group, then the messages' group
    await commit(deps, 'words', opsChange('run-x', makeUpserts('x', 2, DIM, 9)), new Tracker());
    const messages = [
      { messageId: 'del-x', needsRecords: false, ops: [{ op: 'delete' as const, id: 'x-00001' }] },
    ];
    await commit(deps, 'words', { kind: 'messages', label: 'stream-del-x', messages }, new Tracker());
    await settle(deps, 'words');
    const pointer = await deps.pointers.read('words');
    expect(pointer.publishedSeq).toBe(3);
    expect([...(await live(world, 'words')).keys()].sort()).toEqual([
      's-00000',
      's-00001',
      's-00002',
      'x-00000',
    ]);
  });
});
