import type { Config } from '../config/config.ts';
import { StorageError } from '../errors.ts';
import { validateApplied } from '../records/apply-ops.ts';
import type { AppliedRecords, EntryOutcome } from './applied.ts';
import type { ChangeSetStore } from './change-sets.ts';
import { cleanup } from './cleanup.ts';
import type { CommitLog, LogEntry } from './commit-log.ts';
import { foldEntries, withinPrefetchBudget } from './fold.ts';
import type { HeldLock, LeaseLock } from './lock.ts';
import type { PointerStore } from './pointer.ts';
import type { Clock, SnapshotBuilder, SnapshotObjects, Workspace } from './ports.ts';
import { discardPrepared, type PreparedWorkspace } from './prepared-workspace.ts';
import { publishFold } from './publish-fold.ts';

/**
 * Folding publication: whoever holds a collection's build lease takes the live snapshot, applies
 * every committed-but-unpublished log entry in order (off any lock: no commit waits for the
 * lease), uploads the result to a new immutable key and swaps the pointer with one conditional
 * write. It keeps its copy open and folds again while entries keep arriving. If the pointer moved
 * under it (its lease lapsed and another builder published), it replays only the entries in
 * between onto its still-open copy; it never rebuilds.
 */
export type FaultPoint = 'after-changeset' | 'after-append' | 'mid-build' | 'after-upload' | 'after-swap';
export type PublishPhase = 'commit' | 'wait' | 'build' | 'swap' | 'cleanup';

export interface PhaseDetail {
  /** Records applied so far of the records in the entries being folded (phase `build`). */
  applied?: number;
  total?: number;
  entries?: number;
}

export interface PublicationDeps {
  pointers: PointerStore;
  log: CommitLog;
  applied: AppliedRecords;
  changeSets: ChangeSetStore;
  builder: SnapshotBuilder;
  snapshots: SnapshotObjects;
  buildLease: LeaseLock;
  clock: Clock;
  config: Pick<
    Config,
    | 'snapshotRetention'
    | 'snapshotRetentionMinutes'
    | 'ioConcurrency'
    | 'maxCasRetries'
    | 'buildBudgetSeconds'
  >;
  /** Test-only crash points. */
  faults?: (point: FaultPoint) => Promise<void> | void;
  onPhase?: (phase: PublishPhase, detail?: PhaseDetail) => void;
  /** Entries (or their messages) that did not apply: its committer learns it if it waits; this logs and counts it. */
  onRejected?: (collection: string, outcome: EntryOutcome) => void;
}

export interface BuildReport {
  folds: number;
  entries: number;
  /** ms from each folded entry's commit to its publication. */
  lagMs: number[];
  /** Lost swaps that were replayed onto the open copy. */
  replays: number;
  deletedObjects: number;
  leaseMs: number;
}

/**
 * Folds into publications until nothing is pending, the lease is gone or the budget is spent.
 * `prepared`: a copy opened ahead for the pointer as it was; used if the pointer has not moved since.
 */
export async function buildUnderLease(
  deps: PublicationDeps,
  held: HeldLock,
  collection: string,
  prepared?: PreparedWorkspace,
): Promise<BuildReport> {
  const report: BuildReport = { folds: 0, entries: 0, lagMs: [], replays: 0, deletedObjects: 0, leaseMs: 0 };
  const started = deps.clock.now();
  const deadline = started + deps.config.buildBudgetSeconds * 1000;
  let base = await deps.pointers.read(collection);
  let workspace: Workspace | undefined;
  /** The log position the open copy is at (the pointer may be behind it after a lost swap, or ahead). */
  let copySeq = base.publishedSeq;
  const prefetched: string[] = [];
  try {
    while (held.valid() && deps.clock.now() < deadline) {
      let entries: LogEntry[];
      let fold: Awaited<ReturnType<typeof foldEntries>>;
      let countBefore: number;
      let applied = 0;
      try {
        if (workspace && copySeq < base.publishedSeq) {
          // Another builder published past our copy: replay only the entries in between.
          const between = await deps.log.pending(collection, copySeq);
          await foldOnto(
            deps,
            workspace,
            collection,
            between.filter((entry) => entry.seq <= base.publishedSeq),
            base.dimension,
          );
          copySeq = base.publishedSeq;
          report.replays++;
        }
        entries = await deps.log.pending(collection, Math.max(base.publishedSeq, copySeq));
        if (entries.length === 0) break;
        if (!workspace) {
          const ahead = prepared?.base.revision === base.revision ? prepared : undefined;
          if (!ahead) await discardPrepared(prepared);
          prepared = undefined;
          // The records arrive while the copy opens, instead of after it.
          const fetching = withinPrefetchBudget(entries);
          prefetched.push(...fetching);
          void deps.changeSets.prefetch(fetching);
          workspace = ahead ? await ahead.workspace : await deps.builder.open(base);
          // Opening the snapshot takes a while: what was committed meanwhile goes into this build too.
          entries = await untilCommitsPause(
            deps,
            collection,
            Math.max(base.publishedSeq, copySeq),
            entries.length,
          );
        }
        const target = await workspace.target();
        countBefore = await target.count();
        if (copySeq === base.publishedSeq && countBefore !== base.recordCount) {
          throw new StorageError(
            `snapshot ${base.snapshotKey} (version ${base.version}) holds ${countBefore} records, but its pointer says ${base.recordCount}`,
          );
        }
        const total = entries.reduce((sum, entry) => sum + entry.records, 0);
        deps.onPhase?.('build', { applied, total, entries: entries.length });
        fold = await foldEntries(
          {
            changeSets: deps.changeSets,
            applied: deps.applied,
            ioConcurrency: deps.config.ioConcurrency,
            onApplied: (ops) => {
              applied += ops;
              deps.onPhase?.('build', { applied, total, entries: entries.length });
            },
          },
          target,
          collection,
          entries,
          base.dimension,
        );
      } catch (error) {
        // A builder whose lease lapsed finds the change sets of entries another builder already
        // published deleted: its copy is half-applied, so it starts again from the new head.
        const head = await deps.pointers.read(collection);
        if (
          !(error instanceof StorageError) ||
          (head.revision === base.revision && head.publishedSeq <= copySeq)
        ) {
          throw error;
        }
        await workspace?.close();
        workspace = undefined;
        base = head;
        copySeq = head.publishedSeq;
        continue;
      }
      await deps.faults?.('mid-build');
      const recordCount = await validateApplied(await workspace.target(), countBefore, fold.stats);
      copySeq = fold.lastSeq;
      const published = await publishFold(deps, held, workspace, base, entries, fold, recordCount);
      if (!published.swapped) {
        base = published.head;
        continue;
      }
      base = published.pointer;
      for (const outcome of fold.outcomes) {
        if (outcome.status === 'rejected' || (outcome.failedMessages?.length ?? 0) > 0)
          deps.onRejected?.(collection, outcome);
      }
      report.folds++;
      report.entries += entries.length;
      const now = deps.clock.now();
      for (const entry of entries) report.lagMs.push(now - entry.committedAt);
      await deps.faults?.('after-swap');
      deps.onPhase?.('cleanup');
      report.deletedObjects += await cleanup(deps, base);
    }
  } finally {
    deps.changeSets.dropPrefetched(prefetched);
    await discardPrepared(prepared);
    await workspace?.close();
    report.leaseMs = deps.clock.now() - started;
  }
  return report;
}

