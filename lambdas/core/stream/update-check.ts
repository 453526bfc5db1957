import type { StreamChange } from '../protocol/change-sets.ts';
import { planMessages } from '../protocol/message-plan.ts';
import type { Pointer } from '../protocol/pointer.ts';
import type { PublishDeps } from '../protocol/publish.ts';
import type { RecordTarget, StoredRecord } from '../records/record-target.ts';

/**
 * Whether the records `updateMetadata` messages name will exist when they apply, decided at
 * commit time from the live snapshot's id list (stored beside it) and the pending entries of the
 * log, so such a batch is checked and acknowledged without waiting for a build. The fold stays
 * the authority: a delete committed by someone else between this check and our append makes the
 * update fail when it applies, and that failure is logged and counted (MessagesRejected).
 * Returns null when it cannot decide cheaply (no id list for the snapshot, a pending run whose
 * records would have to be read): then the batch waits for its publication instead.
 */
export async function checkUpdates(
  deps: PublishDeps,
  collection: string,
  head: Pointer,
  changes: StreamChange[],
): Promise<{ ok: StreamChange[]; failed: { messageId: string; reason: string }[] } | null> {
  const live = head.snapshotKey ? await deps.snapshots.getIds(head.snapshotKey) : new Set<string>();
  if (!live) return null;
  const pending = await deps.log.pending(collection, head.publishedSeq);
  if (pending.some((entry) => entry.kind === 'ops')) return null;
  const present = new Map<string, boolean>();
  for (const entry of pending) {
    const body = await deps.changeSets.read(entry.changeSet);
    if (body.kind !== 'messages') return null;
    for (const op of body.messages.flatMap((message) => message.ops)) {
      if (op.op === 'upsert') present.set(op.id, true);
      else if (op.op === 'delete') present.set(op.id, false);
    }
  }
  const exists = (id: string) => present.get(id) ?? live.has(id);
  const plan = await planMessages(presenceOnly(collection, exists), changes, head.dimension);
  const failed = new Set(plan.failed.map((failure) => failure.messageId));
  return { ok: changes.filter((change) => !failed.has(change.messageId)), failed: plan.failed };
}

/** A record target that only answers which ids exist: all a plan asks of it. */
function presenceOnly(name: string, exists: (id: string) => boolean): RecordTarget {
  const unused = () => Promise.reject(new Error('presence-only target'));
  return {
    name,
    get: async (ids) => new Map(ids.filter(exists).map((id) => [id, { metadata: null } as StoredRecord])),
    count: unused,
    upsert: unused,
    delete: unused,
    update: unused,
    nearest: unused,
    allIds: unused,
  };
}
