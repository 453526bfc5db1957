import type { NewChange } from '../protocol/change-sets.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { foldOps, type RecordOp } from './records.ts';
import { commonDimension, openSegment, SEGMENT_HEADER_BYTES } from './segments.ts';

/**
 * A run's change made of its stored segments: committed by copying them (the change set is the
 * segments themselves, merged in order, later segments winning, when the change applies).
 */
export function segmentsChange(
  objects: ObjectStore,
  runId: string,
  segments: { key: string; records: number }[],
): NewChange {
  return {
    kind: 'segments',
    runId,
    label: runId,
    segments,
    async dimension() {
      const headers = await Promise.all(
        segments.map(async (segment) => {
          // Only the schema (a few hundred bytes) is read: streaming whole segments to learn their
          // dimension cost the local S3 their full size, beside the build's Chroma start.
          const body = await objects.getHead(segment.key, SEGMENT_HEADER_BYTES);
          const opened = await openSegment(body);
          (body as { destroy?: () => void }).destroy?.();
          return { key: segment.key, dimension: opened.dimension };
        }),
      );
      return commonDimension(headers);
    },
  };
}

/** Folds ops in arrival order into one op per id, sorted by id (the order segments and Chroma batches use). */
export function foldAndSort(ops: Iterable<RecordOp>): RecordOp[] {
  const byId = new Map<string, RecordOp>();
  for (const op of ops) byId.set(op.id, foldOps(byId.get(op.id), op));
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A change held in memory: rollbacks and tests. */
export function opsChange(runId: string, ops: Iterable<RecordOp>): NewChange {
  const sorted = foldAndSort(ops);
  const upsert = sorted.find((op) => op.op === 'upsert');
  return {
    kind: 'ops',
    runId,
    label: runId,
    open: async () => ({ dimension: upsert?.op === 'upsert' ? upsert.embedding.length : null, ops: sorted }),
  };
}
