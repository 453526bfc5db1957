import type { Change } from '../protocol/ports.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { type ApplyStats, applyOps } from './apply-ops.ts';
import { foldOps, type RecordOp } from './records.ts';
import { commonDimension, mergeSortedStreams, openSegment } from './segments.ts';

/**
 * A change made of stored segments, applied in order (later segments win). One segment is
 * streamed straight into Chroma: the single-chunk short circuit needs no merge at all.
 */
export function segmentsChange(objects: ObjectStore, runId: string, segmentKeys: string[]): Change {
  return {
    runId,
    label: runId,
    async apply(target, dimension): Promise<ApplyStats> {
      const opened = await Promise.all(
        segmentKeys.map(async (key) => openSegment(await objects.getStream(key))),
      );
      commonDimension(
        opened.map((segment, index) => ({ key: segmentKeys[index]!, dimension: segment.dimension })),
      );
      const rows =
        opened.length === 1 ? opened[0]!.rows : mergeSortedStreams(opened.map((segment) => segment.rows));
      return applyOps(target, rows, dimension);
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
export function opsChange(runId: string, ops: Iterable<RecordOp>): Change {
  const sorted = foldAndSort(ops);
  return { runId, label: runId, apply: (target, dimension) => applyOps(target, sorted, dimension) };
}
