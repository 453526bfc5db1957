import pLimit from 'p-limit';
import { type ApplyStats, applyOps, emptyStats } from '../records/apply-ops.ts';
import { foldAndSort } from '../records/changes.ts';
import type { RecordTarget } from '../records/record-target.ts';
import type { RecordOp } from '../records/records.ts';
import { mergeSortedStreams } from '../records/segments.ts';
import type { AppliedRecords, EntryOutcome } from './applied.ts';
import type { ChangeSetStore, StreamChange } from './change-sets.ts';
import type { LogEntry } from './commit-log.ts';
import { planMessages } from './message-plan.ts';

/**
 * Folding publication, the apply step: every committed-but-unpublished entry applied onto one
 * open copy of the snapshot, in log order. Consecutive run entries (blind writes, sorted by id)
 * go through one streaming k-way merge, a later entry winning for the same id; consecutive stream
 * entries are planned message by message. A change already applied (by an earlier entry, within
 * the horizon) is skipped: it applies at the first entry that carries it, whoever folds the log.
 * The result depends only on the snapshot and the log, so any two builders agree on it.
 */
export interface FoldResult {
  stats: ApplyStats;
  dimension: number | null;
  /** Entries that did not simply apply (duplicates, rejections, failed messages). */
  outcomes: EntryOutcome[];
  applied: { runs: { runId: string; seq: number }[]; messages: { messageId: string; seq: number }[] };
  lastSeq: number;
}

export interface FoldDeps {
  changeSets: ChangeSetStore;
  applied: AppliedRecords;
  ioConcurrency: number;
  onApplied?: (ops: number) => void;
}

type Group =
  | { kind: 'ops'; entries: LogEntry[] }
  | { kind: 'messages'; messages: (StreamChange & { seq: number })[] };

export async function foldEntries(
  deps: FoldDeps,
  target: RecordTarget,
  collection: string,
  entries: LogEntry[],
  collectionDimension: number | null,
): Promise<FoldResult> {
  const result: FoldResult = {
    stats: emptyStats(collectionDimension),
    dimension: collectionDimension,
    outcomes: [],
    applied: { runs: [], messages: [] },
    lastSeq: entries[entries.length - 1]?.seq ?? 0,
  };
  const earlier = await deps.applied.lookup(
    collection,
    entries.flatMap((entry) => (entry.runId !== undefined ? [entry.runId] : [])),
    entries.flatMap((entry) => entry.messageIds ?? []),
  );
  const limit = pLimit(deps.ioConcurrency);
  const bodies = new Map(
    await Promise.all(
      entries
        .filter((entry) => entry.kind === 'messages')
        .map((entry) => limit(async () => [entry.seq, await deps.changeSets.read(entry.changeSet)] as const)),
    ),
  );

  const groups: Group[] = [];
  const push = (group: Group) => {
    const last = groups[groups.length - 1];
    if (last?.kind === 'ops' && group.kind === 'ops') last.entries.push(...group.entries);
    else if (last?.kind === 'messages' && group.kind === 'messages') last.messages.push(...group.messages);
    else groups.push(group);
  };
  const seenMessages = new Map(earlier.messages);
  for (const entry of entries) {
    if (entry.kind === 'ops') {
      const appliedAt = entry.runId !== undefined ? earlier.runs.get(entry.runId) : undefined;
      if (appliedAt !== undefined && appliedAt !== entry.seq) {
        result.outcomes.push({ seq: entry.seq, status: 'duplicate', duplicateOf: appliedAt });
        continue;
      }
      if (entry.dimension !== null && result.dimension !== null && entry.dimension !== result.dimension) {
        result.outcomes.push({
          seq: entry.seq,
          status: 'rejected',
          reason: `${entry.label} has dimension ${entry.dimension}, but collection "${collection}" has dimension ${result.dimension}`,
        });
        continue;
      }
      result.dimension ??= entry.dimension;
      if (entry.runId !== undefined) {
        earlier.runs.set(entry.runId, entry.seq);
        result.applied.runs.push({ runId: entry.runId, seq: entry.seq });
      }
      push({ kind: 'ops', entries: [entry] });
      continue;
    }
    const body = bodies.get(entry.seq);
    if (body?.kind !== 'messages') continue;
    const fresh = body.messages.filter((message) => {
      const appliedAt = seenMessages.get(message.messageId);
      return appliedAt === undefined || appliedAt === entry.seq;
    });
    push({ kind: 'messages', messages: fresh.map((message) => ({ ...message, seq: entry.seq })) });
    for (const message of fresh) seenMessages.set(message.messageId, entry.seq);
  }

  const failedBySeq = new Map<number, { messageId: string; reason: string }[]>();
  // A first run into an empty collection needs no lookups: a merged stream holds each id once.
  let targetEmpty = (await target.count()) === 0;
  for (const group of groups) {
    if (group.kind === 'ops') {
      const opened = await Promise.all(
        group.entries.map((entry) => limit(() => deps.changeSets.read(entry.changeSet))),
      );
      const streams = opened.map((body) => (body.kind === 'ops' ? body.ops : empty()));
      const rows =
        streams.length === 1
          ? streams[0]!
          : mergeSortedStreams(streams.map((s) => s[Symbol.asyncIterator]()));
      await applyOps(target, rows, result.dimension, result.stats, deps.onApplied, targetEmpty);
      targetEmpty = false;
      result.dimension = result.stats.dimension;
      continue;
    }
    const plan = await planMessages(target, group.messages, result.dimension);
    const seqOf = new Map(group.messages.map((message) => [message.messageId, message.seq]));
    for (const failure of plan.failed) {
      const seq = seqOf.get(failure.messageId)!;
      failedBySeq.set(seq, [...(failedBySeq.get(seq) ?? []), failure]);
      // A message that did not apply is not recorded: it may come back and apply later.
      seenMessages.delete(failure.messageId);
    }
    for (const messageId of plan.applied)
      result.applied.messages.push({ messageId, seq: seqOf.get(messageId)! });
    await applyOps(target, foldAndSort(plan.ops), plan.dimension, result.stats, deps.onApplied);
    targetEmpty = false;
    result.dimension = result.stats.dimension;
  }
  for (const [seq, failedMessages] of failedBySeq)
    result.outcomes.push({ seq, status: 'applied', failedMessages });
  result.outcomes.sort((a, b) => a.seq - b.seq);
  return result;
}

/** What a builder may hold in memory ahead of its fold: a Lambda of 2-3 GB spares it easily. */
export const PREFETCH_BUDGET_BYTES = 64 * 1024 * 1024;
/** An upper estimate per record beside its embedding: id, document, metadata. */
const RECORD_OVERHEAD_BYTES = 256;

/** The ops change sets of the first entries, in log order, whose records fit the prefetch budget. */
export function withinPrefetchBudget(entries: LogEntry[]): string[] {
  const keys: string[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (entry.kind !== 'ops') continue;
    bytes += entry.records * (4 * (entry.dimension ?? 0) + RECORD_OVERHEAD_BYTES);
    if (bytes > PREFETCH_BUDGET_BYTES) break;
    keys.push(entry.changeSet);
  }
  return keys;
}

async function* empty(): AsyncGenerator<RecordOp> {}
