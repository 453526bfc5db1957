import { createInterface } from 'node:readline';
import { BadInputError } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { parseDeltaLine, type RecordOp } from './records.ts';

/** A delta file in the bucket, with the name errors should use for it (e.g. `words/0003.jsonl`). */
export interface DeltaRef {
  key: string;
  label: string;
}

/** Lists the `.jsonl` deltas under a prefix in name order: the order in which they apply. */
export async function listDeltas(objects: ObjectStore, prefix: string): Promise<DeltaRef[]> {
  const normalized = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const root = normalized.slice(0, normalized.slice(0, -1).lastIndexOf('/') + 1);
  const keys = (await objects.listKeys(normalized)).filter((key) => key.endsWith('.jsonl'));
  return keys.map((key) => ({ key, label: key.slice(root.length) }));
}

/**
 * Streams one delta's records. Blank lines are allowed (a trailing newline is common); anything
 * else that is not a valid record stops the run with the file and line.
 */
export async function* readDelta(
  objects: ObjectStore,
  delta: DeltaRef,
  expectedDimension: number | null,
): AsyncGenerator<RecordOp> {
  const body = await objects.getStream(delta.key);
  const lines = createInterface({ input: body, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    yield parseDeltaLine(text, { file: delta.label, line }, expectedDimension ?? undefined);
  }
}

export async function readDeltaFully(
  objects: ObjectStore,
  delta: DeltaRef,
  expectedDimension: number | null,
): Promise<RecordOp[]> {
  const ops: RecordOp[] = [];
  for await (const op of readDelta(objects, delta, expectedDimension)) ops.push(op);
  return ops;
}

/** The dimension of the first record of the run: what every other record must match in a new collection. */
export async function firstDimension(objects: ObjectStore, deltas: DeltaRef[]): Promise<number | null> {
  for (const delta of deltas) {
    for await (const op of readDelta(objects, delta, null)) {
      if (op.op === 'upsert') return op.embedding.length;
    }
  }
  return null;
}

export function assertHasDeltas(deltas: DeltaRef[], where: string): void {
  if (deltas.length === 0) throw new BadInputError(`no delta files (*.jsonl) found in ${where}`);
}
