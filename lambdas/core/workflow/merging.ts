import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PublishPhase, type PublishResult, publish } from '../protocol/publish.ts';
import { segmentsChange } from '../records/changes.ts';
import { commonDimension, mergeSortedStreams, openSegment, writeSegmentFile } from '../records/segments.ts';
import { publishDeps, type Runtime } from '../runtime.ts';
import { uploadSegment } from '../storage/segment-objects.ts';
import { segmentKey } from './run-layout.ts';
import type { CollectionState, CollectionSummary, MergeTask, SegmentCounts } from './workflow-state.ts';

/**
 * Splits the current segments into groups of GROUP_SIZE for the next level of intermediate merges.
 * The segments travel once: as `groups` when they are to be merged, else as `segments`.
 */
export function groupSegments(state: CollectionState, groupSize: number): CollectionState {
  const { segments = [], groups: _, ...rest } = state;
  const groups: SegmentCounts[][] = [];
  for (let start = 0; start < segments.length; start += groupSize)
    groups.push(segments.slice(start, start + groupSize));
  if (groups.length <= 1) return { ...rest, segments, groupCount: groups.length, groupSize };
  return {
    ...rest,
    groups,
    groupCount: groups.length,
    groupSize,
    level: state.level + 1,
    intermediateMerges: state.intermediateMerges + groups.length,
  };
}

/** The keys of a collection state's current segments. */
export function currentSegmentKeys(state: CollectionState): string[] {
  return (state.segments ?? []).map((_, index) =>
    segmentKey(state.runId, state.collection, state.level, index),
  );
}

/** One intermediate merge: a streaming k-way merge of up to GROUP_SIZE segments into one. */
export async function mergeGroup(rt: Runtime, task: MergeTask): Promise<SegmentCounts> {
  const first = task.groupIndex * task.groupSize;
  const keys = task.segments.map((_, offset) =>
    segmentKey(task.runId, task.collection, task.level - 1, first + offset),
  );
  const opened = await Promise.all(keys.map(async (key) => openSegment(await rt.objects.getStream(key))));
  const dimension = commonDimension(
    opened.map((segment, index) => ({ key: keys[index]!, dimension: segment.dimension })),
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
    await uploadSegment(rt.objects, key, file, info.presence);
    return {
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
  const keys = currentSegmentKeys(state);
  const change = segmentsChange(
    rt.objects,
    state.runId,
    (state.segments ?? []).map((segment, index) => ({ key: keys[index]!, records: segment.records })),
  );
  const result = await publish(publishDeps(rt, { onPhase }), state.collection, change);
  return collectionSummary(state, rt.config.groupSize, result);
}

/** What one collection reports of its publish (CONTRACT.md `run --json`). */
export function collectionSummary(
  state: CollectionState,
  groupSize: number,
  result: Pick<
    PublishResult,
    | 'status'
    | 'previousVersion'
    | 'snapshotVersion'
    | 'recordCount'
    | 'lockHoldMs'
    | 'lockAcquireMs'
    | 'casRetries'
    | 'swapReplays'
    | 'publishMs'
    | 'commitMs'
    | 'waitMs'
    | 'seq'
  >,
): CollectionSummary {
  return {
    collection: state.collection,
    status: result.status,
    deltas: state.deltas,
    records: (state.segments ?? []).reduce((sum, segment) => sum + segment.inputRecords, 0),
    chunkSize: state.chunkSize,
    chunks: state.chunkCount,
    groupSize,
    intermediateMerges: state.intermediateMerges,
    shortCircuit: state.chunkCount === 1,
    previousVersion: result.previousVersion,
    snapshotVersion: result.snapshotVersion,
    recordCount: result.recordCount,
    lockHoldMs: result.lockHoldMs,
    lockAcquireMs: result.lockAcquireMs,
    casRetries: result.casRetries,
    swapReplays: result.swapReplays,
    commitMs: result.commitMs,
    waitMs: result.waitMs,
    logSeq: result.seq,
    alreadyApplied: result.status === 'already-applied',
    finalMergeMs: result.publishMs,
  };
}
