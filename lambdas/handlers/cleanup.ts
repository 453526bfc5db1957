import { z } from 'zod';
import { cleanupCollectionRun } from '../core/run-cleanup.ts';
import { runtime } from '../core/runtime.ts';
import { parseEvent } from '../core/workflow-state.ts';

const event = z.object({ runId: z.string(), collection: z.string() });

/** Cleanup: removes the run's temporary segments and any orphaned snapshot uploads. */
export const handler = async (input: unknown) => {
  const { runId, collection } = parseEvent(event, input, 'Cleanup');
  return cleanupCollectionRun(runtime(), runId, collection);
};
