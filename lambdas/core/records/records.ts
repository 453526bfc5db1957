import { z } from 'zod';
import { BadInputError } from '../errors.ts';

export type MetadataValue = string | number | boolean;
export type Metadata = Record<string, MetadataValue>;

/**
 * One change to one id. `upsert` replaces the record, `delete` removes it, `update` changes
 * document/metadata of an existing record (stream compaction's metadata updates).
 */
export type RecordOp =
  | { op: 'upsert'; id: string; embedding: Float32Array; document?: string; metadata?: Metadata }
  | { op: 'delete'; id: string }
  | { op: 'update'; id: string; document?: string; metadata?: Metadata };

const metadataSchema = z.record(z.string(), z.union([z.string(), z.number().finite(), z.boolean()]));

const upsertLine = z.strictObject({
  id: z.string().min(1, 'id must be a non-empty string'),
  embedding: z.array(z.unknown()).min(1, 'embedding must not be empty'),
  document: z.string().optional(),
  metadata: metadataSchema.optional(),
});

const tombstoneLine = z.strictObject({ id: z.string().min(1), delete: z.literal(true) });

/** Where a line came from, so every error can name the file and line. */
export interface LineSource {
  file: string;
  line: number;
}

function fail(source: LineSource, message: string): never {
  throw new BadInputError(`${source.file} line ${source.line}: ${message}`);
}

/** Float32 has no NaN-free guarantee of its own: reject anything that is not a finite number first. */
export function toEmbedding(values: unknown[], source: LineSource): Float32Array {
  const embedding = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      fail(source, `embedding[${i}] must be a finite number, got ${JSON.stringify(value) ?? String(value)}`);
    }
    embedding[i] = value;
  }
  return embedding;
}

/** Parses one JSONL line of a delta file into a record or a tombstone. */
export function parseDeltaLine(text: string, source: LineSource, expectedDimension?: number): RecordOp {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    fail(source, `malformed JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    fail(source, 'expected a JSON object');
  const candidate = json as Record<string, unknown>;
  if (!('id' in candidate)) fail(source, 'missing "id"');
  if (typeof candidate.id !== 'string' || candidate.id.length === 0)
    fail(source, '"id" must be a non-empty string');

  if ('delete' in candidate) {
    const tombstone = tombstoneLine.safeParse(candidate);
    if (!tombstone.success) fail(source, `bad tombstone: ${zodMessage(tombstone.error)}`);
    return { op: 'delete', id: tombstone.data.id };
  }
  if (!('embedding' in candidate)) fail(source, `record "${candidate.id}" has no "embedding"`);
  if (Array.isArray(candidate.embedding)) toEmbedding(candidate.embedding, source);
  const record = upsertLine.safeParse(candidate);
  if (!record.success) fail(source, `record "${candidate.id}": ${zodMessage(record.error)}`);
  const embedding = toEmbedding(record.data.embedding, source);
  if (expectedDimension !== undefined && embedding.length !== expectedDimension) {
    fail(
      source,
      `record "${record.data.id}" has dimension ${embedding.length}, but the collection's dimension is ${expectedDimension}`,
    );
  }
  return {
    op: 'upsert',
    id: record.data.id,
    embedding,
    ...(record.data.document !== undefined && { document: record.data.document }),
    ...(record.data.metadata !== undefined && { metadata: record.data.metadata }),
  };
}

function zodMessage(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'record'}: ${issue.message}`).join('; ');
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
