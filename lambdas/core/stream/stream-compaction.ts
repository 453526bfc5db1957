import { type ApplyStats, applyOps } from '../chroma/chroma-apply.ts';
import type { Change } from '../chroma/snapshot-builder.ts';
import { describeError } from '../errors.ts';
import { type PublishResult, publish } from '../protocol/publish.ts';
import { foldAndSort } from '../records/changes.ts';
import { readDeltaFully } from '../records/deltas.ts';
import type { RecordOp } from '../records/records.ts';
import { validateCollectionName } from '../records/records.ts';
import { publishDeps, type Runtime } from '../runtime.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { inlineOps, parseStreamMessage, type StreamMessage } from './stream-messages.ts';

/**
 * Stream compaction: one SQS batch is grouped per collection, and each collection gets exactly
 * one publish (the same two-phase protocol as batch runs). Failures are per message: only the
 * messages of a collection that failed, or that could not apply, come back for a retry.
 */
export interface StreamRecord {
  messageId: string;
  body: string;
}

export interface MessageFailure {
  messageId: string;
  collection?: string;
  reason: string;
}

export interface CollectionPublish {
  messages: number;
  applied: number;
  status: PublishResult['status'] | 'failed';
  snapshotVersion?: number;
  lockHoldMs?: number;
  casRetries?: number;
}

export interface StreamBatchResult {
  batchItemFailures: { itemIdentifier: string }[];
  failures: MessageFailure[];
  publishes: Record<string, CollectionPublish>;
}

/** A stream batch of one collection as a publishable change; messages already applied are skipped. */
export function streamChange(objects: ObjectStore, runId: string, messages: StreamMessage[]): Change {
  return {
    runId,
    messageIds: messages.map((message) => message.messageId),
    async apply(collection, dimension, alreadyApplied): Promise<ApplyStats> {
      const pending = messages.filter((message) => !alreadyApplied.has(message.messageId));
      const ops: RecordOp[] = [];
      for (const message of pending) {
        if (message.operation === 'applyDelta') {
          ops.push(
            ...(await readDeltaFully(objects, { key: message.deltaKey, label: message.deltaKey }, dimension)),
          );
        } else {
          ops.push(...inlineOps(message));
        }
      }
      const sorted = foldAndSort(ops);
      const stats = await applyOps(
        collection,
        (async function* () {
          yield* sorted;
        })(),
        dimension,
      );
      const missing = new Set(stats.missingIds);
      stats.appliedMessageIds = pending
        .filter((message) => !missingIdsOf(message, missing).length)
        .map((message) => message.messageId);
      return stats;
    },
  };
}

function missingIdsOf(message: StreamMessage, missing: ReadonlySet<string>): string[] {
  return message.operation === 'updateMetadata'
    ? message.updates.map((update) => update.id).filter((id) => missing.has(id))
    : [];
}

export async function compactBatch(rt: Runtime, records: StreamRecord[]): Promise<StreamBatchResult> {
  const failures: MessageFailure[] = [];
  const byCollection = new Map<string, StreamMessage[]>();
  const seen = new Set<string>();
  for (const record of records) {
    const parsed = parseStreamMessage(record.body, record.messageId);
    if (!parsed.ok) {
      failures.push({ messageId: record.messageId, reason: parsed.reason });
      continue;
    }
    const message = parsed.message;
    if (seen.has(message.messageId)) continue; // the same message twice in one batch applies once
    seen.add(message.messageId);
    try {
      validateCollectionName(message.collection);
    } catch (error) {
      failures.push({
        messageId: record.messageId,
        collection: message.collection,
        reason: describeError(error).message,
      });
      continue;
    }
    byCollection.set(message.collection, [...(byCollection.get(message.collection) ?? []), message]);
  }

  const sqsIdOf = new Map(records.map((record) => [parseStreamMessageId(record), record.messageId]));
  const publishes: Record<string, CollectionPublish> = {};
  await Promise.all(
    [...byCollection].map(async ([collection, messages]) => {
      const runId = `stream-${messages[0]!.messageId}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120);
      try {
        const result = await publish(publishDeps(rt), collection, streamChange(rt.objects, runId, messages));
        const missing = new Set(result.missingIds);
        let failed = 0;
        for (const message of messages) {
          const ids = missingIdsOf(message, missing);
          if (ids.length === 0) continue;
          failed++;
          failures.push({
            messageId: sqsIdOf.get(message.messageId) ?? message.messageId,
            collection,
            reason: `updateMetadata: no record ${ids.map((id) => `"${id}"`).join(', ')} in collection "${collection}"`,
          });
        }
        publishes[collection] = {
          messages: messages.length,
          applied: messages.length - failed,
          status: result.status,
          snapshotVersion: result.snapshotVersion,
          lockHoldMs: result.lockHoldMs,
          casRetries: result.casRetries,
        };
      } catch (error) {
        const { name, message: text } = describeError(error);
        for (const message of messages) {
          failures.push({
            messageId: sqsIdOf.get(message.messageId) ?? message.messageId,
            collection,
            reason: `${name}: ${text}`,
          });
        }
        publishes[collection] = { messages: messages.length, applied: 0, status: 'failed' };
      }
    }),
  );
  return {
    batchItemFailures: [...new Set(failures.map((failure) => failure.messageId))].map((itemIdentifier) => ({
      itemIdentifier,
    })),
    failures,
    publishes,
  };
}

/** The message id a body declares (or the SQS id), to map failures back to SQS identifiers. */
function parseStreamMessageId(record: StreamRecord): string {
  const parsed = parseStreamMessage(record.body, record.messageId);
  return parsed.ok ? parsed.message.messageId : record.messageId;
}
