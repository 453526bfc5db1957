import { runtime } from '../core/runtime.ts';
import { processChunk } from '../core/workflow/chunking.ts';
import { chunkTask, parseEvent } from '../core/workflow/workflow-state.ts';

/** ProcessChunk: one chunk of deltas in, one validated, deduplicated segment out. */
export const handler = async (event: unknown) =>
  processChunk(runtime(), parseEvent(chunkTask, event, 'ProcessChunk'));
