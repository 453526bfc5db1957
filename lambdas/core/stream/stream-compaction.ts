import { describeError } from '../errors.ts';
import { collectionDimension } from '../protocol/dimension.ts';
import { versionWith } from '../protocol/pointer.ts';
import { commitAndSettle, type PublishDeps, publish } from '../protocol/publish.ts';
import { validateCollectionName } from '../records/records.ts';
import { publishDeps, type Runtime } from '../runtime.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { prepareMessages } from './stream-change.ts';
import { parseStreamMessage, type StreamMessage } from './stream-messages.ts';
import { checkUpdates } from './update-check.ts';

/**
 * Stream compaction: one SQS batch is grouped per collection, and each collection's messages are
 * committed to its log as one entry. A message id is scoped to its collection; one applied before
 * (within the horizon) is acknowledged without being committed again. A batch is acknowledged
 * once committed (durable, and published by whoever holds the build lease, this invocation if
 * nobody does) unless it holds an `updateMetadata`: whether the records it names exist is decided
 * only when it applies, so such a batch waits for its publication to report each message's fate.
 * Failures are per message: a message that cannot apply fails alone; a failure no single message
 * explains fails that collection's messages, never another collection's.
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
  /** `committed`: durable in the log; published by this invocation's fold, or by the lease holder's. */
  status: 'published' | 'committed' | 'already-applied' | 'no-change' | 'failed';
  seq?: number;
  snapshotVersion?: number;
  commitMs?: number;
  casRetries?: number;
  /** Pointer swaps lost and replayed by the builds this invocation did. */
  swapReplays?: number;
  /** The collection lock's hold: a log commit holds none; single-phase holds it through the build. */
  lockHoldMs?: number;
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
      const fail = (messageId: string, reason: string) => {
        for (const sqsMessageId of received.get(messageId)!.sqsMessageIds) {
          failures.push({ messageId, sqsMessageId, collection, reason });
        }
      };
      try {
        publishes[collection] = await compactCollection(
          deps,
          objects,
          collection,
          [...received.values()],
          fail,
        );
      } catch (error) {
        const { name, message: text } = describeError(error);
        for (const messageId of received.keys()) fail(messageId, `${name}: ${text}`);
        publishes[collection] = { messages: received.size, applied: 0, status: 'failed' };
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

async function compactCollection(
  deps: PublishDeps,
  objects: ObjectStore,
  collection: string,
  received: Received[],
  fail: (messageId: string, reason: string) => void,
): Promise<CollectionPublish> {
  const ids = received.map((entry) => entry.message.messageId);
  const [earlier, head] = await Promise.all([
    deps.applied.lookup(collection, [], ids),
    deps.pointers.read(collection),
  ]);
  const fresh = received
    .map((entry) => entry.message)
    .filter((message) => !earlier.messages.has(message.messageId));
  if (fresh.length === 0)
    return { messages: received.length, applied: received.length, status: 'already-applied' };

  const dimension = head.dimension ?? (await collectionDimension(deps.items, collection));
  const prepared = await prepareMessages(objects, fresh, collection, dimension);
  for (const failure of prepared.failed) fail(failure.messageId, failure.reason);
  if (prepared.changes.length === 0) return { messages: received.length, applied: 0, status: 'failed' };

  let changes = prepared.changes;
  let failedNow = prepared.failed.length;
  const waitForOutcome = async () => {
    const result = await publish(deps, collection, { kind: 'messages', label: 'stream', messages: changes });
    for (const failure of result.failedMessages) fail(failure.messageId, failure.reason);
    return {
      messages: received.length,
      applied: received.length - failedNow - result.failedMessages.length,
      status: result.status,
      seq: result.seq,
      snapshotVersion: result.snapshotVersion,
      commitMs: result.commitMs,
      casRetries: result.casRetries,
      swapReplays: result.swapReplays,
      lockHoldMs: result.lockHoldMs,
    } satisfies CollectionPublish;
  };
  if (deps.config.lockStrategy === 'single-phase') return waitForOutcome();
  if (changes.some((message) => message.needsRecords)) {
    const checked = await checkUpdates(deps, collection, head, changes);
    if (!checked) return waitForOutcome();
    for (const failure of checked.failed) fail(failure.messageId, failure.reason);
    failedNow += checked.failed.length;
    changes = checked.ok;
    if (changes.length === 0) return { messages: received.length, applied: 0, status: 'failed' };
  }
  const change = { kind: 'messages' as const, label: 'stream', messages: changes };
  const applied = received.length - failedNow;
  const committed = await commitAndSettle(deps, collection, change, head);
  // Without a build of ours the entry is the lease holder's to publish: no need to look.
  const after = committed.builds.length > 0 ? await deps.pointers.read(collection) : head;
  return {
    messages: received.length,
    applied,
    status:
      after.publishedSeq < committed.seq
        ? 'committed'
        : versionWith(after, committed.seq)
          ? 'published'
          : 'no-change',
    seq: committed.seq,
    snapshotVersion: versionWith(after, committed.seq)?.version ?? after.version,
    commitMs: committed.commitMs,
    casRetries: committed.casRetries,
    swapReplays: committed.builds.reduce((sum, build) => sum + build.replays, 0),
    lockHoldMs: 0,
  };
}
