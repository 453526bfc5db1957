import { logger, recordMetrics } from '../core/observability/observability.ts';
import { runtime } from '../core/runtime.ts';
import { compactBatch, type StreamRecord } from '../core/stream/stream-compaction.ts';

/**
 * SQS consumer: applies a batch of change messages, one publish per collection, and reports
 * partial failures (`batchItemFailures`) so only the failed messages are redelivered.
 */
export const handler = async (event: { Records: StreamRecord[] }) => {
  const result = await compactBatch(runtime(), event.Records);
  for (const failure of result.failures) logger.warn('stream message not applied', { ...failure });
  for (const publish of Object.values(result.publishes)) {
    recordMetrics({
      LockHoldMs: publish.lockHoldMs,
      LogAppendConflicts: publish.casRetries,
      CasConflicts: publish.swapReplays,
    });
  }
  return { batchItemFailures: result.batchItemFailures };
};
