import pLimit from 'p-limit';
import { CHROMA_DIRECTORY_MARKER, readChromaDelta } from '../chroma/chroma-delta.ts';
import { BadInputError } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { readJsonlLines } from './delta-lines.ts';
import { parseDeltaLine, type RecordOp } from './records.ts';

/**
 * A delta in the bucket, with the name errors should use for it (e.g. `words/0003.jsonl`). A
 * Chroma persist directory is a key prefix ending in "/" (its files are the objects under it).
 */
export interface DeltaRef {
  key: string;
  label: string;
  /** The embedflow collection: names the Chroma collection to read when a directory holds several. */
  collection?: string;
  /**
   * A Chroma directory's files, relative to `key`, found when SplitIntoChunks listed the prefix:
   * ProcessChunk then reads them without listing (it may read the input area, not list it).
   */
  files?: string[];
}

export type DeltaKind = 'jsonl' | 'jsonl.gz' | 'chroma';

export const DELTA_KINDS =
  'a delta is a .jsonl file, a .jsonl.gz file or a Chroma persist directory (a folder holding chroma.sqlite3)';

/** The kind of a delta file by its name, or undefined for a name that is not a delta. */
export function fileDeltaKind(name: string): 'jsonl' | 'jsonl.gz' | undefined {
  if (name.endsWith('.jsonl')) return 'jsonl';
  if (name.endsWith('.jsonl.gz')) return 'jsonl.gz';
  return undefined;
}

function deltaKind(key: string): DeltaKind | undefined {
  return key.endsWith('/') ? 'chroma' : fileDeltaKind(key);
}

/**
 * Lists the deltas under a prefix in name order (the order in which they apply), by the rules of
 * a local input directory: `.jsonl` and `.jsonl.gz` objects, and folders holding chroma.sqlite3.
 * Any other object is refused, naming it. Zero-byte folder markers (keys ending in "/", as the S3
 * console creates them) hold no data and are passed over.
 */
export async function listDeltas(
  objects: ObjectStore,
  prefix: string,
  collection?: string,
): Promise<DeltaRef[]> {
  const normalized = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const root = normalized.slice(0, normalized.slice(0, -1).lastIndexOf('/') + 1);
  const files: string[] = [];
  const folders = new Map<string, string[]>();
  for (const key of await objects.listKeys(normalized)) {
    const name = key.slice(normalized.length);
    if (name === '' || name.endsWith('/')) continue;
    const slash = name.indexOf('/');
    if (slash === -1) {
      files.push(name);
      continue;
    }
    const folder = name.slice(0, slash);
    if (!folders.has(folder)) folders.set(folder, []);
    folders.get(folder)!.push(name.slice(slash + 1));
  }
  const where = (name: string) => `s3://${objects.bucket}/${normalized}${name}`;
  const refused = files.filter((name) => !fileDeltaKind(name)).map(where);
  const entries: { name: string; key: string; files?: string[] }[] = files
    .filter((name) => fileDeltaKind(name))
    .map((name) => ({ name, key: normalized + name }));
  for (const [name, inner] of folders) {
    if (inner.includes(CHROMA_DIRECTORY_MARKER))
      entries.push({ name, key: `${normalized}${name}/`, files: inner });
    else refused.push(`${where(name)}/ (a folder without ${CHROMA_DIRECTORY_MARKER})`);
  }
  if (refused.length > 0) {
    const shown =
      refused.slice(0, 5).join(', ') + (refused.length > 5 ? `, and ${refused.length - 5} more` : '');
    throw new BadInputError(`not a delta: ${shown}; ${DELTA_KINDS}`);
  }
  return entries
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(({ key, files }) => ({ key, label: key.slice(root.length), collection, ...(files && { files }) }));
}

/**
 * Checks an explicit list of delta keys (the execution input's `deltas`) by the same rules; a
 * Chroma directory is its key prefix ending in "/", whose files are listed here.
 */
export async function deltaRefsFromKeys(
  objects: ObjectStore,
  keys: string[],
  collection: string,
): Promise<DeltaRef[]> {
  const refused = keys.filter((key) => !deltaKind(key));
  if (refused.length > 0) {
    throw new BadInputError(
      `deltas: ${refused.map((key) => JSON.stringify(key)).join(', ')} ${refused.length === 1 ? 'is' : 'are'} not a delta key; ${DELTA_KINDS}, given as its key prefix ending in "/"`,
    );
  }
  const refs: DeltaRef[] = [];
  for (const key of [...new Set(keys)].sort()) {
    if (deltaKind(key) !== 'chroma') {
      refs.push({ key, label: key, collection });
      continue;
    }
    const files = (await objects.listKeys(key)).map((inner) => inner.slice(key.length)).filter(Boolean);
    if (!files.includes(CHROMA_DIRECTORY_MARKER)) {
      throw new BadInputError(
        `deltas: s3://${objects.bucket}/${key} holds no ${CHROMA_DIRECTORY_MARKER}; ${DELTA_KINDS}`,
      );
    }
    refs.push({ key, label: key, collection, files });
  }
  return refs;
}

/**
 * Streams one delta's records. In a JSONL delta blank lines are allowed (a trailing newline is
 * common); anything else that is not a valid record stops the run with the file and line.
 */
export async function* readDelta(
  objects: ObjectStore,
  delta: DeltaRef,
  expectedDimension: number | null,
): AsyncGenerator<RecordOp> {
  const kind = deltaKind(delta.key);
  if (kind === undefined) throw new BadInputError(`${delta.label} is not a delta: ${DELTA_KINDS}`);
  if (kind === 'chroma') {
    yield* readChromaDelta(objects, delta, expectedDimension);
    return;
  }
  const body = await objects.getStream(delta.key);
  try {
    for await (const { text, line } of readJsonlLines(body, delta.label, kind === 'jsonl.gz')) {
      if (text.trim() === '') continue;
      yield parseDeltaLine(text, { file: delta.label, line }, expectedDimension ?? undefined);
    }
  } finally {
    body.destroy(); // an error stops reading: do not leave the rest of the object downloading
  }
}

/**
 * Chroma directory deltas each run a Chroma server while they are read (~100-200 MB): at most
 * this many at once in one process, whatever IO_CONCURRENCY allows for files.
 */
export const CHROMA_DELTA_CONCURRENCY = 2;
const chromaReads = pLimit(CHROMA_DELTA_CONCURRENCY);

export async function readDeltaFully(
  objects: ObjectStore,
  delta: DeltaRef,
  expectedDimension: number | null,
): Promise<RecordOp[]> {
  const read = async () => {
    const ops: RecordOp[] = [];
    for await (const op of readDelta(objects, delta, expectedDimension)) ops.push(op);
    return ops;
  };
  return deltaKind(delta.key) === 'chroma' ? chromaReads(read) : read();
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
  if (deltas.length === 0) throw new BadInputError(`no deltas found in ${where}; ${DELTA_KINDS}`);
}
