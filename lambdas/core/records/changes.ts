import type { NewChange } from '../protocol/change-sets.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { foldOps, type RecordOp } from './records.ts';
import { commonDimension, mergeSortedStreams, openSegment } from './segments.ts';

/**
 * A run's change made of its stored segments, merged in order (later segments win) by a
 * streaming k-way pass into the one change set the run commits.
 */
export function segmentsChange(objects: ObjectStore, runId: string, segmentKeys: string[]): NewChange {
  return {
    kind: 'ops',
    runId,
    label: runId,
    async open() {
      const opened = await Promise.all(
        segmentKeys.map(async (key) => openSegment(await objects.getStream(key))),
      );
      const dimension = commonDimension(
        opened.map((segment, index) => ({ key: segmentKeys[index]!, dimension: segment.dimension })),
      );
      const ops =
        opened.length === 1 ? opened[0]!.rows : mergeSortedStreams(opened.map((segment) => segment.rows));
      return { dimension, ops };
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
