import { z } from 'zod';
import { logger } from '../core/observability/observability.ts';
import { runtime } from '../core/runtime.ts';
import { publishedVersionIn, summarizeRun } from '../core/workflow/run-summary.ts';
import { parseEvent } from '../core/workflow/workflow-state.ts';

const event = z.object({
  runId: z.string(),
  results: z.array(
    z.looseObject({
      collection: z.string(),
      status: z.enum(['published', 'already-applied', 'no-change', 'failed']),
    }),
  ),
});

/** Summarize: each collection's outcome, and the run's failure when one did not publish. */
export const handler = async (input: unknown) => {
  const { runId, results } = parseEvent(event, input, 'Summarize');
  const rt = runtime();
  const outcome = await summarizeRun(publishedVersionIn(rt), runId, results as never);
  if (outcome.failure) logger.error('run incomplete', { runId, cause: outcome.failure.Cause });
  return outcome;
};
