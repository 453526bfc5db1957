import type { Item, ItemStore } from './ports.ts';

/**
 * Exactly-once over the whole redelivery horizon: one small item per applied run id and per
 * applied stream message id (scoped to its collection), recording the log entry that applied it,
 * kept by TTL for as long as the change can come back (Step Functions redrives a run for 14 days;
 * SQS keeps a message for the queue's retention). The pointer stays small whatever the history.
 *
 * Builders write these records (and the outcome of entries that did not simply apply) before the
 * pointer swap that publishes them. Every builder folding the same log computes the same values:
 * a change applies at the first entry that carries it, so two builders never disagree.
 */
export interface EntryOutcome {
  seq: number;
  /** `duplicate`: the change was applied by an earlier entry; `rejected`: it could never apply. */
  status: 'applied' | 'duplicate' | 'rejected';
  duplicateOf?: number;
  reason?: string;
  failedMessages?: { messageId: string; reason: string }[];
}

export interface Horizon {
  runDays: number;
  messageDays: number;
}

export const appliedRunKey = (collection: string, runId: string) => `applied#${collection}#run#${runId}`;
export const appliedMessageKey = (collection: string, messageId: string) =>
  `applied#${collection}#msg#${messageId}`;
const outcomeKey = (collection: string, seq: number) =>
  `outcome#${collection}#${String(seq).padStart(12, '0')}`;
const OUTCOME_DAYS = 2;

export class AppliedRecords {
  constructor(
    private readonly items: ItemStore,
    readonly horizon: Horizon,
  ) {}

  /** The sequence numbers that applied these runs and messages, for those applied within the horizon. */
  async lookup(
    collection: string,
    runIds: string[],
    messageIds: string[],
  ): Promise<{ runs: Map<string, number>; messages: Map<string, number> }> {
    const found = await this.items.getMany([
      ...runIds.map((id) => appliedRunKey(collection, id)),
      ...messageIds.map((id) => appliedMessageKey(collection, id)),
    ]);
    const seqOf = (key: string) => (found.has(key) ? Number(found.get(key)!.seq) : undefined);
    const runs = new Map<string, number>();
    const messages = new Map<string, number>();
    for (const id of runIds) {
      const seq = seqOf(appliedRunKey(collection, id));
      if (seq !== undefined) runs.set(id, seq);
    }
    for (const id of messageIds) {
      const seq = seqOf(appliedMessageKey(collection, id));
      if (seq !== undefined) messages.set(id, seq);
    }
    return { runs, messages };
  }

  /** The log entry that applied a run, read with one consistent GetItem (undefined: not applied). */
  async runAppliedAt(collection: string, runId: string): Promise<number | undefined> {
    const item = await this.items.get(appliedRunKey(collection, runId));
    return item ? Number(item.seq) : undefined;
  }

  async record(
    collection: string,
    applied: { runs: { runId: string; seq: number }[]; messages: { messageId: string; seq: number }[] },
    outcomes: EntryOutcome[],
    nowMs: number,
  ): Promise<void> {
    const seconds = Math.ceil(nowMs / 1000);
    const items: { key: string; item: Item }[] = [
      ...applied.runs.map(({ runId, seq }) => ({
        key: appliedRunKey(collection, runId),
        item: { seq, ttl: seconds + this.horizon.runDays * 86_400 },
      })),
      ...applied.messages.map(({ messageId, seq }) => ({
        key: appliedMessageKey(collection, messageId),
        item: { seq, ttl: seconds + this.horizon.messageDays * 86_400 },
      })),
      ...outcomes.map((outcome) => ({
        key: outcomeKey(collection, outcome.seq),
        item: { ...outcome, ttl: seconds + OUTCOME_DAYS * 86_400 } as unknown as Item,
      })),
    ];
    await this.items.putMany(items);
  }

  /** How entry `seq` ended, once published: absent means it simply applied. */
  async outcome(collection: string, seq: number): Promise<EntryOutcome> {
    const item = await this.items.get(outcomeKey(collection, seq));
    if (!item) return { seq, status: 'applied' };
    const { ttl: _ttl, ...outcome } = item as unknown as EntryOutcome & { ttl?: number };
    return outcome;
  }
}
