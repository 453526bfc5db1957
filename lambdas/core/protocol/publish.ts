import type { Config } from '../config/config.ts';
import { BadInputError, PublicationPendingError } from '../errors.ts';
import type { EntryOutcome } from './applied.ts';
import type { NewChange, WrittenChangeSet } from './change-sets.ts';
import { claimDimension } from './dimension.ts';
import type { LeaseLock } from './lock.ts';
import { type Pointer, versionWith } from './pointer.ts';
import type { ItemStore } from './ports.ts';
import {
  type BuildReport,
  buildThenRelease,
  buildUnderLease,
  discardPrepared,
  type PhaseDetail,
  type PublicationDeps,
  prepareWorkspace,
  settle,
} from './publication.ts';

export { cleanup } from './cleanup.ts';
export type { FaultPoint, PublishPhase } from './publication.ts';

/**
 * The publish protocol (docs/architecture.md, "The publish protocol"):
 *   1 commit   write the change set (an immutable object), append a log entry with one conditional write
 *   2 publish  whoever holds the build lease folds every pending entry into one new snapshot and
 *              swaps the pointer (publication.ts); a committer waits for the pointer to pass its
 *              entry, or takes the lease when it is free (or lapsed)
 * A run reports `published` only once its records are in the live snapshot.
 * `single-phase` (the old design, kept as the benchmark baseline) holds the collection lock from
 * before the commit until its publication: every writer waits behind every build.
 */
export interface PublishDeps extends PublicationDeps {
  items: ItemStore;
  lock: LeaseLock;
  config: PublicationDeps['config'] & Pick<Config, 'lockStrategy' | 'publishWaitSeconds'>;
}

export interface PublishResult {
  collection: string;
  runId: string | null;
  /** `no-change`: the fold that took our entry changed nothing, so no new version was needed. */
  status: 'published' | 'already-applied' | 'no-change';
  strategy: Config['lockStrategy'];
  seq: number;
  previousVersion: number;
  snapshotVersion: number;
  snapshotKey: string | null;
  recordCount: number;
  dimension: number | null;
  /** Writing the change set and appending the entry. */
  commitMs: number;
  /** Sequence numbers lost to other writers while appending (normal under concurrency, cheap). */
  casRetries: number;
  /** Pointer swaps this publisher's builds lost and replayed (a builder whose lease lapsed). */
  swapReplays: number;
  /** From the append until the pointer passed the entry. */
  waitMs: number;
  /** The collection lock (single-phase only: a log commit waits behind no lock). */
  lockAcquireMs: number;
  lockHoldMs: number;
  maxLockHoldMs: number;
  lockCollisions: number;
  /** Folds this publisher did itself while holding the build lease, and how long it held it. */
  builds: number;
  buildLeaseMs: number;
  publishMs: number;
  failedMessages: { messageId: string; reason: string }[];
  deletedObjects: number;
}

export async function publish(
  deps: PublishDeps,
  collection: string,
  change: NewChange,
): Promise<PublishResult> {
  const started = performance.now();
  const tracker = new Tracker();
  if (deps.config.lockStrategy === 'single-phase') {
    const held = await deps.lock.acquire(collection);
    tracker.lock(held.acquireMs, held.collisions);
    let committed: Committed;
    try {
      committed = await commit(deps, collection, change, tracker);
      await committed.headRaised;
      if (committed.pending) tracker.builds.push(await buildUnderLease(deps, held, collection));
    } finally {
      tracker.hold(await held.release());
    }
    // A lock lost during the build (a holder with a lagging clock) leaves the entry to the build lease.
    const done = committed.pending
      ? await awaitPublication(deps, collection, committed.seq, tracker)
      : committed;
    return result(deps, collection, change, done, tracker, started);
  }
  const head = await deps.pointers.read(collection);
  // A speculative try for the build lease while committing: the winner opens its copy of the live
  // snapshot meanwhile. Only a head start: the wait below takes the lease whenever it is free.
  const early = deps.buildLease.tryHold(collection).then(
    (held) => held && { held, prepared: prepareWorkspace(deps, head) },
    () => null,
  );
  const letGo = async (won: Awaited<typeof early>) => {
    await discardPrepared(won?.prepared);
    await won?.held.release();
  };
  let committed: Committed;
  try {
    committed = await commit(deps, collection, change, tracker, head);
  } catch (error) {
    await letGo(await early);
    throw error;
  }
  const won = await early;
  if (won && committed.pending) {
    tracker.builds.push(await buildThenRelease(deps, won.held, collection, won.prepared));
  } else await letGo(won);
  if (!committed.pending) return result(deps, collection, change, committed, tracker, started);
  const [waited] = await Promise.all([
    awaitPublication(deps, collection, committed.seq, tracker),
    committed.headRaised,
  ]);
  tracker.builds.push(...(await settle(deps, collection)));
  return result(deps, collection, change, waited, tracker, started);
}

