import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { SnapshotValidationError } from '../errors.ts';
import type { Pointer } from '../protocol/pointer.ts';
import type { BuiltSnapshot, Change, SnapshotBuilder } from '../protocol/ports.ts';
import { type ApplyStats, changedAnything, validateApplied } from '../records/apply-ops.ts';
import { type SnapshotStore, snapshotKey } from '../storage/snapshot-store.ts';
import { startChroma } from './chroma-server.ts';
import { chromaTarget, openCollection } from './chroma-target.ts';

/**
 * Phase B of the publish protocol, entirely off-lock: copy the base snapshot, apply the change in
 * a private Chroma server, validate, pack and upload to a new immutable key. A change that changed
 * nothing uploads nothing.
 */
export class ChromaSnapshotBuilder implements SnapshotBuilder {
  constructor(
    private readonly snapshots: SnapshotStore,
    private readonly workDir: string,
  ) {}

  async build(base: Pointer, change: Change): Promise<BuiltSnapshot> {
    const work = await this.snapshots.checkout(base, this.workDir);
    try {
      const server = await startChroma(work.path);
      let stats: ApplyStats;
      let recordCount: number;
      try {
        const target = chromaTarget(await openCollection(server, base.collection));
        const countBefore = await target.count();
        if (countBefore !== base.recordCount) {
          throw new SnapshotValidationError(
            `snapshot ${base.snapshotKey} (version ${base.version}) holds ${countBefore} records, but its pointer says ${base.recordCount}`,
          );
        }
        stats = await change.apply(target, base.dimension, new Set(base.recentMessageIds));
        recordCount = await validateApplied(target, countBefore, stats);
      } finally {
        await server.stop();
      }
      const dimension = stats.dimension ?? base.dimension;
      if (!changedAnything(stats))
        return { key: null, recordCount, dimension, stats, cacheHit: work.cacheHit };
      // A nonce keeps two attempts of one change (a retried Lambda) from ever writing the same key.
      const key = snapshotKey(
        base.collection,
        base.version + 1,
        `${change.label}-${randomUUID().slice(0, 8)}`,
      );
      await this.snapshots.upload(work.path, key);
      return { key, recordCount, dimension, stats, cacheHit: work.cacheHit };
    } finally {
      await rm(work.path, { recursive: true, force: true });
    }
  }
}
