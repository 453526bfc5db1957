import { z } from 'zod';
import { logger } from '../core/observability/observability.ts';
import { runtime } from '../core/runtime.ts';
import { recordFailure } from '../core/workflow/run-cleanup.ts';

const event = z.object({
  runId: z.string().optional(),
  failure: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

/** RecordFailure: cleans up after a failed run and hands the Fail state a readable error and cause. */
export const handler = async (input: unknown) => {
  const { runId, failure } = event.parse(input);
  const result = await recordFailure(runtime(), runId, failure);
  logger.error('run failed', { runId, ...result });
  return result;
};
