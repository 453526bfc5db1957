import { BadInputError, SnapshotValidationError } from '../errors.ts';
import type { RecordTarget, StoredRecord } from './record-target.ts';
import type { Metadata, RecordOp } from './records.ts';

/**
 * Applies id-sorted record ops to a collection in batches, counting what actually changed so the
 * result can be validated afterwards (count before + inserted - deleted = count after).
 */
export interface ApplyStats {
  inserted: number;
  replaced: number;
  deleted: number;
  updated: number;
  /** updates naming ids the collection does not have: reported, never silently dropped. */
  missingIds: string[];
  dimension: number | null;
  probe?: { id: string; embedding: Float32Array };
  /** Stream message ids this change applied (recorded in the pointer in the same swap). */
  appliedMessageIds?: string[];
  /** Stream messages that could not apply, each whole: they are not recorded and come back. */
  failedMessages?: { messageId: string; reason: string }[];
}

/**
 * Records per Chroma request (cut further by size, chroma/request-size.ts: at 1536-d about 1,300
 * fit in 16 MiB). 2,000 rather than 1,000: a fold of four 500-record runs goes in one request, and
 * the median 4-run build of the contention bench took 2.10 s against 2.33 s.
 */
export const APPLY_BATCH = 2000;

export function emptyStats(dimension: number | null): ApplyStats {
  return { inserted: 0, replaced: 0, deleted: 0, updated: 0, missingIds: [], dimension };
}

/** Whether applying changed anything at all: a change that changed nothing publishes no version. */
export function changedAnything(stats: ApplyStats): boolean {
  return stats.inserted + stats.replaced + stats.deleted + stats.updated > 0;
}

export async function applyOps(
  target: RecordTarget,
  ops: AsyncIterable<RecordOp> | Iterable<RecordOp>,
  dimension: number | null,
  stats: ApplyStats = emptyStats(dimension),
  /** Called after each batch with the number of ops it applied. */
  onApplied?: (ops: number) => void,
  /** The target holds none of these ids (it is empty and the ids are unique): no need to look them up. */
  knownAbsent = false,
): Promise<ApplyStats> {
  let batch: RecordOp[] = [];
  for await (const op of ops) {
    if (op.op === 'upsert') {
      stats.dimension ??= op.embedding.length;
      if (op.embedding.length !== stats.dimension) {
        throw new BadInputError(
          `record "${op.id}" has dimension ${op.embedding.length}, but collection "${target.name}" has dimension ${stats.dimension}`,
        );
      }
    }
    batch.push(op);
    if (batch.length >= APPLY_BATCH) {
      await applyBatch(target, batch, stats, knownAbsent);
      onApplied?.(batch.length);
      batch = [];
    }
  }
  if (batch.length > 0) {
    await applyBatch(target, batch, stats, knownAbsent);
    onApplied?.(batch.length);
  }
  return stats;
}

async function applyBatch(
  target: RecordTarget,
  batch: RecordOp[],
  stats: ApplyStats,
  knownAbsent: boolean,
): Promise<void> {
  const current = knownAbsent ? new Map<string, StoredRecord>() : await target.get(batch.map((op) => op.id));

  const upserts = batch.filter((op) => op.op === 'upsert');
  const row = (op: (typeof upserts)[number]) => ({
    id: op.id,
    embedding: op.embedding,
    ...(op.document !== undefined && { document: op.document }),
    metadata: nonEmpty(op.metadata),
  });
  // A batch holds each id once, so what the lookup did not find is new: added, not upserted.
  const fresh = upserts.filter((op) => !current.has(op.id));
  const replacing = upserts.filter((op) => current.has(op.id));
  if (fresh.length > 0) await target.insert(fresh.map(row));
  if (replacing.length > 0) await target.upsert(replacing.map(row));
  if (upserts.length > 0) {
    const last = upserts[upserts.length - 1]!;
    stats.probe = { id: last.id, embedding: last.embedding };
  }
  stats.inserted += fresh.length;
  stats.replaced += replacing.length;

  // Deleting an id that is already gone is idempotent, so it is not an error.
  const presentDeletes = batch.filter((op) => op.op === 'delete' && current.has(op.id)).map((op) => op.id);
  if (presentDeletes.length > 0) await target.delete(presentDeletes);
  stats.deleted += presentDeletes.length;
  // A later group of the same fold may delete what an earlier one wrote last: that is no probe.
  if (stats.probe && presentDeletes.includes(stats.probe.id)) delete stats.probe;

  const updates = batch.filter((op) => op.op === 'update');
  for (const op of updates) if (!current.has(op.id)) stats.missingIds.push(op.id);
  const present = updates.filter((op) => current.has(op.id));
  if (present.length > 0) {
    await target.update(
      present.map((op) => ({
        id: op.id,
        metadata: nonEmpty({ ...(current.get(op.id)?.metadata ?? {}), ...op.metadata }),
        ...(op.document !== undefined && { document: op.document }),
      })),
    );
  }
  stats.updated += present.length;
}

/** Chroma rejects an empty metadata object but accepts null ("no metadata"). */
function nonEmpty(metadata: Metadata | undefined): Metadata | null {
  return metadata && Object.keys(metadata).length > 0 ? metadata : null;
}

/**
 * The checks a built collection must pass before it may be published: the exact expected count,
 * and a nearest-neighbour probe that finds the last written record at distance ~0.
 */
export async function validateApplied(
  target: RecordTarget,
  countBefore: number,
  stats: ApplyStats,
): Promise<number> {
  const count = await target.count();
  const expected = countBefore + stats.inserted - stats.deleted;
  if (count !== expected) {
    throw new SnapshotValidationError(
      `collection "${target.name}" holds ${count} records after the merge, expected ${expected} (${countBefore} + ${stats.inserted} new - ${stats.deleted} deleted)`,
    );
  }
  if (stats.probe) {
    const found = await target.nearest(stats.probe.embedding);
    if (!found || found.distance > 1e-3) {
      throw new SnapshotValidationError(
        `probe query for "${stats.probe.id}" in "${target.name}" found ${found?.id ?? 'nothing'} at distance ${found?.distance}`,
      );
    }
  }
  return count;
}
