import { rm } from 'node:fs/promises';
import type { Collection, Where } from 'chromadb';
import { startChroma } from '../lambdas/core/chroma/chroma-server.ts';
import { openCollection } from '../lambdas/core/chroma/chroma-target.ts';
import type { Runtime } from '../lambdas/core/runtime.ts';
import { HashingEmbedder } from '../local/embedder.ts';
import { catalogOf } from './collections.ts';
import type { Rendered } from './command-action.ts';
import { checkCollectionName } from './names.ts';
import { table, UsageError } from './output.ts';
import type { QueryField } from './query-options.ts';
import { type QueryVector, readQueryVector } from './query-vector.ts';

export interface QueryOptions {
  collection: string;
  text?: string;
  vectorOf?: string;
  vector?: string;
  vectorFile?: string;
  /** Chroma's metadata filter, as JSON. */
  where?: string;
  include: QueryField[];
  k: number;
}

function parseWhere(text: string): Where {
  let where: unknown;
  try {
    where = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `--where must be JSON, like '{"merchant": "Corner Market"}' (${(error as Error).message})`,
    );
  }
  if (typeof where !== 'object' || where === null || Array.isArray(where)) {
    throw new UsageError(`--where must be a JSON object (Chroma's metadata filter), got ${text}`);
  }
  // Chroma checks the operators and values itself; its message reaches the user as a usage error.
  return where as Where;
}

/** The query vector for whichever of --text, --vector-of, --vector, --vector-file was given. */
async function queryEmbedding(
  options: QueryOptions,
  source: QueryVector | undefined,
  dimension: number,
  collection: Collection,
): Promise<number[]> {
  if (source) return source.values;
  if (options.vectorOf !== undefined) {
    const found = await collection.get({ ids: [options.vectorOf], include: ['embeddings'] });
    if (found.ids.length === 0)
      throw new UsageError(`--vector-of: no record "${options.vectorOf}" in ${options.collection}`);
    return Array.from(found.embeddings[0] as number[]);
  }
  return Array.from(new HashingEmbedder(dimension).embedOne(options.text!));
}

/**
 * Nearest neighbours in the current snapshot: by a vector given on the command line or in a file,
 * by the stored vector of an id, or by text through the demo's hashing embedder (only for a
 * collection that embedder built). Queries a private copy: cached versions stay immutable.
 */
export async function querySnapshot(rt: Runtime, options: QueryOptions): Promise<Rendered> {
  const given = [options.text, options.vectorOf, options.vector, options.vectorFile].filter(
    (v) => v !== undefined,
  );
  if (given.length !== 1) {
    throw new UsageError(
      'query needs exactly one of --text STR, --vector-of ID, --vector JSON or --vector-file F',
    );
  }
  checkCollectionName(options.collection);
  const where = options.where === undefined ? undefined : parseWhere(options.where);
  const source = await readQueryVector(options);
  const pointer = await rt.pointers.read(options.collection);
  if (!pointer.snapshotKey)
    throw new UsageError(`collection "${options.collection}" has no published snapshot`);
  const dimension = pointer.dimension ?? 0;
  if (source && source.values.length !== dimension) {
    throw new UsageError(
      `${source.flag} has ${source.values.length} values, but collection "${options.collection}" has dimension ${dimension}`,
    );
  }
  const embedder = await catalogOf(rt).embedderOf(options.collection);
  if (options.text !== undefined && embedder !== new HashingEmbedder().name) {
    throw new UsageError(
      `collection "${options.collection}" holds vectors from an ${embedder} embedder: --text would embed with the demo's hashing embedder, ` +
        `whose vectors mean nothing next to them. Query it with --vector '[…]' (${dimension} numbers), ` +
        '--vector-file F (a JSON array, or one JSONL record with an "embedding") or --vector-of ID',
    );
  }

  const { path: work } = await rt.snapshots.checkout(pointer, rt.workDir);
  const server = await startChroma(work);
  try {
    const collection = await openCollection(server, options.collection);
    const embedding = await queryEmbedding(options, source, dimension, collection);
    const result = await collection
      .query({
        queryEmbeddings: [embedding],
        nResults: options.k,
        ...(where && { where }),
        include: options.include,
      })
      .catch((error: unknown) => {
        // Chroma validates the filter: its message says what is wrong with it.
        if (where) throw new UsageError(`--where ${options.where}: ${(error as Error).message}`);
        throw error;
      });
    const wants = new Set(options.include);
    const results = (result.ids[0] ?? []).map((id, index) => ({
      id,
      ...(wants.has('distances') && { distance: result.distances[0]?.[index] ?? null }),
      ...(wants.has('documents') && { document: result.documents[0]?.[index] ?? null }),
      ...(wants.has('metadatas') && { metadata: result.metadatas[0]?.[index] ?? null }),
    }));
    const value = { collection: options.collection, version: pointer.version, embedder, results };
    const human = () =>
      table(
        [
          'ID',
          ...(wants.has('distances') ? ['DISTANCE'] : []),
          ...(wants.has('documents') ? ['DOCUMENT'] : []),
          ...(wants.has('metadatas') ? ['METADATA'] : []),
        ],
        results.map((r) => [
          r.id,
          ...(wants.has('distances') ? [r.distance == null ? '' : r.distance.toFixed(4)] : []),
          ...(wants.has('documents') ? [r.document ?? ''] : []),
          ...(wants.has('metadatas') ? [r.metadata ? JSON.stringify(r.metadata) : ''] : []),
        ]),
      );
    return { value, human };
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}
