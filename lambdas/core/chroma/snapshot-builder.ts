import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Collection } from 'chromadb';
import { SnapshotValidationError } from '../errors.ts';
import { appliedMessageIds, type Pointer } from '../protocol/pointer.ts';
import { type SnapshotStore, snapshotKey } from '../storage/snapshot-store.ts';
import { type ApplyStats, validateCollection } from './chroma-apply.ts';
import { startChroma } from './chroma-server.ts';

/**
 * A change a publish applies on top of a snapshot. It must be idempotent (upserts, deletes,
 * merges of metadata) because a rebase applies it again on a newer head. `alreadyApplied` holds
 * the stream message ids the base snapshot already contains: those must be skipped.
 */
export interface Change {
  runId: string;
  /** Stream message ids carried by this change; when all are applied already, publishing is a no-op. */
  messageIds?: string[];
  apply(
    collection: Collection,
    dimension: number | null,
    alreadyApplied: ReadonlySet<string>,
  ): Promise<ApplyStats>;
}

export interface BuiltSnapshot {
  key: string;
  recordCount: number;
  dimension: number | null;
  stats: ApplyStats;
  cacheHit: boolean;
}

/** Chroma's default distance is l2; text embeddings are compared by angle. */
export const COLLECTION_SPACE = 'cosine';

export async function openCollection(server: { client: import('chromadb').ChromaClient }, name: string) {
  return server.client.getOrCreateCollection({
    name,
    embeddingFunction: null,
    configuration: { hnsw: { space: COLLECTION_SPACE } },
  });
}

/**
 * Phase B of the publish protocol, entirely off-lock: copy the base snapshot, apply the change in
 * a private Chroma server, validate, pack and upload to a new immutable key.
 */
export async function buildSnapshot(
  snapshots: SnapshotStore,
  base: Pointer,
  change: Change,
  workDir: string,
): Promise<BuiltSnapshot> {
  const work = await snapshots.checkout(base, workDir);
  try {
    const server = await startChroma(work.path);
    let stats: ApplyStats;
    let recordCount: number;
    try {
      const collection = await openCollection(server, base.collection);
      const countBefore = await collection.count();
      if (countBefore !== base.recordCount) {
        throw new SnapshotValidationError(
          `snapshot ${base.snapshotKey} holds ${countBefore} records, but its pointer says ${base.recordCount}`,
        );
      }
      stats = await change.apply(collection, base.dimension, appliedMessageIds(base));
      recordCount = await validateCollection(collection, countBefore, stats);
    } finally {
      await server.stop();
    }
    // A nonce keeps two attempts of one run (a retried Lambda) from ever writing the same key.
    const key = snapshotKey(base.collection, base.version + 1, `${change.runId}-${randomUUID().slice(0, 8)}`);
    await snapshots.upload(work.path, key);
    return { key, recordCount, dimension: stats.dimension ?? base.dimension, stats, cacheHit: work.cacheHit };
  } finally {
    await rm(work.path, { recursive: true, force: true });
  }
}
