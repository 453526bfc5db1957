import { runtime } from '../core/runtime.ts';
import { groupSegments } from '../core/workflow/merging.ts';
import { collectionState, parseEvent } from '../core/workflow/workflow-state.ts';

/** GroupSegments: groups of GROUP_SIZE for the next level of intermediate merges. */
export const handler = async (event: unknown) =>
  groupSegments(parseEvent(collectionState, event, 'GroupSegments'), runtime().config.groupSize);
