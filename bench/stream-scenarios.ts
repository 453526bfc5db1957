import { CasConflictError, LockBusyError } from '../lambdas/core/errors.ts';
import { type PublishResult, publish } from '../lambdas/core/protocol/publish.ts';
import { opsChange } from '../lambdas/core/records/changes.ts';
import { publishDeps, type Runtime } from '../lambdas/core/runtime.ts';
import { compactBatch, type StreamRecord } from '../lambdas/core/stream/stream-compaction.ts';
import { makeUpserts, randomEmbedding, seededRandom } from '../local/synthetic-records.ts';
import { type BenchContext, percentile, round, type ScenarioResult, timed } from './harness.ts';
import { seed } from './publish-scenarios.ts';

/**
 * Scenario 6: the stream compaction handler (SQS batches of 10) on one collection, alone and while
 * batch runs publish into the same collection, with and without the starvation guard. Failed
 * messages are sent again, as SQS redelivers them; failed batch publishes are retried, as the
 * FinalMerge state's Retry does. At the end the snapshot must hold exactly the expected records:
 * nothing lost under contention.
 */
const SQS_BATCH = 10;
const MAX_DELIVERIES = 10;
const SFN_ATTEMPTS = 6;

/** Seven in ten messages upsert a new id, two update a seeded id's metadata, one deletes a seeded id. */
const messageKind = (index: number) =>
  index % 10 < 7 ? 'upsert' : index % 10 < 9 ? 'updateMetadata' : 'delete';

export function streamMessages(collection: string, count: number, dimension: number): StreamRecord[] {
  const random = seededRandom(7);
  return Array.from({ length: count }, (_, index) => {
    const messageId = `${collection}-m${index}`;
    const seeded = `seed0-${String(index).padStart(5, '0')}`;
    const kind = messageKind(index);
    const body =
      kind === 'upsert'
        ? {
            operation: 'upsert',
            records: [
              { id: `${collection}-s${index}`, embedding: Array.from(randomEmbedding(random, dimension)) },
            ],
          }
        : kind === 'updateMetadata'
          ? { operation: 'updateMetadata', updates: [{ id: seeded, metadata: { label: `m${index}` } }] }
          : { operation: 'delete', ids: [seeded] };
    return { messageId, body: JSON.stringify({ messageId, collection, ...body }) };
  });
}

async function feedStream(rt: Runtime, records: StreamRecord[]) {
  const lockHolds: number[] = [];
  let casRetries = 0;
  let redelivered = 0;
  let queue = records;
  for (let delivery = 1; queue.length > 0 && delivery <= MAX_DELIVERIES; delivery++) {
    const retry: StreamRecord[] = [];
    for (let start = 0; start < queue.length; start += SQS_BATCH) {
      const batch = queue.slice(start, start + SQS_BATCH);
      const result = await compactBatch(rt, batch);
      for (const published of Object.values(result.publishes)) {
        if (published.lockHoldMs !== undefined) lockHolds.push(published.lockHoldMs);
        casRetries += published.casRetries ?? 0;
      }
      const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
      retry.push(...batch.filter((record) => failed.has(record.messageId)));
    }
    redelivered += retry.length;
    queue = retry;
  }
  return { lockHolds, casRetries, redelivered, undelivered: queue.length };
}

async function batchRuns(
  rt: Runtime,
  collection: string,
  runs: number,
  recordsEach: number,
  dimension: number,
) {
  const results: PublishResult[] = [];
  let failures = 0;
  let abandoned = 0;
  // Two lanes: runs keep arriving while the stream flows, as scheduled batch runs would.
  const lane = async (first: number) => {
    for (let index = first; index < runs; index += 2) {
      const change = opsChange(
        `${collection}-run${index}`,
        makeUpserts(`${collection}-r${index}`, recordsEach, dimension, 500 + index),
      );
      for (let attempt = 1; attempt <= SFN_ATTEMPTS; attempt++) {
        try {
          results.push(await publish(publishDeps(rt), collection, change));
          break;
        } catch (error) {
          if (!(error instanceof CasConflictError || error instanceof LockBusyError)) throw error;
          failures++;
          if (attempt === SFN_ATTEMPTS) abandoned++;
        }
      }
    }
  };
  await Promise.all([lane(0), lane(1)]);
  return { results, retriedFailures: failures, abandoned };
}