/**
 * Group commit: when entries were appended while the copy opened (`seenBefore` were pending
 * before it) and the newest is younger than COMMITS_PAUSE_MS, commits are still arriving
 * (publishers that started together, committing beside this builder's server start), so the
 * first fold waits for a pause in them, up to GROUP_COMMIT_MAX_MS: an entry that misses the fold
 * costs a second one (a server restart, its insert and a whole upload). Ages are measured against
 * the committers' clocks: a skewed clock costs at most the bound, never an entry.
 */
export const COMMITS_PAUSE_MS = 75;
export const GROUP_COMMIT_MAX_MS = 300;

async function untilCommitsPause(
  deps: PublicationDeps,
  collection: string,
  afterSeq: number,
  seenBefore: number,
): Promise<LogEntry[]> {
  const until = deps.clock.now() + GROUP_COMMIT_MAX_MS;
  for (let seen = seenBefore; ; ) {
    const entries = await deps.log.pending(collection, afterSeq);
    if (entries.length <= seen) return entries;
    seen = entries.length;
    const newest = Math.max(...entries.map((entry) => entry.committedAt));
    const quietFor = deps.clock.now() - newest;
    if (quietFor >= COMMITS_PAUSE_MS || deps.clock.now() >= until) return entries;
    await deps.clock.sleep(Math.min(COMMITS_PAUSE_MS - Math.max(quietFor, 0), until - deps.clock.now()));
  }
}

async function foldOnto(
  deps: PublicationDeps,
  workspace: Workspace,
  collection: string,
  entries: LogEntry[],
  dimension: number | null,
): Promise<void> {
  if (entries.length === 0) return;
  await foldEntries(
    { changeSets: deps.changeSets, applied: deps.applied, ioConcurrency: deps.config.ioConcurrency },
    await workspace.target(),
    collection,
    entries,
    dimension,
  );
}

/**
 * Leaves no entry behind: after a builder lets its lease go, it looks once more; an entry
 * appended before that look is its to publish, and one appended after it finds the lease free.
 * So every committed entry is published by someone, even when its committer did not wait.
 * `justCommitted`: the caller appended an entry a moment ago, so the first look is skipped (a
 * builder that finds it already published lets the lease go at once).
 */
export async function settle(
  deps: PublicationDeps,
  collection: string,
  { justCommitted = false } = {},
): Promise<BuildReport[]> {
  const reports: BuildReport[] = [];
  for (let look = !justCommitted; ; look = true) {
    if (look) {
      const head = await deps.pointers.read(collection);
      if ((await deps.log.pending(collection, head.publishedSeq, 1)).length === 0) return reports;
    }
    const held = await deps.buildLease.tryHold(collection);
    if (!held) return reports; // its holder settles after it lets go
    reports.push(await buildThenRelease(deps, held, collection));
  }
}

/** One build under a lease just taken, let go afterwards whatever happens. */
export async function buildThenRelease(
  deps: PublicationDeps,
  held: HeldLock,
  collection: string,
  prepared?: PreparedWorkspace,
): Promise<BuildReport> {
  try {
    return await buildUnderLease(deps, held, collection, prepared);
  } finally {
    await held.release();
  }
}
