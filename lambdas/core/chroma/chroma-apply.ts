import type { Collection } from 'chromadb';
import { BadInputError, SnapshotValidationError } from '../errors.ts';
import type { Metadata, RecordOp } from '../records/records.ts';

/**
 * Applies id-sorted record ops to a Chroma collection in batches, counting what actually changed
 * so the snapshot can be validated afterwards (count before + inserted - deleted = count after).
 */
export interface ApplyStats {
  inserted: number;
  replaced: number;
  deleted: number;
  updated: number;
  /** updates and deletes naming ids the snapshot does not have: reported, never silently dropped. */
  missingIds: string[];
  dimension: number | null;
  probe?: { id: string; embedding: number[] };
  /** Stream message ids this change applied (recorded in the pointer in the same swap). */
  appliedMessageIds?: string[];
}

export const CHROMA_BATCH = 1000;
/**
 * Request bytes per batch. The pinned Chroma refuses bodies past 40 MiB (413 Payload Too Large),
 * so a batch is also cut by size: a thousand records with 50 KB documents would not fit.
 */
export const CHROMA_BATCH_BYTES = 16 * 1024 * 1024;

/**
 * About what an op adds to a request body (JSON numbers of float32 values take up to ~25 bytes).
 * A document update is sent with the record's current embedding.
 */
function requestBytes(op: RecordOp, dimension: number | null): number {
  let bytes = Buffer.byteLength(op.id) + 16;
  if (op.op === 'delete') return bytes;
  if (op.op === 'upsert') bytes += op.embedding.length * 25;
  if (op.document !== undefined) {
    bytes += Buffer.byteLength(op.document) * 2; // JSON escapes
    if (op.op === 'update') bytes += (dimension ?? 0) * 25;
  }
  if (op.metadata !== undefined) bytes += Buffer.byteLength(JSON.stringify(op.metadata));
  return bytes;
}

export function emptyStats(dimension: number | null): ApplyStats {
  return { inserted: 0, replaced: 0, deleted: 0, updated: 0, missingIds: [], dimension };
}

export async function applyOps(
  collection: Collection,
  ops: AsyncIterable<RecordOp>,
  dimension: number | null,
  stats: ApplyStats = emptyStats(dimension),
): Promise<ApplyStats> {
  let batch: RecordOp[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length > 0) await applyBatch(collection, batch, stats);
    batch = [];
    batchBytes = 0;
  };
  for await (const op of ops) {
    if (op.op === 'upsert') {
      stats.dimension ??= op.embedding.length;
      if (op.embedding.length !== stats.dimension) {
        throw new BadInputError(
          `record "${op.id}" has dimension ${op.embedding.length}, but collection "${collection.name}" has dimension ${stats.dimension}`,
        );
      }
    }
    const bytes = requestBytes(op, stats.dimension);
    if (batchBytes + bytes > CHROMA_BATCH_BYTES) await flush();
    batch.push(op);
    batchBytes += bytes;
    if (batch.length >= CHROMA_BATCH) await flush();
  }
  await flush();
  return stats;
}

