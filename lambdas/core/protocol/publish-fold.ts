import { changedAnything } from '../records/apply-ops.ts';
import type { LogEntry } from './commit-log.ts';
import type { foldEntries } from './fold.ts';
import type { HeldLock } from './lock.ts';
import { advancedPointer, nextPointer, type Pointer } from './pointer.ts';
import type { Workspace } from './ports.ts';
import type { PublicationDeps } from './publication.ts';
import { isGarbage } from './retention.ts';

export type Published = { swapped: true; pointer: Pointer } | { swapped: false; head: Pointer };

/**
 * Records what the fold applied (idempotency items, outcomes), uploads the copy and swaps. A swap
 * lost to a builder that got less far than us is retried on top of its pointer (our copy already
 * contains everything it published); one that got further leaves us to replay.
 */
export async function publishFold(
  deps: PublicationDeps,
  held: HeldLock,
  workspace: Workspace,
  base: Pointer,
  entries: LogEntry[],
  fold: Awaited<ReturnType<typeof foldEntries>>,
  recordCount: number,
): Promise<Published> {
  await deps.applied.record(base.collection, fold.applied, fold.outcomes, deps.clock.now());
  const runs = entries.filter((entry) => entry.runId !== undefined);
  const label = runs.length === 1 && entries.length === 1 ? runs[0]!.runId! : `fold-${fold.lastSeq}`;
  let head = base;
  for (let attempt = 0; attempt <= deps.config.maxCasRetries; attempt++) {
    if (!held.valid()) return { swapped: false, head: await deps.pointers.read(base.collection) };
    deps.onPhase?.('swap');
    const now = new Date(deps.clock.now());
    let key: string | null = null;
    let next: Pointer;
    if (changedAnything(fold.stats)) {
      key = await workspace.upload(head.version + 1, label);
      await deps.snapshots.putIds(key, await workspace.ids());
      await deps.faults?.('after-upload');
      next = nextPointer(
        head,
        {
          key,
          recordCount,
          dimension: fold.dimension,
          runId: runs.length === 1 && entries.length === 1 ? runs[0]!.runId! : null,
          seq: fold.lastSeq,
          entries: entries.length,
        },
        { versions: deps.config.snapshotRetention, minutes: deps.config.snapshotRetentionMinutes },
        now,
      );
    } else {
      next = advancedPointer(head, fold.lastSeq, now);
    }
    const swap = await deps.pointers.swap(head, next);
    if (swap.swapped) return { swapped: true, pointer: next };
    if (key && isGarbage(key, swap.head, deps.clock.now(), deps.config.snapshotRetentionMinutes)) {
      await deps.snapshots.deleteKeys([key]);
    }
    head = swap.head;
    if (head.publishedSeq >= fold.lastSeq) return { swapped: false, head };
    // The pointer moved but not past our copy: what it published, we already hold.
  }
  return { swapped: false, head: await deps.pointers.read(base.collection) };
}
