import pLimit from 'p-limit';
import type { StreamChange } from '../protocol/change-sets.ts';
import type { LogEntry } from '../protocol/commit-log.ts';
import { planMessages } from '../protocol/message-plan.ts';
import type { Pointer } from '../protocol/pointer.ts';
import type { PublishDeps } from '../protocol/publish.ts';
import { type Presence, presenceOfOps } from '../records/presence.ts';
import type { RecordTarget, StoredRecord } from '../records/record-target.ts';

/**
 * Whether the records `updateMetadata` messages name will exist when they apply, decided at
 * commit time from the live snapshot's id list (stored beside it) and the pending entries of the
 * log, so such a batch is checked and acknowledged without waiting for a build. The fold stays
 * the authority: a delete committed by someone else between this check and our append makes the
 * update fail when it applies, and that failure is logged and counted (MessagesRejected).
 * A pending run's entry is judged by the presence stored beside its change set, never its records.
 * Returns null when it cannot decide cheaply (no id list for the snapshot, a pending entry with no
 * presence stored): then the batch waits for its publication instead.
 */
export async function checkUpdates(
  deps: PublishDeps,
  collection: string,
  head: Pointer,
  changes: StreamChange[],
): Promise<{ ok: StreamChange[]; failed: { messageId: string; reason: string }[] } | null> {
  const [live, pending] = await Promise.all([
    head.snapshotKey ? deps.snapshots.getIds(head.snapshotKey) : new Set<string>(),
    deps.log.pending(collection, head.publishedSeq),
  ]);
  if (!live) return null;
  const limit = pLimit(deps.config.ioConcurrency);
  const effects = await Promise.all(pending.map((entry) => limit(() => presenceOf(deps, entry))));
  if (effects.some((effect) => effect === null)) return null;
  const exists = (id: string) => {
    for (let index = effects.length - 1; index >= 0; index--) {
      const latest = effects[index]!.get(id); // the latest entry naming the id decides
      if (latest !== undefined) return latest;
    }
    return live.has(id);
  };
  const plan = await planMessages(presenceOnly(collection, exists), changes, head.dimension);
  const failed = new Set(plan.failed.map((failure) => failure.messageId));
  return { ok: changes.filter((change) => !failed.has(change.messageId)), failed: plan.failed };
}

/** Which ids a pending entry leaves present or absent once it applies; null when that is not stored. */
async function presenceOf(deps: PublishDeps, entry: LogEntry): Promise<Presence | null> {
  if (entry.kind === 'ops') return deps.changeSets.presence(entry.changeSet);
  const body = await deps.changeSets.read(entry.changeSet);
  if (body.kind !== 'messages') return null;
  return presenceOfOps(body.messages.flatMap((message) => message.ops));
}

/** A record target that only answers which ids exist: all a plan asks of it. */
function presenceOnly(name: string, exists: (id: string) => boolean): RecordTarget {
  const unused = () => Promise.reject(new Error('presence-only target'));
  return {
    name,
    get: async (ids) => new Map(ids.filter(exists).map((id) => [id, { metadata: null } as StoredRecord])),
    count: unused,
    upsert: unused,
    insert: unused,
    delete: unused,
    update: unused,
    nearest: unused,
    allIds: unused,
  };
}