async function applyBatch(collection: Collection, batch: RecordOp[], stats: ApplyStats): Promise<void> {
  // Chroma embeds the documents of an update that carries no embeddings (and fails without an
  // embedding function), so a document change is sent with the record's current embedding.
  const changesDocument = batch.some((op) => op.op === 'update' && op.document !== undefined);
  const existing = await collection.get({
    ids: batch.map((op) => op.id),
    include: changesDocument ? ['metadatas', 'embeddings'] : ['metadatas'],
  });
  const current = new Map<string, { metadata: Metadata | null; embedding?: number[] }>();
  existing.ids.forEach((id, index) => {
    current.set(id, {
      metadata: (existing.metadatas[index] as Metadata | null) ?? null,
      ...(changesDocument && { embedding: existing.embeddings[index] as number[] }),
    });
  });

  const upserts = batch.filter((op) => op.op === 'upsert');
  // Chroma rejects null among documents: records with and without one go in separate calls.
  for (const part of partition(upserts, (op) => op.document !== undefined)) {
    const hasMetadata = part.some((op) => op.metadata && Object.keys(op.metadata).length > 0);
    await collection.upsert({
      ids: part.map((op) => op.id),
      embeddings: part.map((op) => Array.from(op.embedding)),
      ...(part[0]!.document !== undefined && { documents: part.map((op) => op.document!) }),
      ...(hasMetadata && { metadatas: part.map((op) => nonEmpty(op.metadata)) as Metadata[] }),
    });
  }
  for (const op of upserts) {
    if (current.has(op.id)) stats.replaced++;
    else stats.inserted++;
  }
  if (upserts.length > 0) {
    const last = upserts[upserts.length - 1]!;
    stats.probe = { id: last.id, embedding: Array.from(last.embedding) };
  }

  const deletes = batch.filter((op) => op.op === 'delete');
  const presentDeletes = deletes.filter((op) => current.has(op.id)).map((op) => op.id);
  if (presentDeletes.length > 0) await collection.delete({ ids: presentDeletes });
  stats.deleted += presentDeletes.length;
  // Deleting an id that is already gone is idempotent for batch runs, so it is not an error.

  const updates = batch.filter((op) => op.op === 'update');
  const presentUpdates = updates.filter((op) => current.has(op.id));
  for (const op of updates) if (!current.has(op.id)) stats.missingIds.push(op.id);
  const updated = presentUpdates.map((op) => ({
    id: op.id,
    metadata: nonEmpty({
      ...(current.get(op.id)?.metadata ?? {}),
      ...(op.op === 'update' ? op.metadata : {}),
    }),
    // Only a new document is sent: Chroma keeps the current one otherwise.
    document: op.op === 'update' ? op.document : undefined,
    embedding: current.get(op.id)?.embedding,
  }));
  for (const part of partition(updated, (update) => update.document !== undefined)) {
    const withDocuments = part[0]!.document !== undefined;
    await collection.update({
      ids: part.map((update) => update.id),
      metadatas: part.map((update) => update.metadata) as Metadata[],
      ...(withDocuments && {
        documents: part.map((update) => update.document!),
        embeddings: part.map((update) => update.embedding!),
      }),
    });
  }
  stats.updated += presentUpdates.length;
}

function partition<T>(items: T[], test: (item: T) => boolean): T[][] {
  return [items.filter(test), items.filter((item) => !test(item))].filter((part) => part.length > 0);
}

/** Chroma rejects an empty metadata object but accepts null ("no metadata"). */
function nonEmpty(metadata: Metadata | undefined): Metadata | null {
  return metadata && Object.keys(metadata).length > 0 ? metadata : null;
}

/**
 * The checks a snapshot must pass before it may be published: the exact expected count, and a
 * nearest-neighbour probe that finds the last written record at distance ~0.
 */
export async function validateCollection(
  collection: Collection,
  countBefore: number,
  stats: ApplyStats,
): Promise<number> {
  const count = await collection.count();
  const expected = countBefore + stats.inserted - stats.deleted;
  if (count !== expected) {
    throw new SnapshotValidationError(
      `collection "${collection.name}" holds ${count} records after the merge, expected ${expected} (${countBefore} + ${stats.inserted} new - ${stats.deleted} deleted)`,
    );
  }
  if (stats.probe) {
    const result = await collection.query({
      queryEmbeddings: [stats.probe.embedding],
      nResults: 1,
      include: ['distances'],
    });
    const distance = result.distances[0]?.[0];
    if (distance === undefined || distance === null || distance > 1e-3) {
      throw new SnapshotValidationError(
        `probe query for "${stats.probe.id}" in "${collection.name}" found ${result.ids[0]?.[0] ?? 'nothing'} at distance ${distance}`,
      );
    }
  }
  return count;
}
