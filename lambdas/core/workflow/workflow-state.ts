import { z } from 'zod';
import { BadInputError } from '../errors.ts';

/**
 * The shapes that travel between states of one collection's iteration. They carry counts and
 * indexes only, never keys or vectors: Step Functions caps every state's input and output at
 * 256 KB, and a Map's output holds one result per chunk. A segment's key follows from where it
 * sits (run, collection, merge level, index: run-layout.ts), so the results name none.
 */
export const segmentCounts = z.object({
  records: z.number().int().nonnegative(),
  inputRecords: z.number().int().nonnegative(),
});
export type SegmentCounts = z.infer<typeof segmentCounts>;

export const collectionState = z.object({
  runId: z.string(),
  collection: z.string(),
  manifestKey: z.string(),
  deltas: z.number().int().positive(),
  chunkSize: z.number().int().positive(),
  chunkCount: z.number().int().positive(),
  chunks: z.array(z.number().int()),
  /** The merge level of `segments` (or of the level `groups` merge into). */
  level: z.number().int().nonnegative(),
  intermediateMerges: z.number().int().nonnegative(),
  /** The segments of `level`, index i at segmentKey(run, collection, level, i). */
  segments: z.array(segmentCounts).optional(),
  /** The segments of the level below, in groups of `groupSize`: each group merges into one. */
  groups: z.array(z.array(segmentCounts)).optional(),
  groupCount: z.number().int().optional(),
  groupSize: z.number().int().positive().optional(),
});
export type CollectionState = z.infer<typeof collectionState>;

export const chunkTask = z.object({
  runId: z.string(),
  collection: z.string(),
  manifestKey: z.string(),
  chunkIndex: z.number().int().nonnegative(),
});
export type ChunkTask = z.infer<typeof chunkTask>;

export const mergeTask = z.object({
  runId: z.string(),
  collection: z.string(),
  /** The level the merged segment is written at; its sources are at level - 1. */
  level: z.number().int().positive(),
  groupIndex: z.number().int().nonnegative(),
  groupSize: z.number().int().positive(),
  segments: z.array(segmentCounts).min(1),
});
export type MergeTask = z.infer<typeof mergeTask>;

/** What a published collection reports at the end of a run (CONTRACT.md `run --json`). */
export interface CollectionSummary {
  collection: string;
  /**
   * `already-applied`: the run id had been applied, nothing changed; `no-change`: the run's entry
   * was folded but changed nothing, so no new version was needed.
   */
  status: 'published' | 'already-applied' | 'no-change';
  deltas: number;
  records: number;
  chunkSize: number;
  chunks: number;
  groupSize: number;
  intermediateMerges: number;
  shortCircuit: boolean;
  previousVersion: number;
  snapshotVersion: number;
  recordCount: number;
  lockHoldMs: number;
  lockAcquireMs: number;
  casRetries: number;
  /** Pointer swaps its builds lost and replayed onto their open copy. */
  swapReplays: number;
  /** Writing the run's change set and appending its log entry. */
  commitMs: number;
  /** From the append until a publication included the run. */
  waitMs: number;
  /** The run's entry in the collection's commit log. */
  logSeq: number;
  alreadyApplied: boolean;
  finalMergeMs: number;
}

/** A collection whose publish failed: the snapshot is as it was; running the run id again publishes it. */
export interface FailedCollection {
  collection: string;
  status: 'failed';
  deltas: number;
  chunkSize: number;
  chunks: number;
  intermediateMerges: number;
  error: { name: string; message: string };
}

/**
 * A published collection whose publish reported an error afterwards (in its cleanup, say): the
 * pointer names the run, so it is published; the error is kept for the record.
 */
export type PublishedWithError = Omit<
  CollectionSummary,
  | 'lockHoldMs'
  | 'lockAcquireMs'
  | 'casRetries'
  | 'swapReplays'
  | 'finalMergeMs'
  | 'records'
  | 'groupSize'
  | 'shortCircuit'
  | 'alreadyApplied'
  | 'commitMs'
  | 'waitMs'
  | 'logSeq'
> & {
  error: { name: string; message: string };
};

export type CollectionOutcome = CollectionSummary | FailedCollection | PublishedWithError;

/** Parses a handler's event; a shape mismatch is a bug in the wiring, reported as bad input. */
export function parseEvent<T>(schema: z.ZodType<T>, event: unknown, handler: string): T {
  const parsed = schema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadInputError(
      `${handler} received an invalid event: ${issue.path.join('.')}: ${issue.message}`,
    );
  }
  return parsed.data;
}
