import type { Metadata } from '../records/records.ts';

/**
 * Chroma refuses a request body past 40 MiB ("413 Payload Too Large"): a thousand records with
 * 50 KB documents do not fit in one call. Rows are cut into requests of at most this many bytes
 * (a single larger row goes alone; records within the input limits of docs/contract.md always fit).
 */
export const CHROMA_REQUEST_BYTES = 16 * 1024 * 1024;

/** Embeddings travel as base64 float32, 16/3 bytes a value; 8 leaves room. */
const BYTES_PER_VALUE = 8;

export interface SizedRow {
  id: string;
  embedding?: ArrayLike<number>;
  document?: string;
  metadata?: Metadata | null;
}

/** About what a row adds to a request body (documents counted twice for JSON escapes). */
export function requestBytes(row: SizedRow): number {
  return (
    Buffer.byteLength(row.id) +
    16 +
    (row.embedding?.length ?? 0) * BYTES_PER_VALUE +
    (row.document === undefined ? 0 : Buffer.byteLength(row.document) * 2) +
    (row.metadata ? Buffer.byteLength(JSON.stringify(row.metadata)) : 0)
  );
}

/** Consecutive groups of rows of at most `budget` estimated bytes each (at least one row each). */
export function splitBySize<T extends SizedRow>(rows: T[], budget = CHROMA_REQUEST_BYTES): T[][] {
  const requests: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = requestBytes(row);
    if (current.length > 0 && bytes + size > budget) {
      requests.push(current);
      current = [];
      bytes = 0;
    }
    current.push(row);
    bytes += size;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}
