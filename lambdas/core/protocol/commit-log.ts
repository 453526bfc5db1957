import { randomUUID } from 'node:crypto';
import type { WrittenChangeSet } from './change-sets.ts';
import { putVerified } from './conditional-write.ts';
import { type Clock, type Item, type ItemStore, when } from './ports.ts';

/**
 * The per-collection commit log: one item per sequence number, `log#{collection}#{seq}`, written
 * with one conditional put (`attribute_not_exists`). A writer that loses the race for a sequence
 * number takes the next one: a lost race costs one more write, never a rebuild. An entry names
 * its change set and carries the run id or the message ids, so a change can be recognised when it
 * comes back. Entries expire by TTL once past the redelivery horizon; publication never needs an
 * expired one, since the pointer's `publishedSeq` has long passed it.
 *
 * `loghead#{collection}` is a hint of the highest sequence appended, raised (never lowered) after
 * each append, so a writer starts near the head instead of probing from the last publication.
 */
export interface LogEntry {
  collection: string;
  seq: number;
  changeSet: string;
  kind: WrittenChangeSet['kind'];
  records: number;
  dimension: number | null;
  label: string;
  runId?: string;
  messageIds?: string[];
  /** ms since the epoch, by the committer's clock: the log lag is measured from it. */
  committedAt: number;
  commitId: string;
}

export interface NewEntry {
  changeSet: WrittenChangeSet;
  label: string;
  runId?: string;
  messageIds?: string[];
}

export const logKey = (collection: string, seq: number) =>
  `log#${collection}#${String(seq).padStart(12, '0')}`;
const headKey = (collection: string) => `loghead#${collection}`;
/** Keys per read of the log: one BatchGetItem takes up to 100. */
const READ_AHEAD = 100;

export class CommitLog {
  constructor(
    private readonly items: ItemStore,
    private readonly clock: Clock,
    /** How long entries are kept: at least as long as a change can come back (the redelivery horizon). */
    private readonly horizonDays: number,
  ) {}

  /**
   * Appends `entry` after everything committed so far, at or above `floorSeq + 1` (the pointer's
   * publishedSeq). Returns the entry, how many sequence numbers were lost to other writers, and
   * the raise of the head hint, still under way (it never fails: await it before the process may
   * freeze). `hint`: the head hint, read by the caller while it wrote the change set.
   */
  async append(
    collection: string,
    entry: NewEntry,
    floorSeq: number,
    hint: Promise<number> = this.headHint(collection),
  ): Promise<{ entry: LogEntry; conflicts: number; headRaised: Promise<void> }> {
    const start = Math.max(await hint, floorSeq) + 1;
    const commitId = randomUUID();
    let conflicts = 0;
    for (let seq = start; ; seq++) {
      const committedAt = this.clock.now();
      const item: LogEntry & { ttl: number } = {
        collection,
        seq,
        changeSet: entry.changeSet.key,
        kind: entry.changeSet.kind,
        records: entry.changeSet.records,
        dimension: entry.changeSet.dimension,
        label: entry.label,
        ...(entry.runId !== undefined && { runId: entry.runId }),
        ...(entry.messageIds !== undefined && { messageIds: entry.messageIds }),
        committedAt,
        commitId,
        ttl: Math.ceil(committedAt / 1000) + this.horizonDays * 86_400,
      };
      const outcome = await putVerified(this.items, this.clock, {
        key: logKey(collection, seq),
        item: item as unknown as Item,
        condition: when.absent(),
        isOurs: (stored) => stored?.commitId === commitId,
        what: `log entry ${seq} of "${collection}"`,
      });
      if (outcome.written) {
        const { ttl: _ttl, ...appended } = item;
        return { entry: appended, conflicts, headRaised: this.raiseHead(collection, seq) };
      }
      conflicts++;
    }
  }

  /** The highest sequence number appended, as far as the hint knows (0 when it cannot be read: it is only a hint). */
  headHint(collection: string): Promise<number> {
    return this.items.get(headKey(collection)).then(
      (item) => Number(item?.seq ?? 0),
      () => 0,
    );
  }

  /** The entries after `afterSeq`, in order, up to the first sequence number not yet appended. */
  async pending(collection: string, afterSeq: number, limit = 10_000): Promise<LogEntry[]> {
    const entries: LogEntry[] = [];
    for (let next = afterSeq + 1; entries.length < limit; ) {
      const count = Math.min(limit - entries.length, READ_AHEAD);
      const keys = Array.from({ length: count }, (_, index) => logKey(collection, next + index));
      next += count;
      const found = await this.items.getMany(keys);
      for (const key of keys) {
        const item = found.get(key);
        if (!item) return entries;
        entries.push(toEntry(item));
        if (entries.length >= limit) return entries;
      }
    }
    return entries;
  }

  async entry(collection: string, seq: number): Promise<LogEntry | undefined> {
    const item = await this.items.get(logKey(collection, seq));
    return item ? toEntry(item) : undefined;
  }

  /** Best effort: a failed raise only makes the next writer probe a little further. */
  private async raiseHead(collection: string, seq: number): Promise<void> {
    try {
      await this.items.put(headKey(collection), { seq }, when.or(when.absent(), when.lessThan('seq', seq)));
    } catch {
      // the hint is only a hint
    }
  }
}

function toEntry(item: Item): LogEntry {
  const { ttl: _ttl, ...entry } = item as unknown as LogEntry & { ttl?: number };
  return entry;
}
