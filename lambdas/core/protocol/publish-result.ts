import type { Config } from '../config/config.ts';
import { BadInputError } from '../errors.ts';
import type { NewChange } from './change-sets.ts';
import type { Committed } from './commit.ts';
import { versionWith } from './pointer.ts';
import type { BuildReport } from './publication.ts';

/** What a publish reports: where its change landed, and what the commit, the wait and any builds cost. */
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

/** What one publish measured on its way: commit, wait, the single-phase lock, the builds it did. */
export class Tracker {
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

export function result(
  deps: { config: Pick<Config, 'lockStrategy'> },
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

export const round = (ms: number) => Math.round(ms * 100) / 100;
