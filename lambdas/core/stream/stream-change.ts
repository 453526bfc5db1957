import { BadInputError, StorageError } from '../errors.ts';
import type { StreamChange } from '../protocol/change-sets.ts';
import { readDeltaFully } from '../records/deltas.ts';
import type { RecordOp } from '../records/records.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { inlineOps, type StreamMessage } from './stream-messages.ts';

/**
 * What can be checked about stream messages before they are committed: each message's records
 * (an `applyDelta` is read now, so the change set holds its records whatever later happens to the
 * file) and their dimension. A message that fails fails alone and is never committed. Whether the
 * records an `updateMetadata` names exist can only be decided when it applies, in log order.
 */
export interface PreparedMessages {
  changes: StreamChange[];
  failed: { messageId: string; reason: string }[];
}

/** A delta a message may read: what users drop under `input/`, or a run's uploaded input. */
export function isAllowedDeltaKey(key: string): boolean {
  return key.startsWith('input/') || /^runs\/[^/]+\/input\//.test(key);
}

export async function prepareMessages(
  objects: ObjectStore,
  messages: StreamMessage[],
  collection: string,
  collectionDimension: number | null,
): Promise<PreparedMessages> {
  const prepared: PreparedMessages = { changes: [], failed: [] };
  let dimension = collectionDimension;
  for (const message of messages) {
    try {
      const ops = await opsOf(objects, message, dimension);
      const first = ops.find((op) => op.op === 'upsert');
      const own = dimension ?? (first?.op === 'upsert' ? first.embedding.length : null);
      const wrong = ops.find((op) => op.op === 'upsert' && op.embedding.length !== own);
      if (wrong?.op === 'upsert') {
        throw new BadInputError(
          `record "${wrong.id}" has dimension ${wrong.embedding.length}, but collection "${collection}" has dimension ${own}`,
        );
      }
      dimension = own;
      prepared.changes.push({
        messageId: message.messageId,
        needsRecords: message.operation === 'updateMetadata',
        ops,
      });
    } catch (error) {
      if (!(error instanceof BadInputError || error instanceof StorageError)) throw error;
      prepared.failed.push({ messageId: message.messageId, reason: error.message });
    }
  }
  return prepared;
}

async function opsOf(
  objects: ObjectStore,
  message: StreamMessage,
  dimension: number | null,
): Promise<RecordOp[]> {
  if (message.operation !== 'applyDelta') return inlineOps(message);
  if (!isAllowedDeltaKey(message.deltaKey)) {
    throw new BadInputError(
      `applyDelta: deltaKey "${message.deltaKey}" is outside the input prefixes (input/…, runs/<run>/input/…)`,
    );
  }
  return readDeltaFully(objects, { key: message.deltaKey, label: message.deltaKey }, dimension);
}
