import { describeError } from '../errors.ts';
import { type PublishDeps, type PublishResult, publish } from '../protocol/publish.ts';
import { validateCollectionName } from '../records/records.ts';
import { publishDeps, type Runtime } from '../runtime.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { streamChange } from './stream-change.ts';
import { parseStreamMessage, type StreamMessage } from './stream-messages.ts';

/**
 * Stream compaction: one SQS batch is grouped per collection, and each collection gets exactly
 * one publish (the same protocol as batch runs). A message id is scoped to its collection. Failures
 * are per message: a message that cannot apply fails alone; a publish failure that no single
 * message explains fails every message of that collection (they come back for a retry).
 */
export interface StreamRecord {
  messageId: string;
  body: string;
}

export interface MessageFailure {
  /** The message's own id (its `messageId` field, or the SQS id when it has none). */
  messageId: string;
  /** The SQS message id: what `batchItemFailures` names. */
  sqsMessageId: string;
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

interface Received {
  sqsMessageIds: string[];
  message: StreamMessage;
}

export function compactBatch(rt: Runtime, records: StreamRecord[]): Promise<StreamBatchResult> {
  return compactWith(publishDeps(rt), rt.objects, records);
}

/** compactBatch on explicit ports: the protocol tests run it against in-memory adapters. */
export async function compactWith(
  deps: PublishDeps,
  objects: ObjectStore,
  records: StreamRecord[],
): Promise<StreamBatchResult> {
  const failures: MessageFailure[] = [];
  const byCollection = new Map<string, Map<string, Received>>();
  for (const record of records) {
    const parsed = parseStreamMessage(record.body, record.messageId);
    if (!parsed.ok) {
      failures.push({ messageId: parsed.messageId, sqsMessageId: record.messageId, reason: parsed.reason });
      continue;
    }
    const { message } = parsed;
    try {
      validateCollectionName(message.collection);
    } catch (error) {
      failures.push({
        messageId: message.messageId,
        sqsMessageId: record.messageId,
        collection: message.collection,
        reason: describeError(error).message,
      });
      continue;
    }
    const received = byCollection.get(message.collection) ?? new Map<string, Received>();
    byCollection.set(message.collection, received);
    // The same message twice in one batch (a redelivery beside the original) applies once.
    const seen = received.get(message.messageId);
    if (seen) seen.sqsMessageIds.push(record.messageId);
    else received.set(message.messageId, { sqsMessageIds: [record.messageId], message });
  }

  const publishes: Record<string, CollectionPublish> = {};
  await Promise.all(
    [...byCollection].map(async ([collection, received]) => {
      const messages = [...received.values()];
      const fail = (entry: Received, reason: string) => {
        for (const sqsMessageId of entry.sqsMessageIds) {
          failures.push({ messageId: entry.message.messageId, sqsMessageId, collection, reason });
        }
      };
      try {
        const result = await publish(
          deps,
          collection,
          streamChange(
            objects,
            messages.map((entry) => entry.message),
          ),
        );
        for (const failed of result.failedMessages) fail(received.get(failed.messageId)!, failed.reason);
        publishes[collection] = {
          messages: messages.length,
          applied: messages.length - result.failedMessages.length,
          status: result.status,
          snapshotVersion: result.snapshotVersion,
          lockHoldMs: result.lockHoldMs,
          casRetries: result.casRetries,
        };
      } catch (error) {
        const { name, message: text } = describeError(error);
        for (const entry of messages) fail(entry, `${name}: ${text}`);
        publishes[collection] = { messages: messages.length, applied: 0, status: 'failed' };
      }
    }),
  );
  return {
    batchItemFailures: [...new Set(failures.map((failure) => failure.sqsMessageId))].map(
      (itemIdentifier) => ({
        itemIdentifier,
      }),
    ),
    failures,
    publishes,
  };
}
