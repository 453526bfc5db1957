import { APPLY_BATCH } from '../records/apply-ops.ts';
import type { RecordTarget } from '../records/record-target.ts';
import type { RecordOp } from '../records/records.ts';
import type { StreamChange } from './change-sets.ts';

/**
 * Stream messages applied whole or not at all, in order: each message is checked against the
 * collection as the messages before it leave it (its dimension; the records its updates name).
 * A message that fails a check changes nothing; the others still apply.
 */
export interface MessagePlan {
  ops: RecordOp[];
  dimension: number | null;
  applied: string[];
  failed: { messageId: string; reason: string }[];
}

export async function planMessages(
  target: RecordTarget,
  messages: StreamChange[],
  collectionDimension: number | null,
): Promise<MessagePlan> {
  const plan: MessagePlan = { ops: [], dimension: collectionDimension, applied: [], failed: [] };
  const updated = [
    ...new Set(messages.flatMap(({ ops }) => ops.filter((op) => op.op === 'update').map((op) => op.id))),
  ];
  const inSnapshot = new Set<string>();
  for (let start = 0; start < updated.length; start += APPLY_BATCH) {
    for (const id of (await target.get(updated.slice(start, start + APPLY_BATCH))).keys()) inSnapshot.add(id);
  }
  // Presence of each id as the messages applied so far leave it; unknown ids fall back to the snapshot.
  const present = new Map<string, boolean>();
  const exists = (id: string, local: Map<string, boolean>) =>
    local.get(id) ?? present.get(id) ?? inSnapshot.has(id);

  for (const { messageId, ops } of messages) {
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
      plan.failed.push({ messageId, reason });
      continue;
    }
    for (const [id, isPresent] of local) present.set(id, isPresent);
    plan.dimension = dimension;
    plan.ops.push(...ops);
    plan.applied.push(messageId);
  }
  return plan;
}
