import { processChunk } from '../core/chunking.ts';
import { runtime } from '../core/runtime.ts';
import { chunkTask, parseEvent } from '../core/workflow-state.ts';

/** ProcessChunk: one chunk of deltas in, one validated, deduplicated segment out. */
export const handler = async (event: unknown) =>
  processChunk(runtime(), parseEvent(chunkTask, event, 'ProcessChunk'));
