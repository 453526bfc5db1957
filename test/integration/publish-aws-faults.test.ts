import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPublishedCollection } from '../../lambdas/core/chroma/published-snapshot.ts';
import { lockId } from '../../lambdas/core/protocol/lock.ts';
import { type PublishResult, publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { publishDeps, type Runtime } from '../../lambdas/core/runtime.ts';
import { compactBatch, type StreamRecord } from '../../lambdas/core/stream/stream-compaction.ts';
import { type FaultProxy, loseConditionalWrites, startFaultProxy } from '../helpers/dynamo-fault-proxy.ts';
import { startTestStack, storedSnapshots, type TestStack, uniqueCollection } from '../helpers/local-stack.ts';
import { makeUpserts } from '../helpers/records.ts';

/**
 * The publish protocol against the real local DynamoDB and S3 API, with the failures AWS really
 * produces put in by a proxy: conditional writes applied but answered with a 500 (the SDK retries
 * them and the retry fails its own condition), heartbeats that keep failing, a lock item removed
 * by TTL. Each test here failed on the protocol before it decided outcomes by stored state.
 */
const DIM = 8;
/** What the workflow's Retry blocks retry (statemachines/embedding-merge.asl.json, FinalMerge). */
const RETRYABLE = new Set([
  'LockBusyError',
  'CasConflictError',
  'LeaseLostError',
  'StoreUnavailableError',
  'StorageError',
  'InternalServerError',
  'ProvisionedThroughputExceededException',
]);
let stack: TestStack;
let proxy: FaultProxy;

beforeAll(async () => {
  stack = await startTestStack();
  proxy = await startFaultProxy(stack.services.env.AWS_ENDPOINT_URL_DYNAMODB!);
});
afterAll(async () => {
  await proxy?.close();
  await stack?.stop();
});

/** Runs a publish again with the same run id while it fails with a retryable error, as the workflow does. */
async function withRetries(run: () => Promise<PublishResult>): Promise<PublishResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!RETRYABLE.has((error as Error).name) || attempt >= 5) throw error;
    }
  }
}

async function liveIds(rt: Runtime, collection: string): Promise<string[]> {
  return withPublishedCollection(rt, collection, async ({ collection: opened }) =>
    (await opened.get({ include: [] })).ids.sort(),
  );
}

const sqs = (messageId: string, body: object): StreamRecord => ({
  messageId: `sqs-${messageId}-${Math.random().toString(36).slice(2, 6)}`,
  body: JSON.stringify({ messageId, ...body }),
});
const vector = (seed: number) =>
  Array.from({ length: DIM }, (_, index) => ((seed * 7 + index * 3) % 11) - 5 || 1);

describe('lost responses (item 1)', () => {
  it('8 runs against a DynamoDB that loses 30% of conditional-write responses all land; the collection stays usable', async () => {
    proxy.decide = loseConditionalWrites(0.3, 11);
    const rt = stack.runtime({ AWS_ENDPOINT_URL_DYNAMODB: proxy.url, MAX_CAS_RETRIES: '5' });
    const collection = uniqueCollection('words');
    const expected: string[] = [];
    for (let run = 0; run < 8; run++) {
      const ops = makeUpserts(`r${run}`, 3, DIM, run + 1);
      expected.push(...ops.map((op) => op.id));
      const result = await withRetries(() =>
        publish(publishDeps(rt), collection, opsChange(`run-${run}`, ops)),
      );
      expect(['published', 'already-applied']).toContain(result.status);
    }
    expect(proxy.decisions['lose-response']).toBeGreaterThan(3);
    proxy.decide = () => 'forward';
    const later = await publish(
      publishDeps(rt),
      collection,
      opsChange('later', makeUpserts('later', 1, DIM)),
    );
    expect(later).toMatchObject({ status: 'published', snapshotVersion: 9 });
    expect(await liveIds(rt, collection)).toEqual([...expected, 'later-00000'].sort());
    const pointer = await rt.pointers.read(collection);
    const keys = new Set(await storedSnapshots(rt, collection));
    for (const entry of pointer.history) expect(keys.has(entry.key), entry.key).toBe(true);
  });

  it('an acquire whose response was lost holds the lock: no wait behind itself, no phantom lease', async () => {
    const collection = uniqueCollection('lines');
    let armed = true;
    proxy.decide = (request) => {
      if (!armed || request.key !== lockId(collection) || !request.conditional) return 'forward';
      armed = false;
      return 'lose-response';
    };
    const rt = stack.runtime({ AWS_ENDPOINT_URL_DYNAMODB: proxy.url, LOCK_WAIT_SECONDS: '1' });
    const held = await rt.lock.acquire(collection);
    expect(held.collisions).toBe(0);
    await held.release();
    proxy.decide = () => 'forward';
    expect((await rt.lock.list()).find((lock) => lock.collection === collection)).toBeUndefined();
  });
});

describe('TTL (item 2)', () => {
  it('a lock item that DynamoDB removed by TTL weakens and blocks nothing', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('one', makeUpserts('a', 2, DIM)));
    await publish(publishDeps(rt), collection, opsChange('two', makeUpserts('b', 2, DIM)));
    await rt.aws.dynamo.send(new DeleteCommand({ TableName: rt.aws.table, Key: { pk: lockId(collection) } }));
    const third = await publish(publishDeps(rt), collection, opsChange('three', makeUpserts('c', 2, DIM)));
    expect(third).toMatchObject({ status: 'published', snapshotVersion: 3, casRetries: 0 });
  });
});

