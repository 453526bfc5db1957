import { randomUUID } from 'node:crypto';
import { type Presence, presenceKeyOf } from '../records/presence.ts';
import type { RecordOp } from '../records/records.ts';

/**
 * A change set is the content of one commit, written once as an immutable object before its log
 * entry is appended (Lance's transaction files, Iceberg's manifests): a lost race to append costs
 * one more conditional write, never rewriting it. Two kinds:
 *   - `ops`: a run's (or a rollback's) merged records, one op per id, sorted by id: blind writes,
 *     applied as they are (an Arrow segment in S3);
 *   - `messages`: a stream batch's messages in order, each to be applied whole or not at all, in
 *     log order (JSON in S3: a batch is small).
 */
export interface StreamChange {
  messageId: string;
  /** updateMetadata needs its records to exist when it applies, so its outcome is known only then. */
  needsRecords: boolean;
  ops: RecordOp[];
}

export type ChangeSetBody =
  | { kind: 'ops'; dimension: number | null; ops: AsyncIterable<RecordOp> }
  | { kind: 'messages'; messages: StreamChange[] };

export interface WrittenChangeSet {
  key: string;
  kind: ChangeSetBody['kind'];
  records: number;
  dimension: number | null;
}

export interface ChangeSetStore {
  /** Writes id-sorted ops (one per id) as one change set. */
  writeOps(
    collection: string,
    label: string,
    ops: AsyncIterable<RecordOp> | Iterable<RecordOp>,
    dimension: number | null,
  ): Promise<WrittenChangeSet>;
  writeMessages(collection: string, label: string, messages: StreamChange[]): Promise<WrittenChangeSet>;
  /**
   * A run's segments (id-sorted, later ones winning) as one change set, copied object to object
   * where they are (no bytes pass through the publisher); read back as one merged stream.
   */
  copySegments(
    collection: string,
    label: string,
    segments: { key: string; records: number }[],
    dimension: number | null,
  ): Promise<WrittenChangeSet>;
  read(key: string): Promise<ChangeSetBody>;
  /**
   * Starts fetching these ops change sets while the caller waits for something else (a builder,
   * for its copy to open and its server to start); a later `read` of one takes what was fetched.
   * Change sets are immutable, so a fetched one reads the same even if deleted meanwhile.
   * Settles when all are fetched, never failing: a failed fetch fails the read that takes it.
   */
  prefetch(keys: string[]): Promise<void>;
  /**
   * Lets go of these if prefetched and not read (entries the fold skipped, a failed build); only
   * these: builds of other collections in the process may be holding theirs.
   */
  dropPrefetched(keys: string[]): void;
  /**
   * The ids an ops change set leaves present or absent (presence.ts), or null when it has no
   * presence stored (written before presences were): without reading its records.
   */
  presence(key: string): Promise<Presence | null>;
  /** Every change set of a collection, with when it was written (ms since the epoch). */
  list(collection: string): Promise<{ key: string; modifiedAt: number }[]>;
  deleteKeys(keys: string[]): Promise<void>;
}

export const CHANGESET_PREFIX = 'changesets/';

/** A fresh key for a change set: its label and a nonce, so two writers of one label never collide. */
export const newChangeSetKey = (collection: string, label: string, extension: string) =>
  `${CHANGESET_PREFIX}${collection}/${label}-${randomUUID().slice(0, 8)}.${extension}`;

/** What a publisher commits: written once as a change set, then appended to the log. */
export type NewChange =
  | {
      kind: 'ops';
      /** The run (or rollback): recorded when applied, so running it again changes nothing. */
      runId: string;
      label: string;
      /** Opens the change's records: one op per id, sorted by id. */
      open(): Promise<{ dimension: number | null; ops: AsyncIterable<RecordOp> | Iterable<RecordOp> }>;
    }
  | { kind: 'messages'; label: string; messages: StreamChange[] }
  | {
      kind: 'segments';
      runId: string;
      label: string;
      segments: { key: string; records: number }[];
      /** Reads the segments' dimension (their schemas, not their rows). */
      dimension(): Promise<number | null>;
    };

/** The objects that belong to a change set: the key itself, its presence and, for copied segments, its parts. */
export function belongsTo(changeSetKey: string, objectKey: string): boolean {
  return (
    objectKey === changeSetKey ||
    objectKey === presenceKeyOf(changeSetKey) ||
    objectKey.startsWith(`${changeSetKey.replace(/\.json$/, '')}/`)
  );
}
