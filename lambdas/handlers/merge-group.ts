import { mergeGroup } from '../core/merging.ts';
import { recordMetrics } from '../core/observability.ts';
import { runtime } from '../core/runtime.ts';
import { mergeTask, parseEvent } from '../core/workflow-state.ts';

/** MergeGroup: merges up to GROUP_SIZE segments into one, streaming, without touching Chroma. */
export const handler = async (event: unknown) => {
  const task = parseEvent(mergeTask, event, 'MergeGroup');
  const segment = await mergeGroup(runtime(), task);
  recordMetrics({ SegmentsMerged: task.segments.length });
  return segment;
};
