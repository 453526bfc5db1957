import type { Metadata } from './records.ts';

/**
 * What a change is applied to: a collection of records that can be read by id, written in batches,
 * counted and probed. Chroma implements it in production (chroma/chroma-target.ts); the protocol
 * tests use an in-memory one, so the publish protocol runs without a server.
 */
export interface StoredRecord {
  metadata: Metadata | null;
}

export interface UpsertRow {
  id: string;
  embedding: Float32Array;
  document?: string;
  metadata?: Metadata | null;
}

export interface UpdateRow {
  id: string;
  /** The whole new metadata (the update merged into the current one), null for none. */
  metadata: Metadata | null;
  /** A new document, or undefined to keep the current one. */
  document?: string;
}

export interface RecordTarget {
  readonly name: string;
  count(): Promise<number>;
  /** The records among `ids` that exist. */
  get(ids: string[]): Promise<Map<string, StoredRecord>>;
  upsert(rows: UpsertRow[]): Promise<void>;
  /**
   * Writes rows none of whose ids it holds (the caller just looked them up): Chroma's add, which
   * skips the per-id existence checks an upsert makes, ~6% of a build's insertion time.
   */
  insert(rows: UpsertRow[]): Promise<void>;
  delete(ids: string[]): Promise<void>;
  update(rows: UpdateRow[]): Promise<void>;
  /** The nearest record to `embedding` and its distance (cosine), for the validation probe. */
  nearest(embedding: Float32Array): Promise<{ id: string; distance: number } | null>;
  /** Every id it holds (once per workspace, when no id list of the snapshot exists yet). */
  allIds(): Promise<string[]>;
}