export async function streamUnderBatchRuns(context: BenchContext): Promise<ScenarioResult[]> {
  const dimension = 64;
  const base = context.quick ? 1_000 : 5_000;
  const messageCount = context.quick ? 200 : 600;
  const runs = context.quick ? 4 : 8;
  const recordsEach = context.quick ? 100 : 500;
  const rows: ScenarioResult[] = [];
  // The unguarded variant is the plain optimistic rule (fail after MAX_CAS_RETRIES): the baseline
  // that shows what the starvation guard buys (docs/architecture.md, "Starvation guard").
  const variants = [
    ['stream-alone', 'true'],
    ['stream-with-batch-runs', 'true'],
    ['stream-with-batch-runs-unguarded', 'false'],
  ] as const;
  for (const [variant, finalRebaseLocked] of variants) {
    const collection = `stream-${variant}`;
    await seed(context, collection, base, dimension);
    const rt = context.runtime({ LOCK_WAIT_SECONDS: '600', FINAL_REBASE_LOCKED: finalRebaseLocked });
    const messages = streamMessages(collection, messageCount, dimension);
    const withRuns = variant !== 'stream-alone';
    context.log(`stream: ${messageCount} messages${withRuns ? `, ${runs} batch runs at once` : ''}`);
    // allSettled: nothing may still be writing when the bench tears its services down.
    const [streamOutcome, batchOutcome] = await Promise.allSettled([
      timed(() => feedStream(rt, messages)),
      withRuns ? batchRuns(rt, collection, runs, recordsEach, dimension) : undefined,
    ]);
    if (streamOutcome.status === 'rejected') throw streamOutcome.reason;
    if (batchOutcome.status === 'rejected') throw batchOutcome.reason;
    const stream = streamOutcome.value;
    const batch = batchOutcome.value;
    const upserts = messages.filter((_, index) => messageKind(index) === 'upsert').length;
    const deletes = messages.filter((_, index) => messageKind(index) === 'delete').length;
    const publishedRuns = batch?.results.length ?? 0;
    const expected = base + upserts - deletes + publishedRuns * recordsEach;
    const pointer = await rt.pointers.read(collection);
    const batchResults = batch?.results ?? [];
    rows.push({
      name: 'stream',
      variant,
      params: {
        messages: messageCount,
        sqsBatch: SQS_BATCH,
        batchRuns: withRuns ? runs : 0,
        recordsPerRun: withRuns ? recordsEach : 0,
        snapshotRecords: base,
        dimension,
      },
      metrics: {
        messagesPerSecond: round(messageCount / (stream.ms / 1000), 1),
        streamWallMs: round(stream.ms),
        streamLockHoldP50Ms: round(percentile(stream.value.lockHolds, 50)),
        streamLockHoldP99Ms: round(percentile(stream.value.lockHolds, 99)),
        streamCasRetries: stream.value.casRetries,
        redeliveredMessages: stream.value.redelivered,
        batchLockHoldP99Ms: round(
          percentile(
            batchResults.map((r) => r.maxLockHoldMs),
            99,
          ),
        ),
        batchCasRetries: batchResults.reduce((sum, r) => sum + r.casRetries, 0),
        batchRetriedFailures: batch?.retriedFailures ?? 0,
        batchRunsAbandoned: batch?.abandoned ?? 0,
        undeliveredMessages: stream.value.undelivered,
        lostRecords: expected - pointer.recordCount,
      },
    });
  }
  return rows;
}
