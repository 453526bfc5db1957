import { z } from 'zod';
import { recordMetrics } from '../core/observability/observability.ts';
import { runtime } from '../core/runtime.ts';
import { splitIntoChunks } from '../core/workflow/chunking.ts';
import { parseRunInput } from '../core/workflow/run-input.ts';

const event = z.object({ runId: z.string(), collection: z.unknown() });

/** SplitIntoChunks: lists a collection's deltas, writes the chunk manifest, returns chunk indexes. */
export const handler = async (input: unknown) => {
  const parsed = event.parse(input);
  const run = parseRunInput({ runId: parsed.runId, collections: [parsed.collection] });
  const state = await splitIntoChunks(runtime(), run.runId, run.collections[0]!);
  recordMetrics({ ChunkCount: state.chunkCount });
  return state;
};
