// Synthetic records for tests and benchmarks: deterministic, so every run sees the same data.
import type { RecordOp } from '../lambdas/core/records/records.ts';

/** Deterministic pseudo-random numbers (mulberry32) so test data is the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomEmbedding(random: () => number, dimension: number): Float32Array {
  const values = Float32Array.from({ length: dimension }, () => random() * 2 - 1);
  const norm = Math.hypot(...values) || 1;
  return values.map((value) => value / norm);
}

/** `count` upserts with ids `${prefix}-0000…`, each with a document and metadata. */
export function makeUpserts(prefix: string, count: number, dimension: number, seed = 1): RecordOp[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, index) => ({
    op: 'upsert' as const,
    id: `${prefix}-${String(index).padStart(5, '0')}`,
    embedding: randomEmbedding(random, dimension),
    document: `${prefix} document ${index}`,
    metadata: { source: prefix, index },
  }));
}

/** The JSONL text of a delta file holding these ops. */
export function toJsonl(ops: RecordOp[]): string {
  return ops
    .map((op) =>
      JSON.stringify(
        op.op === 'delete'
          ? { id: op.id, delete: true }
          : op.op === 'upsert'
            ? { id: op.id, embedding: Array.from(op.embedding), document: op.document, metadata: op.metadata }
            : op,
      ),
    )
    .join('\n')
    .concat('\n');
}
