import { z } from 'zod';
import { runtime } from '../core/runtime.ts';
import { cleanupCollectionRun } from '../core/workflow/run-cleanup.ts';
import { parseEvent } from '../core/workflow/workflow-state.ts';

const event = z.object({ runId: z.string(), collection: z.string() });

/** Cleanup: removes the run's temporary segments and any orphaned snapshot uploads. */
export const handler = async (input: unknown) => {
  const { runId, collection } = parseEvent(event, input, 'Cleanup');
  return cleanupCollectionRun(runtime(), runId, collection);
};
