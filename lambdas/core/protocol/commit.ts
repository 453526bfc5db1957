import type { EntryOutcome } from './applied.ts';
import type { NewChange, WrittenChangeSet } from './change-sets.ts';
import { claimDimension } from './dimension.ts';
import type { Pointer } from './pointer.ts';
import type { ItemStore } from './ports.ts';
import type { PublicationDeps } from './publication.ts';
import type { Tracker } from './publish-result.ts';

/**
 * Step 1 of the publish protocol: write the change set (an immutable object), then append its
 * entry to the collection's log with one conditional write. A run already applied or already
 * committed (a retry, a redrive days later) commits nothing and finds its earlier entry.
 */
export type CommitDeps = PublicationDeps & { items: ItemStore };

export interface Committed {
  seq: number;
  /** The log head hint being raised after our append (never fails). */
  headRaised?: Promise<void>;
  /** false: the change had already been applied by an earlier entry (`head` shows where). */
  pending: boolean;
  head?: Pointer;
  outcome?: EntryOutcome;
}

export async function commit(
  deps: CommitDeps,
  collection: string,
  change: NewChange,
  tracker: Tracker,
  known?: Pointer,
): Promise<Committed> {
  const started = deps.clock.now();
  deps.onPhase?.('commit');
  const head = known ?? (await deps.pointers.read(collection));
  if (change.kind !== 'messages') {
    // A run that comes back (a retry, a redrive days later) finds where it was applied or committed.
    const earlier = await deps.applied.lookup(collection, [change.runId], []);
    const appliedAt = earlier.runs.get(change.runId);
    if (appliedAt !== undefined && head.publishedSeq >= appliedAt) {
      return {
        seq: appliedAt,
        pending: false,
        head,
        outcome: { seq: appliedAt, status: 'duplicate', duplicateOf: appliedAt },
      };
    }
    const pending = await deps.log.pending(collection, head.publishedSeq);
    const mine = appliedAt ?? pending.find((entry) => entry.runId === change.runId)?.seq;
    if (mine !== undefined) return { seq: mine, pending: true };
  }
  // The head hint is read while the change set is written: one round trip less on the commit path.
  const hint = deps.log.headHint(collection);
  const written = await writeChangeSet(deps, collection, change, head.dimension);
  await deps.faults?.('after-changeset');
  const { entry, conflicts, headRaised } = await deps.log.append(
    collection,
    {
      changeSet: written,
      label: change.label,
      ...(change.kind !== 'messages' && { runId: change.runId }),
      ...(change.kind === 'messages' && { messageIds: change.messages.map((message) => message.messageId) }),
    },
    head.publishedSeq,
    hint,
  );
  await deps.faults?.('after-append');
  tracker.commitMs = deps.clock.now() - started;
  tracker.conflicts = conflicts;
  return { seq: entry.seq, pending: true, headRaised };
}

async function writeChangeSet(
  deps: CommitDeps,
  collection: string,
  change: NewChange,
  known: number | null,
): Promise<WrittenChangeSet> {
  if (change.kind === 'messages') {
    const written = await deps.changeSets.writeMessages(collection, change.label, change.messages);
    await claimDimension(
      deps.items,
      deps.clock,
      collection,
      written.dimension,
      `stream batch ${change.label}`,
      known,
    );
    return written;
  }
  if (change.kind === 'segments') {
    const dimension = await change.dimension();
    await claimDimension(deps.items, deps.clock, collection, dimension, `run "${change.runId}"`, known);
    return deps.changeSets.copySegments(collection, change.label, change.segments, dimension);
  }
  const opened = await change.open();
  await claimDimension(deps.items, deps.clock, collection, opened.dimension, `run "${change.runId}"`, known);
  return deps.changeSets.writeOps(collection, change.label, opened.ops, opened.dimension);
}
