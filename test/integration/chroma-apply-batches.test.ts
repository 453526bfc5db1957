import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyOps } from '../../lambdas/core/chroma/chroma-apply.ts';
import { type ChromaServer, startChroma } from '../../lambdas/core/chroma/chroma-server.ts';
import { openCollection } from '../../lambdas/core/chroma/snapshot-builder.ts';
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

it('splits batches by size: 48 records of 1 MiB documents (48 MiB in all) are all stored', async () => {
  const collection = await openCollection(server, 'large_documents');
  const stats = await applyOps(collection, upserts(48, 1024 * 1024), null);
  expect(stats.inserted).toBe(48);
  expect(await collection.count()).toBe(48);
  const stored = await collection.get({ ids: ['big-47'], include: ['documents'] });
  expect(stored.documents[0]).toHaveLength(1024 * 1024);
});
