import type { Config } from '../config/config.ts';
import { PublicationPendingError } from '../errors.ts';
import type { NewChange } from './change-sets.ts';
import { type Committed, commit } from './commit.ts';
import type { LeaseLock } from './lock.ts';
import type { Pointer } from './pointer.ts';
import type { ItemStore } from './ports.ts';
import { discardPrepared, prepareWorkspace } from './prepared-workspace.ts';
import {
  type BuildReport,
  buildThenRelease,
  buildUnderLease,
  type PhaseDetail,
  type PublicationDeps,
  settle,
} from './publication.ts';
import { type PublishResult, result, round, Tracker } from './publish-result.ts';

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

/**
 * The longest pause between two looks at the pointer while waiting: a waiter notices its
 * publication within 50 ms of the swap. At 500 ms, 4 runs waited 0.2-0.4 s past their swap; at
 * 100 ms the last of 3 waiters still came ~75 ms after it in a 1.6 s fold of 4 runs.
 */
export const WAIT_POLL_MAX_MS = 50;

/**
 * How often a waiter looks at the build lease after its first look. A builder never leaves an
 * entry appended before it lets go of the lease unpublished (`settle`), so a waiter needs the
 * lease only to take over from a builder that died or lapsed: a look a second is enough for that,
 * and a look at the pointer alone is one read instead of two. Every look costs the builder CPU
 * where waiters share its machine, and costs read capacity on AWS.
 */
export const LEASE_LOOK_MS = 1000;

/**
 * Waits until the pointer passes entry `seq`, folding the log itself whenever the build lease is
 * free (or its holder's lease lapsed). Gives up with a retryable PublicationPendingError after
 * PUBLISH_WAIT_SECONDS: the entry stays committed, and the retry waits for it again.
 */
async function awaitPublication(deps: PublishDeps, collection: string, seq: number, tracker = new Tracker()) {
  const started = deps.clock.now();
  const deadline = started + deps.config.publishWaitSeconds * 1000;
  let pause = 20;
  let leaseLookedAt = Number.NEGATIVE_INFINITY;
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
    if (deps.clock.now() - leaseLookedAt >= LEASE_LOOK_MS) {
      leaseLookedAt = deps.clock.now();
      const held = await deps.buildLease.tryHold(collection);
      if (held) {
        tracker.builds.push(await buildThenRelease(deps, held, collection));
        pause = 20;
        leaseLookedAt = Number.NEGATIVE_INFINITY; // unpublished after our own build: look again at once
        continue;
      }
    }
    if (deps.clock.now() >= deadline) {
      throw new PublicationPendingError(
        `"${collection}": entry ${seq} is committed but not yet published after ${deps.config.publishWaitSeconds}s (published up to ${head.publishedSeq}); retry to keep waiting`,
      );
    }
    await deps.clock.sleep(pause * (0.5 + Math.random() / 2));
    pause = Math.min(pause * 2, WAIT_POLL_MAX_MS);
  }
}

export type { PhaseDetail, PublishResult };