/**
 * Commits a stream batch without waiting for its publication (it is durable in the log); folds it
 * if nobody else is. `head`: the pointer the caller just read (its publishedSeq is the floor to
 * append above, its dimension the one to check against).
 */
export async function commitAndSettle(
  deps: PublishDeps,
  collection: string,
  change: NewChange,
  head?: Pointer,
): Promise<{ seq: number; commitMs: number; casRetries: number; builds: BuildReport[] }> {
  const tracker = new Tracker();
  const committed = await commit(deps, collection, change, tracker, head);
  // Our entry was appended a moment ago: unless it is published already, there is work to settle.
  const [builds] = await Promise.all([
    committed.pending ? settle(deps, collection, { justCommitted: true }) : [],
    committed.headRaised,
  ]);
  return { seq: committed.seq, commitMs: round(tracker.commitMs), casRetries: tracker.conflicts, builds };
}

export { awaitPublication };

interface Committed {
  seq: number;
  /** The log head hint being raised after our append (never fails). */
  headRaised?: Promise<void>;
  /** false: the change had already been applied by an earlier entry (`head` shows where). */
  pending: boolean;
  head?: Pointer;
  outcome?: EntryOutcome;
}

async function commit(
  deps: PublishDeps,
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
  deps: PublishDeps,
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

/**
 * Waits until the pointer passes entry `seq`, folding the log itself whenever the build lease is
 * free (or its holder's lease lapsed). Gives up with a retryable PublicationPendingError after
 * PUBLISH_WAIT_SECONDS: the entry stays committed, and the retry waits for it again.
 */
async function awaitPublication(deps: PublishDeps, collection: string, seq: number, tracker = new Tracker()) {
  const started = deps.clock.now();
  const deadline = started + deps.config.publishWaitSeconds * 1000;
  let pause = 20;
  deps.onPhase?.('wait');
  for (;;) {
    const head = await deps.pointers.read(collection);
    if (head.publishedSeq >= seq) {
      tracker.waitMs = deps.clock.now() - started;
      return {
        seq,
        pending: false,
        head,
        outcome: await deps.applied.outcome(collection, seq),
      } satisfies Committed;
    }
    const held = await deps.buildLease.tryHold(collection);
    if (held) {
      tracker.builds.push(await buildThenRelease(deps, held, collection));
      pause = 20;
      continue;
    }
    if (deps.clock.now() >= deadline) {
      throw new PublicationPendingError(
        `"${collection}": entry ${seq} is committed but not yet published after ${deps.config.publishWaitSeconds}s (published up to ${head.publishedSeq}); retry to keep waiting`,
      );
    }
    await deps.clock.sleep(pause * (0.5 + Math.random() / 2));
    pause = Math.min(pause * 2, 500);
  }
}

class Tracker {
  commitMs = 0;
  conflicts = 0;
  waitMs = 0;
  acquireMs = 0;
  holdMs = 0;
  collisions = 0;
  builds: BuildReport[] = [];
  lock(acquireMs: number, collisions: number) {
    this.acquireMs += acquireMs;
    this.collisions += collisions;
  }
  hold(ms: number) {
    this.holdMs += ms;
  }
}

function result(
  deps: PublishDeps,
  collection: string,
  change: NewChange,
  committed: Committed,
  tracker: Tracker,
  started: number,
): PublishResult {
  const head = committed.head!;
  const outcome = committed.outcome ?? { seq: committed.seq, status: 'applied' as const };
  if (outcome.status === 'rejected') throw new BadInputError(`"${collection}": ${outcome.reason}`);
  const version = versionWith(head, committed.seq);
  const status: PublishResult['status'] =
    outcome.status === 'duplicate' ? 'already-applied' : version ? 'published' : 'no-change';
  const snapshotVersion = version?.version ?? head.version;
  return {
    collection,
    runId: change.kind === 'messages' ? null : change.runId,
    status,
    strategy: deps.config.lockStrategy,
    seq: committed.seq,
    previousVersion: status === 'published' ? snapshotVersion - 1 : snapshotVersion,
    snapshotVersion,
    snapshotKey: version?.key ?? head.snapshotKey,
    recordCount: version?.recordCount ?? head.recordCount,
    dimension: head.dimension,
    commitMs: round(tracker.commitMs),
    casRetries: tracker.conflicts,
    swapReplays: tracker.builds.reduce((sum, build) => sum + build.replays, 0),
    waitMs: round(tracker.waitMs),
    lockAcquireMs: round(tracker.acquireMs),
    lockHoldMs: round(tracker.holdMs),
    maxLockHoldMs: round(tracker.holdMs),
    lockCollisions: tracker.collisions,
    builds: tracker.builds.reduce((sum, build) => sum + build.folds, 0),
    buildLeaseMs: round(tracker.builds.reduce((sum, build) => sum + build.leaseMs, 0)),
    publishMs: round(performance.now() - started),
    failedMessages: outcome.failedMessages ?? [],
    deletedObjects: tracker.builds.reduce((sum, build) => sum + build.deletedObjects, 0),
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export type { PhaseDetail };
