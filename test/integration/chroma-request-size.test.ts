import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ChromaServer, startChroma } from '../../lambdas/core/chroma/chroma-server.ts';
import { chromaTarget, openCollection } from '../../lambdas/core/chroma/chroma-target.ts';
import { applyOps } from '../../lambdas/core/records/apply-ops.ts';
import type { RecordOp } from '../../lambdas/core/records/records.ts';

/**
 * Records under the documented maximum line length must be stored, however many share a batch:
 * the pinned Chroma refuses a request body past 40 MiB with "413 Payload Too Large".
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
  const stats = await applyOps(chromaTarget(collection), upserts(48, 1024 * 1024), null);
  expect(stats.inserted).toBe(48);
  expect(await collection.count()).toBe(48);
  const stored = await collection.get({ ids: ['big-47'], include: ['documents'] });
  expect(stored.documents[0]).toHaveLength(1024 * 1024);
});

it('splits document updates by size too (each is sent with the record current embedding)', async () => {
  const collection = await openCollection(server, 'large_updates');
  await applyOps(chromaTarget(collection), upserts(48, 10), null);
  async function* updates(): AsyncGenerator<RecordOp> {
    for (let i = 0; i < 48; i++) yield { op: 'update', id: `big-${i}`, document: 'u'.repeat(1024 * 1024) };
  }
  const stats = await applyOps(chromaTarget(collection), updates(), 3);
  expect(stats.updated).toBe(48);
  const stored = await collection.get({ ids: ['big-47'], include: ['documents'] });
  expect(stored.documents[0]).toHaveLength(1024 * 1024);
});
