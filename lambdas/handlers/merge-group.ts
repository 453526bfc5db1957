import { recordMetrics } from '../core/observability/observability.ts';
import { runtime } from '../core/runtime.ts';
import { mergeGroup } from '../core/workflow/merging.ts';
import { mergeTask, parseEvent } from '../core/workflow/workflow-state.ts';

/** MergeGroup: merges up to GROUP_SIZE segments into one, streaming, without touching Chroma. */
export const handler = async (event: unknown) => {
  const task = parseEvent(mergeTask, event, 'MergeGroup');
  const segment = await mergeGroup(runtime(), task);
  recordMetrics({ SegmentsMerged: task.segments.length });
  return segment;
};
