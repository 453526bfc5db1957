import { BadInputError, StorageError } from '../errors.ts';
import type { Change } from '../protocol/ports.ts';
import { APPLY_BATCH, type ApplyStats, applyOps } from '../records/apply-ops.ts';
import { foldAndSort } from '../records/changes.ts';
import { readDeltaFully } from '../records/deltas.ts';
import type { RecordTarget } from '../records/record-target.ts';
import type { RecordOp } from '../records/records.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { inlineOps, type StreamMessage } from './stream-messages.ts';

/**
 * The messages of one collection in one SQS batch, as a publishable change identified by their
 * message ids alone. Each message applies whole or not at all, in order: before anything is
 * written, every message is checked against the collection as the messages before it leave it
 * (its dimension, the records its updates name, its delta file). A message that cannot apply
 * fails alone, changes nothing and is not recorded, so it comes back and can apply later.
 */
export function streamChange(objects: ObjectStore, messages: StreamMessage[]): Change {
  return {
    label: 'stream',
    messageIds: messages.map((message) => message.messageId),
    async apply(target, dimension, alreadyApplied): Promise<ApplyStats> {
      const pending = messages.filter((message) => !alreadyApplied.has(message.messageId));
      const plan = await planMessages(objects, target, pending, dimension);
      const stats = await applyOps(target, foldAndSort(plan.ops), plan.dimension);
      stats.appliedMessageIds = plan.applied;
      stats.failedMessages = plan.failed;
      return stats;
    },
  };
}

/** A delta a message may read: what users drop under `input/`, or a run's uploaded input. */
export function isAllowedDeltaKey(key: string): boolean {
  return key.startsWith('input/') || /^runs\/[^/]+\/input\//.test(key);
}

interface Plan {
  ops: RecordOp[];
  dimension: number | null;
  applied: string[];
  failed: { messageId: string; reason: string }[];
}

async function planMessages(
  objects: ObjectStore,
  target: RecordTarget,
  messages: StreamMessage[],
  collectionDimension: number | null,
): Promise<Plan> {
  const plan: Plan = { ops: [], dimension: collectionDimension, applied: [], failed: [] };
  const read: { message: StreamMessage; ops: RecordOp[] }[] = [];
  for (const message of messages) {
    try {
      read.push({ message, ops: await opsOf(objects, message, collectionDimension) });
    } catch (error) {
      if (!(error instanceof BadInputError || error instanceof StorageError)) throw error;
      plan.failed.push({ messageId: message.messageId, reason: error.message });
    }
  }
  const updated = [
    ...new Set(read.flatMap(({ ops }) => ops.filter((op) => op.op === 'update').map((op) => op.id))),
  ];
  const inSnapshot = new Set<string>();
  for (let start = 0; start < updated.length; start += APPLY_BATCH) {
    for (const id of (await target.get(updated.slice(start, start + APPLY_BATCH))).keys()) inSnapshot.add(id);
  }
  // Presence of each id as the messages applied so far leave it; unknown ids fall back to the snapshot.
  const present = new Map<string, boolean>();
  const exists = (id: string, local: Map<string, boolean>) =>
    local.get(id) ?? present.get(id) ?? inSnapshot.has(id);

  for (const { message, ops } of read) {
    const local = new Map<string, boolean>();
    let dimension = plan.dimension;
    let reason: string | undefined;
    const missing: string[] = [];
    for (const op of ops) {
      if (op.op === 'upsert') {
        dimension ??= op.embedding.length;
        if (op.embedding.length !== dimension) {
          reason = `record "${op.id}" has dimension ${op.embedding.length}, but collection "${target.name}" has dimension ${dimension}`;
          break;
        }
        local.set(op.id, true);
      } else if (op.op === 'delete') {
        local.set(op.id, false);
      } else if (!exists(op.id, local)) {
        missing.push(op.id);
      }
    }
    if (!reason && missing.length > 0) {
      reason = `updateMetadata: no record ${missing.map((id) => `"${id}"`).join(', ')} in collection "${target.name}"`;
    }
    if (reason) {
      plan.failed.push({ messageId: message.messageId, reason });
      continue;
    }
    for (const [id, isPresent] of local) present.set(id, isPresent);
    plan.dimension = dimension;
    plan.ops.push(...ops);
    plan.applied.push(message.messageId);
  }
  return plan;
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
