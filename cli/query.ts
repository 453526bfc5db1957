import { randomUUID } from 'node:crypto';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startChroma } from '../lambdas/core/chroma/chroma-server.ts';
import { openCollection } from '../lambdas/core/chroma/chroma-target.ts';
import { validateCollectionName } from '../lambdas/core/records/records.ts';
import type { Runtime } from '../lambdas/core/runtime.ts';
import { HashingEmbedder } from '../local/embedder.ts';
import { table, UsageError } from './output.ts';

export interface QueryOptions {
  collection: string;
  text?: string;
  vectorOf?: string;
  k: number;
}

/**
 * Nearest neighbours in the current snapshot: by text through the same local embedder the demo
 * uses, or by the stored vector of an id. Queries a private copy: cached versions stay immutable.
 */
export async function querySnapshot(rt: Runtime, options: QueryOptions) {
  if ((options.text === undefined) === (options.vectorOf === undefined)) {
    throw new UsageError('query needs exactly one of --text STR or --vector-of ID');
  }
  try {
    validateCollectionName(options.collection, '--collection');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const pointer = await rt.pointers.read(options.collection);
  if (!pointer.snapshotKey)
    throw new UsageError(`collection "${options.collection}" has no published snapshot`);
  const cached = await rt.snapshots.materialize(pointer.snapshotKey);
  const work = join(rt.workDir, `query-${randomUUID()}`);
  await cp(cached.path, work, { recursive: true });
  const server = await startChroma(work);
  try {
    const collection = await openCollection(server, options.collection);
    let embedding: number[];
    if (options.vectorOf !== undefined) {
      const found = await collection.get({ ids: [options.vectorOf], include: ['embeddings'] });
      if (found.ids.length === 0)
        throw new UsageError(`--vector-of: no record "${options.vectorOf}" in ${options.collection}`);
      embedding = Array.from(found.embeddings[0] as number[]);
    } else {
      embedding = Array.from(new HashingEmbedder(pointer.dimension ?? 384).embedOne(options.text!));
    }
    const result = await collection.query({
      queryEmbeddings: [embedding],
      nResults: options.k,
      include: ['distances', 'documents', 'metadatas'],
    });
    const results = (result.ids[0] ?? []).map((id, index) => ({
      id,
      distance: result.distances[0]?.[index] ?? null,
      document: result.documents[0]?.[index] ?? null,
      metadata: result.metadatas[0]?.[index] ?? null,
    }));
    const value = { collection: options.collection, version: pointer.version, results };
    const human = () =>
      table(
        ['ID', 'DISTANCE', 'DOCUMENT'],
        results.map((r) => [r.id, r.distance === null ? '' : r.distance.toFixed(4), r.document ?? '']),
      );
    return { value, human };
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}
