import { logger, type ProgressReporter, recordMetrics } from '../core/observability/observability.ts';
import { runtime } from '../core/runtime.ts';
import { finalMerge } from '../core/workflow/merging.ts';
import { collectionState, parseEvent } from '../core/workflow/workflow-state.ts';

/**
 * FinalMerge: publishes the run's segments into the live snapshot with the two-phase protocol.
 * Each publish phase is logged, and reported to `progress` when a watcher gives one (the local CLI).
 */
export const finalMergeHandler = (progress?: ProgressReporter) => async (event: unknown) => {
  const state = parseEvent(collectionState, event, 'FinalMerge');
  const summary = await finalMerge(runtime(), state, (phase) => {
    logger.info('publish phase', { collection: state.collection, phase });
    progress?.publishPhase(state.collection, phase);
  });
  recordMetrics({
    LockAcquireMs: summary.lockAcquireMs,
    LockHoldMs: summary.lockHoldMs,
    FinalMergeMs: summary.finalMergeMs,
    SegmentsMerged: state.segments?.length ?? 0,
    // Lost log sequence numbers are normal and cheap; a lost pointer swap is what the alarm watches.
    LogAppendConflicts: summary.casRetries,
    CasConflicts: summary.swapReplays,
    RecordsPublished: summary.recordCount,
  });
  return summary;
};

export const handler = finalMergeHandler();
