import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PublishPhase, publish } from '../protocol/publish.ts';
import { segmentsChange } from '../records/changes.ts';
import { commonDimension, mergeSortedStreams, openSegment, writeSegmentFile } from '../records/segments.ts';
import { publishDeps, type Runtime } from '../runtime.ts';
import { segmentKey } from './run-layout.ts';
import type { CollectionState, CollectionSummary, MergeTask, SegmentRef } from './workflow-state.ts';

/** Splits the current segments into groups of GROUP_SIZE for the next level of intermediate merges. */
export function groupSegments(state: CollectionState, groupSize: number): CollectionState {
  const segments = state.segments ?? [];
  const groups: SegmentRef[][] = [];
  for (let start = 0; start < segments.length; start += groupSize)
    groups.push(segments.slice(start, start + groupSize));
  const merging = groups.length > 1;
  return {
    ...state,
    groups: merging ? groups : [],
    groupCount: groups.length,
    level: merging ? state.level + 1 : state.level,
    intermediateMerges: state.intermediateMerges + (merging ? groups.length : 0),
  };
}

/** One intermediate merge: a streaming k-way merge of up to GROUP_SIZE segments into one. */
export async function mergeGroup(rt: Runtime, task: MergeTask): Promise<SegmentRef> {
  const opened = await Promise.all(
    task.segments.map(async (segment) => openSegment(await rt.objects.getStream(segment.segmentKey))),
  );
  const dimension = commonDimension(
    opened.map((segment, index) => ({ key: task.segments[index]!.segmentKey, dimension: segment.dimension })),
  );
  const dir = await mkdtemp(join(tmpdir(), 'embedflow-merge-'));
  try {
    const file = join(dir, 'segment.arrow');
    const info = await writeSegmentFile(
      file,
      mergeSortedStreams(opened.map((segment) => segment.rows)),
      dimension,
    );
    const key = segmentKey(task.runId, task.collection, task.level, task.groupIndex);
    await rt.objects.uploadFile(key, file);
    return {
      segmentKey: key,
      records: info.records,
      inputRecords: task.segments.reduce((sum, segment) => sum + segment.inputRecords, 0),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Publishes the remaining segments (one: the short circuit, applied directly; several: merged on
 * the fly) with the two-phase protocol, and reports the collection's summary.
 */
export async function finalMerge(
  rt: Runtime,
  state: CollectionState,
  onPhase?: (phase: PublishPhase) => void,
): Promise<CollectionSummary> {
  const segments = state.segments ?? [];
  const change = segmentsChange(
    rt.objects,
    state.runId,
    segments.map((segment) => ({ key: segment.segmentKey, records: segment.records })),
  );
  const result = await publish(publishDeps(rt, { onPhase }), state.collection, change);
  return {
    collection: state.collection,
    deltas: state.deltas,
    records: segments.reduce((sum, segment) => sum + segment.inputRecords, 0),
    chunkSize: state.chunkSize,
    chunks: state.chunkCount,
    groupSize: rt.config.groupSize,
    intermediateMerges: state.intermediateMerges,
    shortCircuit: state.chunkCount === 1,
    previousVersion: result.previousVersion,
    snapshotVersion: result.snapshotVersion,
    recordCount: result.recordCount,
    lockHoldMs: result.lockHoldMs,
    lockAcquireMs: result.lockAcquireMs,
    casRetries: result.casRetries,
    commitMs: result.commitMs,
    waitMs: result.waitMs,
    logSeq: result.seq,
    alreadyApplied: result.status === 'already-applied',
    finalMergeMs: result.publishMs,
  };
}
