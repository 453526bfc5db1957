import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ChromaServer, startChroma } from '../../lambdas/core/chroma/chroma-server.ts';
import { chromaTarget, openCollection } from '../../lambdas/core/chroma/chroma-target.ts';
import { applyOps } from '../../lambdas/core/records/apply-ops.ts';
import type { UpsertRow } from '../../lambdas/core/records/record-target.ts';
import type { RecordOp } from '../../lambdas/core/records/records.ts';

/**
 * Chroma as a record target (chroma/chroma-target.ts), against the pinned server. Records under the
 * documented maximum line length must be stored, however many share a batch: the server refuses a
 * request body past 40 MiB with "413 Payload Too Large". Upserts bypass the stock client's packing,
 * so what they store is compared with what the stock client stores.
 */
let dir: string;
let server: ChromaServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'embedflow-apply-'));
  server = await startChroma(dir);
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function* upserts(count: number, documentBytes: number): AsyncGenerator<RecordOp> {
  for (let i = 0; i < count; i++) {
    yield {
      op: 'upsert',
      id: `big-${i}`,
      embedding: Float32Array.from([1, i + 1, 0.5]),
      document: String(i % 10).repeat(documentBytes),
    };
  }
}

it('splits upserts by size: 48 records of 1 MiB documents (48 MiB in all) are all stored', async () => {
  const collection = await openCollection(server, 'large_documents');
  const stats = await applyOps(chromaTarget(collection, server), upserts(48, 1024 * 1024), null);
  expect(stats.inserted).toBe(48);
  expect(await collection.count()).toBe(48);
  const stored = await collection.get({ ids: ['big-47'], include: ['documents'] });
  expect(stored.documents[0]).toHaveLength(1024 * 1024);
});

it('splits document updates by size too (each is sent with the record current embedding)', async () => {
  const collection = await openCollection(server, 'large_updates');
  await applyOps(chromaTarget(collection, server), upserts(48, 10), null);
  async function* updates(): AsyncGenerator<RecordOp> {
    for (let i = 0; i < 48; i++) yield { op: 'update', id: `big-${i}`, document: 'u'.repeat(1024 * 1024) };
  }
  const stats = await applyOps(chromaTarget(collection, server), updates(), 3);
  expect(stats.updated).toBe(48);
  const stored = await collection.get({ ids: ['big-47'], include: ['documents'] });
  expect(stored.documents[0]).toHaveLength(1024 * 1024);
});

it('stores the same embeddings, documents and metadata as the stock client upsert does', async () => {
  const collection = await openCollection(server, 'same_values');
  const embedding = Float32Array.from([0.1, -2.5e-8, 3.4e4, 1 / 3, -7]);
  const rows: UpsertRow[] = [
    { id: 'ours-a', embedding, document: 'first', metadata: { page: 3, kind: 'word', ok: true } },
    { id: 'ours-b', embedding: embedding.map((value) => -value), document: 'second', metadata: { page: 4 } },
  ];
  await chromaTarget(collection, server).upsert(rows);
  await collection.upsert({
    ids: rows.map((row) => row.id.replace('ours', 'stock')),
    embeddings: rows.map((row) => Array.from(row.embedding)),
    documents: rows.map((row) => row.document!),
    metadatas: rows.map((row) => row.metadata!),
  });
  const stored = await collection.get({ include: ['embeddings', 'documents', 'metadatas'] });
  const read = (id: string) => {
    const index = stored.ids.indexOf(id);
    return {
      embedding: stored.embeddings[index],
      document: stored.documents[index],
      metadata: stored.metadatas[index],
    };
  };
  for (const suffix of ['a', 'b']) {
    expect(read(`ours-${suffix}`)).toEqual(read(`stock-${suffix}`));
    expect(read(`ours-${suffix}`).embedding).toHaveLength(5);
  }
  expect(read('ours-a').metadata).toEqual({ page: 3, kind: 'word', ok: true });
});

it('names the collection, the request and the status when Chroma refuses a write', async () => {
  const collection = await openCollection(server, 'dropped_meanwhile');
  await server.client.deleteCollection({ name: 'dropped_meanwhile' });
  await expect(
    chromaTarget(collection, server).upsert([{ id: 'x', embedding: Float32Array.from([1, 2, 3]) }]),
  ).rejects.toThrow(/Chroma refused an upsert of 1 records into "dropped_meanwhile": 4\d\d/);
  await expect(
    chromaTarget(collection, server).insert([{ id: 'x', embedding: Float32Array.from([1, 2, 3]) }]),
  ).rejects.toThrow(/Chroma refused an add of 1 records into "dropped_meanwhile": 4\d\d/);
});

it('adds the new ids of a batch and upserts the ones it holds, both stored whole', async () => {
  const collection = await openCollection(server, 'mixed_batch');
  const target = chromaTarget(collection, server);
  await target.insert([
    { id: 'a', embedding: Float32Array.from([1, 0, 0]), document: 'old', metadata: { v: 1 } },
  ]);
  const stats = await applyOps(
    target,
    [
      { op: 'upsert', id: 'a', embedding: Float32Array.from([0, 1, 0]), document: 'new', metadata: { v: 2 } },
      { op: 'upsert', id: 'b', embedding: Float32Array.from([0, 0, 1]), document: 'b', metadata: { v: 3 } },
    ],
    3,
  );
  expect(stats).toMatchObject({ inserted: 1, replaced: 1 });
  const stored = await collection.get({ ids: ['a', 'b'], include: ['documents', 'metadatas', 'embeddings'] });
  const byId = new Map(stored.ids.map((id, index) => [id, index]));
  expect(stored.documents[byId.get('a')!]).toBe('new');
  expect(stored.metadatas[byId.get('a')!]).toEqual({ v: 2 });
  expect(Array.from(stored.embeddings[byId.get('b')!] as number[])).toEqual([0, 0, 1]);
  expect(await collection.count()).toBe(2);
});

it('Chroma skips an add of an id it holds without an error: why only ids the lookup missed are added', async () => {
  // The build's count check (before + added = after) is what would catch a wrongly added id.
  const collection = await openCollection(server, 'add_held');
  const target = chromaTarget(collection, server);
  await target.insert([{ id: 'a', embedding: Float32Array.from([1, 0, 0]), document: 'one' }]);
  await target.insert([{ id: 'a', embedding: Float32Array.from([0, 1, 0]), document: 'two' }]);
  expect(await collection.count()).toBe(1);
  expect((await collection.get({ ids: ['a'], include: ['documents'] })).documents).toEqual(['one']);
});