describe('stream batches that applied nothing (item 3)', () => {
  it('a failed updateMetadata redelivered after its record exists applies', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    const update = sqs('u1', {
      collection,
      operation: 'updateMetadata',
      updates: [{ id: 'later', metadata: { ok: 1 } }],
    });
    const first = await compactBatch(rt, [update]);
    expect(first.batchItemFailures).toHaveLength(1);
    expect((await rt.pointers.read(collection)).version).toBe(0);
    await compactBatch(rt, [
      sqs('u2', { collection, operation: 'upsert', records: [{ id: 'later', embedding: vector(1) }] }),
    ]);
    const again = await compactBatch(rt, [update]);
    expect(again.batchItemFailures).toEqual([]);
    const metadata = await withPublishedCollection(
      rt,
      collection,
      async ({ collection: opened }) =>
        (await opened.get({ ids: ['later'], include: ['metadatas'] })).metadatas[0],
    );
    expect(metadata).toEqual({ ok: 1 });
  });
});

describe('heartbeats (item 4)', () => {
  it('a holder whose heartbeats keep failing knows its lease ran out', async () => {
    const collection = uniqueCollection('words');
    const rt = stack.runtime({
      AWS_ENDPOINT_URL_DYNAMODB: proxy.url,
      LOCK_DURATION_SECONDS: '3',
      HEARTBEAT_INTERVAL_SECONDS: '1',
    });
    proxy.decide = () => 'forward';
    const held = await rt.lock.acquire(collection);
    proxy.decide = (request) =>
      request.key === lockId(collection) && request.operation !== 'GetItem' ? 'fail' : 'forward';
    await new Promise((resolve) => setTimeout(resolve, 2600)); // past the lease minus its margin
    expect(() => held.assertHeld()).toThrow(/ran out/);
    proxy.decide = () => 'forward';
    await held.release();
  });
});

describe('retention (item 5)', () => {
  it('superseded versions outlive the count for SNAPSHOT_RETENTION_MINUTES, for readers in flight', async () => {
    const rt = stack.runtime({ SNAPSHOT_RETENTION: '2' });
    const collection = uniqueCollection('lines');
    const keys: string[] = [];
    for (let run = 0; run < 5; run++) {
      const result = await publish(
        publishDeps(rt),
        collection,
        opsChange(`v${run}`, makeUpserts(`v${run}`, 1, DIM)),
      );
      keys.push(result.snapshotKey!);
    }
    const stored = new Set(await storedSnapshots(rt, collection));
    for (const key of keys) expect(stored.has(key), key).toBe(true);
    // with no floor, only the last two remain after the next publish
    const noFloor = stack.runtime({ SNAPSHOT_RETENTION: '2', SNAPSHOT_RETENTION_MINUTES: '0' });
    const last = await publish(publishDeps(noFloor), collection, opsChange('v5', makeUpserts('v5', 1, DIM)));
    expect(await storedSnapshots(noFloor, collection)).toEqual([keys[4], last.snapshotKey].sort());
  });
});

describe('stream semantics (item 7)', () => {
  const upsert = (messageId: string, collection: string, id: string, seed: number) =>
    sqs(messageId, { collection, operation: 'upsert', records: [{ id, embedding: vector(seed) }] });

  it('a batch whose first message id equals a recorded run id is applied', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('stream-q1', makeUpserts('seed', 1, DIM)));
    const result = await compactBatch(rt, [upsert('q1', collection, 'x', 1)]);
    expect(result.publishes[collection]).toMatchObject({ status: 'published', applied: 1 });
    expect(await liveIds(rt, collection)).toContain('x');
  });

  it('the same message id in two collections of one batch applies in both', async () => {
    const rt = stack.runtime();
    const words = uniqueCollection('words');
    const lines = uniqueCollection('lines');
    await compactBatch(rt, [upsert('same', words, 'w', 1), upsert('same', lines, 'l', 2)]);
    expect(await liveIds(rt, words)).toEqual(['w']);
    expect(await liveIds(rt, lines)).toEqual(['l']);
  });

  it('delete then updateMetadata of one id in a batch leaves it deleted', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    await compactBatch(rt, [upsert('a', collection, 'x', 1), upsert('b', collection, 'y', 2)]);
    const result = await compactBatch(rt, [
      sqs('d', { collection, operation: 'delete', ids: ['x'] }),
      sqs('u', { collection, operation: 'updateMetadata', updates: [{ id: 'x', metadata: { back: true } }] }),
    ]);
    expect(result.failures.map((failure) => failure.messageId)).toEqual(['u']);
    expect(await liveIds(rt, collection)).toEqual(['y']);
  });

  it('an updateMetadata naming an existing and a missing id changes nothing', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    await compactBatch(rt, [upsert('a', collection, 'have', 1)]);
    const result = await compactBatch(rt, [
      sqs('u', {
        collection,
        operation: 'updateMetadata',
        updates: [
          { id: 'have', metadata: { v: 1 } },
          { id: 'missing', metadata: { v: 1 } },
        ],
      }),
    ]);
    const metadata = await withPublishedCollection(
      rt,
      collection,
      async ({ collection: opened }) =>
        (await opened.get({ ids: ['have'], include: ['metadatas'] })).metadatas[0],
    );
    expect(metadata ?? null).toBeNull();
    expect(result.failures).toHaveLength(1);
  });
});
