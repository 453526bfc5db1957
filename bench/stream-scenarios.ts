import { settle } from '../lambdas/core/protocol/publication.ts';
import { type PublishResult, publish } from '../lambdas/core/protocol/publish.ts';
import { opsChange } from '../lambdas/core/records/changes.ts';
import { publishDeps, type Runtime } from '../lambdas/core/runtime.ts';
import { compactBatch, type StreamRecord } from '../lambdas/core/stream/stream-compaction.ts';
import { makeUpserts, randomEmbedding, seededRandom } from '../local/synthetic-records.ts';
import { type BenchContext, percentile, round, type ScenarioResult, timed } from './harness.ts';
import { seed } from './publish-scenarios.ts';

/**
 * Scenario 6: the stream compaction handler (SQS batches of 10, up to 4 invocations at once, as
 * Lambda runs them) on one collection, alone and while batch runs publish into the same
 * collection, and the single-phase baseline. Failed messages are sent again, as SQS redelivers
 * them; failed batch publishes are retried, as the FinalMerge state's Retry does. At the end the
 * snapshot must hold exactly the expected records: nothing lost under contention.
 */
const SQS_BATCH = 10;
const MAX_DELIVERIES = 10;
const SFN_ATTEMPTS = 6;
/** What the FinalMerge state's Retry retries. */
const RETRIED = new Set([
  'LockBusyError',
  'CasConflictError',
  'LeaseLostError',
  'StoreUnavailableError',
  'PublicationPendingError',
]);

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

/**
 * An SQS queue drained by up to `invocations` concurrent handler invocations, as Lambda runs them,
 * each taking batches of up to 10; a message that failed comes back (SQS redelivery) until
 * MAX_DELIVERIES. Ends when every message was handled and every commit is published.
 */
async function feedStream(rt: Runtime, collection: string, records: StreamRecord[], invocations: number) {
  const lockHolds: number[] = [];
  const commits: number[] = [];
  let casRetries = 0;
  let redelivered = 0;
  let undelivered = 0;
  const deliveries = new Map<string, number>();
  const queue = [...records];
  const invocation = async () => {
    for (;;) {
      const batch = queue.splice(0, SQS_BATCH);
      if (batch.length === 0) return;
      const result = await compactBatch(rt, batch);
      for (const published of Object.values(result.publishes)) {
        if (published.lockHoldMs !== undefined) lockHolds.push(published.lockHoldMs);
        if (published.commitMs !== undefined) commits.push(published.commitMs);
        casRetries += published.casRetries ?? 0;
      }
      const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
      for (const record of batch.filter((candidate) => failed.has(candidate.messageId))) {
        const count = (deliveries.get(record.messageId) ?? 1) + 1;
        deliveries.set(record.messageId, count);
        if (count > MAX_DELIVERIES) undelivered++;
        else {
          redelivered++;
          queue.push(record);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: invocations }, invocation));
  // A commit is acknowledged before it is published: the stream is done when the pointer passed them all.
  await settle(publishDeps(rt), collection);
  return { lockHolds, commits, casRetries, redelivered, undelivered };
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
          if (!RETRIED.has((error as Error).name)) throw error;
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
  const base = context.quick ? 5_000 : 50_000;
  const messageCount = context.quick ? 300 : 1200;
  // The single-phase baseline builds once per batch (a few msg/s): fewer messages measure its rate as well.
  const baselineCount = context.quick ? 100 : 200;
  const runs = context.quick ? 4 : 8;
  const recordsEach = context.quick ? 100 : 500;
  const invocations = 4;
  const rows: ScenarioResult[] = [];
  const variants = [
    ['stream-alone', 'two-phase'],
    ['stream-with-batch-runs', 'two-phase'],
    ['stream-alone-single-phase', 'single-phase'],
  ] as const;
  for (const [variant, strategy] of variants) {
    const collection = `stream-${variant}`;
    await seed(context, collection, base, dimension);
    const rt = context.runtime({
      LOCK_STRATEGY: strategy,
      LOCK_WAIT_SECONDS: '900',
      PUBLISH_WAIT_SECONDS: '900',
    });
    const messages = streamMessages(
      collection,
      strategy === 'single-phase' ? baselineCount : messageCount,
      dimension,
    );
    const withRuns = variant === 'stream-with-batch-runs';
    context.log(
      `stream: ${messages.length} messages by ${invocations} invocations${withRuns ? `, ${runs} batch runs at once` : ''} (${strategy})`,
    );
    // allSettled: nothing may still be writing when the bench tears its services down.
    const [streamOutcome, batchOutcome] = await Promise.allSettled([
      timed(() => feedStream(rt, collection, messages, invocations)),
      withRuns ? batchRuns(rt, collection, runs, recordsEach, dimension) : undefined,
    ]);
    if (streamOutcome.status === 'rejected') throw streamOutcome.reason;
    if (batchOutcome.status === 'rejected') throw batchOutcome.reason;
    const stream = streamOutcome.value;
    const batch = batchOutcome.value;
    await settle(publishDeps(rt), collection);
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
        messages: messages.length,
        sqsBatch: SQS_BATCH,
        invocations,
        batchRuns: withRuns ? runs : 0,
        recordsPerRun: withRuns ? recordsEach : 0,
        snapshotRecords: base,
        dimension,
      },
      metrics: {
        messagesPerSecond: round(messages.length / (stream.ms / 1000), 1),
        streamWallMs: round(stream.ms),
        streamLockHoldP99Ms: round(percentile(stream.value.lockHolds, 99)),
        streamCommitP50Ms: round(percentile(stream.value.commits, 50)),
        streamCommitP99Ms: round(percentile(stream.value.commits, 99)),
        streamCasRetries: stream.value.casRetries,
        redeliveredMessages: stream.value.redelivered,
        batchLockHoldP99Ms: round(
          percentile(
            batchResults.map((r) => r.lockHoldMs),
            99,
          ),
        ),
        batchLogLagP99Ms: round(
          percentile(
            batchResults.map((r) => r.waitMs),
            99,
          ),
        ),
        batchRetriedFailures: batch?.retriedFailures ?? 0,
        batchRunsAbandoned: batch?.abandoned ?? 0,
        snapshotsPublished: pointer.version,
        undeliveredMessages: stream.value.undelivered,
        lostRecords: expected - pointer.recordCount,
      },
    });
  }
  return rows;
}
