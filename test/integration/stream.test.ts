import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPublishedCollection } from '../../lambdas/core/chroma/published-snapshot.ts';
import { publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { publishDeps, type Runtime } from '../../lambdas/core/runtime.ts';
import { compactBatch, type StreamRecord } from '../../lambdas/core/stream/stream-compaction.ts';
import { startTestStack, type TestStack, uniqueCollection } from '../helpers/local-stack.ts';
import { makeUpserts, randomEmbedding, seededRandom, toJsonl } from '../helpers/records.ts';

const DIM = 8;
let stack: TestStack;
let rt: Runtime;

beforeAll(async () => {
  stack = await startTestStack();
  rt = stack.runtime({ MAX_CAS_RETRIES: '10', LOCK_WAIT_SECONDS: '60' });
});
afterAll(async () => {
  await stack?.stop();
});

/** An SQS record as the event source mapping delivers it. */
function sqs(messageId: string, body: object | string): StreamRecord {
  return { messageId, body: typeof body === 'string' ? body : JSON.stringify({ messageId, ...body }) };
}

function upsertMessage(id: string, collection: string, ids: string[], seed = 1): StreamRecord {
  const random = seededRandom(seed);
  return sqs(id, {
    collection,
    operation: 'upsert',
    records: ids.map((recordId) => ({ id: recordId, embedding: Array.from(randomEmbedding(random, DIM)) })),
  });
}

function snapshot(collection: string) {
  return withPublishedCollection(rt, collection, async ({ collection: opened }) => {
    const all = await opened.get({ include: ['metadatas'] });
    return new Map(all.ids.map((id, index) => [id, all.metadatas[index]]));
  });
}

describe('stream compaction', () => {
  it('publishes each collection once per batch and applies every operation', async () => {
    const words = uniqueCollection('words');
    await rt.objects.uploadStream(
      'input/stream/delta.jsonl',
      Buffer.from(toJsonl(makeUpserts('delta', 3, DIM, 5))),
    );
    const result = await compactBatch(rt, [
      upsertMessage('m1', words, ['a', 'b', 'c']),
      sqs('m2', { collection: words, operation: 'delete', ids: ['b'] }),
      sqs('m3', {
        collection: words,
        operation: 'updateMetadata',
        updates: [{ id: 'a', metadata: { label: 'total' } }],
      }),
      sqs('m4', { collection: words, operation: 'applyDelta', deltaKey: 'input/stream/delta.jsonl' }),
    ]);
    expect(result.failures).toEqual([]);
    expect(result.publishes[words]).toMatchObject({
      messages: 4,
      applied: 4,
      status: 'published',
      snapshotVersion: 1,
    });
    const content = await snapshot(words);
    expect([...content.keys()].sort()).toEqual(['a', 'c', 'delta-00000', 'delta-00001', 'delta-00002']);
    expect(content.get('a')).toEqual({ label: 'total' });
  });

  it('a redelivered batch applies once, and an old update redelivered never reverts a newer one', async () => {
    const lines = uniqueCollection('lines');
    const first = [
      upsertMessage('r1', lines, ['x']),
      sqs('r2', {
        collection: lines,
        operation: 'updateMetadata',
        updates: [{ id: 'x', metadata: { v: 1 } }],
      }),
    ];
    await compactBatch(rt, first);
    await compactBatch(rt, [
      sqs('r3', {
        collection: lines,
        operation: 'updateMetadata',
        updates: [{ id: 'x', metadata: { v: 2 } }],
      }),
    ]);
    const again = await compactBatch(rt, first);
    expect(again.batchItemFailures).toEqual([]);
    expect(again.publishes[lines]).toMatchObject({ status: 'already-applied' });
    expect((await snapshot(lines)).get('x')).toEqual({ v: 2 });
  });

  it('a poison message fails alone: the other messages of its collection apply; malformed messages fail with a reason', async () => {
    const good = uniqueCollection('words');
    const bad = uniqueCollection('lines');
    await publish(publishDeps(rt), bad, opsChange('seed', makeUpserts('seed', 2, DIM)));
    const result = await compactBatch(rt, [
      upsertMessage('g1', good, ['one']),
      sqs('b1', { collection: bad, operation: 'upsert', records: [{ id: 'wide', embedding: [1, 2, 3] }] }),
      upsertMessage('b2', bad, ['fine']),
      sqs('x1', '{"collection": '),
      sqs('x2', { collection: good, operation: 'rename' }),
      upsertMessage('g2', good, ['two'], 2),
    ]);
    expect(result.batchItemFailures.map((item) => item.itemIdentifier).sort()).toEqual(['b1', 'x1', 'x2']);
    expect(result.failures.find((failure) => failure.messageId === 'b1')?.reason).toMatch(
      /dimension 3.*dimension 8/,
    );
    expect(result.failures.find((failure) => failure.messageId === 'x1')?.reason).toMatch(/malformed JSON/);
    expect(result.failures.find((failure) => failure.messageId === 'x2')?.reason).toMatch(/operation/);
    expect(result.publishes[good]).toMatchObject({ applied: 2, status: 'published' });
    expect(result.publishes[bad]).toMatchObject({ messages: 2, applied: 1, status: 'published' });
    expect([...(await snapshot(good)).keys()].sort()).toEqual(['one', 'two']);
    expect([...(await snapshot(bad)).keys()].sort()).toEqual(['fine', 'seed-00000', 'seed-00001']);
  });

  it('updateMetadata on a missing id is reported, and retried later once the record exists', async () => {
    const words = uniqueCollection('words');
    const update = sqs('u1', {
      collection: words,
      operation: 'updateMetadata',
      updates: [{ id: 'later', metadata: { ok: true } }],
    });
    const first = await compactBatch(rt, [upsertMessage('u0', words, ['now']), update]);
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'u1' }]);
    expect(first.failures[0]?.reason).toBe(`updateMetadata: no record "later" in collection "${words}"`);
    await compactBatch(rt, [upsertMessage('u2', words, ['later'])]);
    const retried = await compactBatch(rt, [update]);
    expect(retried.batchItemFailures).toEqual([]);
    expect((await snapshot(words)).get('later')).toEqual({ ok: true });
  });

  it("updateMetadata keeps a documented record's document and vector; a new document keeps the vector", async () => {
    // Chroma embeds the documents of an update sent without embeddings: with no embedding function
    // that fails, so an update must never resend documents it does not change.
    const lines = uniqueCollection('lines');
    const vector = (seedValue: number) => Array.from(randomEmbedding(seededRandom(seedValue), DIM));
    const result = await compactBatch(rt, [
      sqs('d0', {
        collection: lines,
        operation: 'upsert',
        records: [
          { id: 'p', embedding: vector(11), document: 'TOTAL 12.00', metadata: { line: 1 } },
          { id: 'q', embedding: vector(12), document: 'CASH 20.00', metadata: { line: 2 } },
        ],
      }),
    ]);
    expect(result.failures).toEqual([]);
    const updated = await compactBatch(rt, [
      sqs('d1', {
        collection: lines,
        operation: 'updateMetadata',
        updates: [{ id: 'p', metadata: { label: 'total' } }],
      }),
      sqs('d2', {
        collection: lines,
        operation: 'updateMetadata',
        updates: [{ id: 'q', document: 'CHANGE 7.88' }],
      }),
    ]);
    expect(updated.failures).toEqual([]);

    await withPublishedCollection(rt, lines, async ({ collection: opened }) => {
      const all = await opened.get({
        ids: ['p', 'q'],
        include: ['documents', 'metadatas', 'embeddings'],
      });
      const byId = new Map(all.ids.map((id, index) => [id, index]));
      const at = (id: string) => byId.get(id)!;
      expect(all.documents[at('p')]).toBe('TOTAL 12.00');
      expect(all.metadatas[at('p')]).toEqual({ line: 1, label: 'total' });
      expect(all.documents[at('q')]).toBe('CHANGE 7.88');
      expect(all.metadatas[at('q')]).toEqual({ line: 2 });
      const distance = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
      expect(distance(Array.from(all.embeddings[at('p')]!), vector(11))).toBeLessThan(1e-6);
      expect(distance(Array.from(all.embeddings[at('q')]!), vector(12))).toBeLessThan(1e-6);
    });
  });

  it('a stream of updates interleaved with concurrent batch runs on the same collection loses nothing', async () => {
    const words = uniqueCollection('words');
    const stream = (async () => {
      for (let batch = 0; batch < 6; batch++) {
        const result = await compactBatch(rt, [
          upsertMessage(`s${batch}a`, words, [`stream-${batch}-a`], batch * 2 + 1),
          upsertMessage(`s${batch}b`, words, [`stream-${batch}-b`], batch * 2 + 2),
        ]);
        expect(result.batchItemFailures).toEqual([]);
      }
    })();
    const runs = Array.from({ length: 3 }, (_, index) =>
      publish(
        publishDeps(rt),
        words,
        opsChange(`batch-${index}`, makeUpserts(`batch${index}`, 20, DIM, 50 + index)),
      ),
    );
    await Promise.all([stream, ...runs]);
    const content = await snapshot(words);
    expect(content.size).toBe(6 * 2 + 3 * 20);
    expect((await rt.pointers.read(words)).publishedSeq).toBe(6 + 3); // every commit published, in fewer versions
  });
});
