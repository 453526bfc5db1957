import { readFile } from 'node:fs/promises';
import type { Runtime } from '../lambdas/core/runtime.ts';
import { compactBatch, type MessageFailure } from '../lambdas/core/stream/stream-compaction.ts';
import { info, UsageError } from './output.ts';
import { percentile } from './stats.ts';

/**
 * `embedflow stream --file MESSAGES.jsonl`: feeds stream messages (one JSON body per line)
 * through the same handler core the SQS Lambda runs, in batches like an SQS event source.
 */
export interface StreamOptions {
  file: string;
  batchSize: number;
  batchWaitMs: number;
}

export async function streamFile(rt: Runtime, options: StreamOptions) {
  const text = await readFile(options.file, 'utf8').catch(() => {
    throw new UsageError(`--file ${options.file}: cannot read it`);
  });
  const records = text
    .split('\n')
    .map((body, index) => ({ messageId: `line-${index + 1}`, body }))
    .filter((record) => record.body.trim() !== '');
  if (records.length === 0) throw new UsageError(`--file ${options.file}: no messages`);

  const started = performance.now();
  const failed: MessageFailure[] = [];
  const publishes: Record<string, number> = {};
  const lockHolds: number[] = [];
  let batches = 0;
  for (let start = 0; start < records.length; start += options.batchSize) {
    const batch = records.slice(start, start + options.batchSize);
    const result = await compactBatch(rt, batch);
    batches++;
    failed.push(...result.failures);
    for (const [collection, publish] of Object.entries(result.publishes)) {
      if (publish.status === 'published') publishes[collection] = (publishes[collection] ?? 0) + 1;
      if (publish.lockHoldMs !== undefined) lockHolds.push(publish.lockHoldMs);
    }
    info(
      `stream: ${Math.min(start + options.batchSize, records.length)}/${records.length} messages, ${failed.length} failed`,
    );
    if (options.batchWaitMs > 0 && start + options.batchSize < records.length) {
      await new Promise((resolve) => setTimeout(resolve, options.batchWaitMs));
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const failedIds = new Set(failed.map((failure) => failure.messageId));
  const value = {
    messages: records.length,
    applied: records.length - failedIds.size,
    failed,
    batches,
    publishes,
    lockHoldMs: {
      p50: percentile(lockHolds, 50),
      p99: percentile(lockHolds, 99),
      max: Math.max(0, ...lockHolds),
    },
    messagesPerSecond: Math.round((records.length / seconds) * 10) / 10,
  };
  const human = () =>
    [
      `${value.messages} messages in ${batches} batches: ${value.applied} applied, ${failedIds.size} failed (${value.messagesPerSecond} msg/s)`,
      `publishes: ${
        Object.entries(publishes)
          .map(([name, count]) => `${name} ${count}`)
          .join(', ') || 'none'
      }`,
      `lock held p50 ${value.lockHoldMs.p50} ms, p99 ${value.lockHoldMs.p99} ms`,
      ...failed.map((failure) => `  failed ${failure.messageId}: ${failure.reason}`),
    ].join('\n');
  return { value, human };
}
