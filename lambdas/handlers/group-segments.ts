import { groupSegments } from '../core/merging.ts';
import { runtime } from '../core/runtime.ts';
import { collectionState, parseEvent } from '../core/workflow-state.ts';

/** GroupSegments: groups of GROUP_SIZE for the next level of intermediate merges. */
export const handler = async (event: unknown) =>
  groupSegments(parseEvent(collectionState, event, 'GroupSegments'), runtime().config.groupSize);
