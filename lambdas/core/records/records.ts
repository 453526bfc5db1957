import { BadInputError } from '../errors.ts';
import {
  checkEmbedding,
  checkMetadata,
  describeValue,
  hasLoneSurrogate,
  type Metadata,
  type MetadataScalar,
} from './record-values.ts';

export type { Metadata };
export type MetadataValue = MetadataScalar;

/**
 * One change to one id. `upsert` replaces the record, `delete` removes it, `update` changes
 * document/metadata of an existing record (stream compaction's metadata updates).
 */
export type RecordOp =
  | { op: 'upsert'; id: string; embedding: Float32Array; document?: string; metadata?: Metadata }
  | { op: 'delete'; id: string }
  | { op: 'update'; id: string; document?: string; metadata?: Metadata };

/** Where a record came from, so every error can name it: a file's line, or a record of a Chroma delta. */
export interface LineSource {
  file: string;
  line: number;
  /** `line` of a JSONL file (the default) or `record` (1-based position) of a Chroma directory. */
  unit?: 'line' | 'record';
}

export function describeSource(source: LineSource): string {
  return `${source.file} ${source.unit ?? 'line'} ${source.line}`;
}

function fail(source: LineSource, message: string): never {
  throw new BadInputError(`${describeSource(source)}: ${message}`);
}

/** An embedding as float32, refusing anything that would not be stored exactly as given. */
export function toEmbedding(values: unknown[], source: LineSource): Float32Array {
  const embedding = checkEmbedding(values);
  if (typeof embedding === 'string') fail(source, embedding);
  return embedding;
}

const RECORD_FIELDS = ['id', 'embedding', 'document', 'metadata'];

/** Parses one JSONL line of a delta file into a record or a tombstone. */
export function parseDeltaLine(text: string, source: LineSource, expectedDimension?: number): RecordOp {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    fail(source, `malformed JSON (${(error as Error).message})`);
  }
  return parseRecordObject(json, source, expectedDimension);
}

/**
 * Validates one record or tombstone, whatever it was read from. `null` for `document` or
 * `metadata` means "none" (exports often write it); a `null` metadata value drops that key.
 */
export function parseRecordObject(json: unknown, source: LineSource, expectedDimension?: number): RecordOp {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail(source, `expected a JSON object, got ${describeValue(json)}`);
  }
  const candidate = json as Record<string, unknown>;
  if (!('id' in candidate)) fail(source, 'missing "id"');
  const id = candidate.id;
  if (typeof id !== 'string' || id.length === 0) {
    fail(source, `"id" must be a non-empty string, got ${describeValue(id)}`);
  }
  if (hasLoneSurrogate(id))
    fail(source, `"id" ${JSON.stringify(id)} is not valid Unicode (a lone surrogate)`);

  if ('delete' in candidate) {
    if (candidate.delete !== true) fail(source, `tombstone "${id}": "delete" must be true`);
    const extra = Object.keys(candidate).filter((key) => key !== 'id' && key !== 'delete');
    if (extra.length > 0) {
      fail(
        source,
        `tombstone "${id}" has other fields (${extra.join(', ')}): a tombstone is {"id", "delete": true}`,
      );
    }
    return { op: 'delete', id };
  }
  const unknown = Object.keys(candidate).filter((key) => !RECORD_FIELDS.includes(key));
  if (unknown.length > 0) {
    fail(
      source,
      `record "${id}" has unknown field ${unknown.map((key) => JSON.stringify(key)).join(', ')} (a record has ${RECORD_FIELDS.join(', ')}; a tombstone id and delete)`,
    );
  }
  if (!('embedding' in candidate)) fail(source, `record "${id}" has no "embedding"`);
  if (!Array.isArray(candidate.embedding)) {
    fail(
      source,
      `record "${id}": "embedding" must be a list of numbers, got ${describeValue(candidate.embedding)}`,
    );
  }
  const embedding = toEmbedding(candidate.embedding, source);
  if (expectedDimension !== undefined && embedding.length !== expectedDimension) {
    fail(
      source,
      `record "${id}" has dimension ${embedding.length}, but the collection's dimension is ${expectedDimension}`,
    );
  }
  const document = candidate.document ?? undefined;
  if (document !== undefined) {
    if (typeof document !== 'string') {
      fail(source, `record "${id}": "document" must be a string or null, got ${describeValue(document)}`);
    }
    if (hasLoneSurrogate(document))
      fail(source, `record "${id}": "document" is not valid Unicode (a lone surrogate)`);
  }
  let metadata: Metadata | undefined;
  if (candidate.metadata !== undefined && candidate.metadata !== null) {
    const checked = checkMetadata(candidate.metadata, 'drop');
    if (!checked.ok) {
      fail(
        source,
        `record "${id}": metadata${checked.key === undefined ? '' : `.${checked.key}`} ${checked.message}`,
      );
    }
    if (Object.keys(checked.metadata).length > 0) metadata = checked.metadata;
  }
  return {
    op: 'upsert',
    id,
    embedding,
    ...(document !== undefined && { document }),
    ...(metadata !== undefined && { metadata }),
  };
}

const COLLECTION_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$/;

/** Chroma accepts 3-512 characters of [a-zA-Z0-9._-], starting and ending alphanumeric. */
export function validateCollectionName(name: string, where = 'collection name'): string {
  if (!COLLECTION_NAME.test(name) || name.includes('..')) {
    throw new BadInputError(
      `${where} "${name}" is not a valid Chroma collection name: use 3-512 characters of letters, digits, ".", "_" or "-", starting and ending with a letter or digit`,
    );
  }
  return name;
}

/**
 * Applies `next` on top of `previous` for the same id: the later write wins, except that a
 * metadata update merges into the record it updates, and an update of a deleted record changes
 * nothing (the record stays deleted: an update never brings a record back).
 */
export function foldOps(previous: RecordOp | undefined, next: RecordOp): RecordOp {
  if (next.op !== 'update' || previous === undefined) return next;
  if (previous.op === 'delete') return previous;
  const metadata =
    previous.metadata || next.metadata ? { ...previous.metadata, ...next.metadata } : undefined;
  const document = next.document ?? previous.document;
  return {
    ...previous,
    ...(document !== undefined && { document }),
    ...(metadata !== undefined && { metadata }),
  };
}
