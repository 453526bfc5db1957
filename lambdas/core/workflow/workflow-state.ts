import { z } from 'zod';
import { BadInputError } from '../errors.ts';

/**
 * The shapes that travel between states of one collection's iteration. They carry keys and
 * counts only (Step Functions caps payloads at 256 KB): never vectors.
 */
export const segmentRef = z.object({
  segmentKey: z.string(),
  records: z.number().int().nonnegative(),
  inputRecords: z.number().int().nonnegative(),
});
export type SegmentRef = z.infer<typeof segmentRef>;

export const collectionState = z.object({
  runId: z.string(),
  collection: z.string(),
  manifestKey: z.string(),
  deltas: z.number().int().positive(),
  chunkSize: z.number().int().positive(),
  chunkCount: z.number().int().positive(),
  chunks: z.array(z.number().int()),
  level: z.number().int().nonnegative(),
  intermediateMerges: z.number().int().nonnegative(),
  segments: z.array(segmentRef).optional(),
  groups: z.array(z.array(segmentRef)).optional(),
  groupCount: z.number().int().optional(),
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
  level: z.number().int().positive(),
  groupIndex: z.number().int().nonnegative(),
  segments: z.array(segmentRef).min(1),
});
export type MergeTask = z.infer<typeof mergeTask>;

/** What one collection reports at the end of a run (CONTRACT.md `run --json`). */
export interface CollectionSummary {
  collection: string;
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
  /** Writing the run's change set and appending its log entry. */
  commitMs: number;
  /** From the append until a publication included the run. */
  waitMs: number;
  /** The run's entry in the collection's commit log. */
  logSeq: number;
  alreadyApplied: boolean;
  finalMergeMs: number;
}

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
