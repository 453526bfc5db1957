/**
 * The values a record may carry, checked so that what is stored is exactly what was given, or
 * refused with a reason. Shared by delta files, Chroma directory deltas and stream messages.
 * The limits are documented in docs/contract.md ("Limits").
 */
export const INPUT_LIMITS = {
  /** Longest line of a JSONL delta, in bytes (a whole record: Chroma refuses requests past 40 MiB). */
  maxLineBytes: 8 * 1024 * 1024,
  /** Metadata keys per record (the pinned Chroma fails past 5,461 in one record). */
  maxMetadataKeys: 1000,
  /** Values per embedding (the largest embedding models use a few thousand). */
  maxDimension: 65_536,
} as const;

/** About the largest finite float32: anything that rounds past it becomes Infinity in a Float32Array. */
const FLOAT32_MAX_TEXT = '3.4028235e38';

export type MetadataScalar = string | number | boolean;
export type Metadata = Record<string, MetadataScalar>;

/** What a value is, in words, for "got …" in error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list (${preview(value)})`;
  if (typeof value === 'object') return `an object (${preview(value)})`;
  if (typeof value === 'string') return `a string (${preview(value)})`;
  return String(value);
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** A string with a lone UTF-16 surrogate cannot be encoded as UTF-8: it would be stored as U+FFFD. */
export function hasLoneSurrogate(text: string): boolean {
  return /\p{Cs}/u.test(text);
}

/**
 * An embedding as float32 values, or the reason it cannot be stored as given: a value that is
 * not a number, does not fit in a float32 (1e39) or overflowed while being read (1e400 reads as
 * Infinity), more values than the maximum, or a zero vector (no direction: its cosine distance
 * to every record is the same).
 */
export function checkEmbedding(values: unknown[]): Float32Array | string {
  if (values.length === 0) return 'embedding must not be empty';
  if (values.length > INPUT_LIMITS.maxDimension) {
    return `embedding has ${values.length} values, more than the maximum dimension of ${INPUT_LIMITS.maxDimension}`;
  }
  const embedding = new Float32Array(values.length);
  let nonZero = false;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== 'number' || Number.isNaN(value)) {
      return `embedding[${i}] must be a finite number, got ${describeValue(value)}`;
    }
    if (!Number.isFinite(value)) {
      return `embedding[${i}] is out of range: the number is too large to read (it overflows to ${value}); values must fit in a float32 (magnitude at most ${FLOAT32_MAX_TEXT})`;
    }
    if (!Number.isFinite(Math.fround(value))) {
      return `embedding[${i}] is out of float32 range: ${value} (magnitude at most ${FLOAT32_MAX_TEXT})`;
    }
    embedding[i] = value;
    if (embedding[i] !== 0) nonZero = true;
  }
  if (!nonZero) {
    return `embedding is a zero vector (all ${values.length} values are 0 as float32): it has no direction, so it is equally far from every record`;
  }
  return embedding;
}

/** Checked metadata, or the problem: `key` names the offending key when there is one. */
export type MetadataCheck = { ok: true; metadata: Metadata } | { ok: false; key?: string; message: string };

/**
 * How a `null` metadata value is read. In a record (delta line, Chroma delta, stream upsert) it
 * means "no value": the key is dropped, as Chroma itself drops it. In a stream `updateMetadata`
 * it would read as "delete this key", which embedflow does not do: it is refused rather than
 * silently leaving the old value in place.
 */
export type NullRule = 'drop' | 'refuse';

const ACCEPTED = 'a string, a number or a boolean';

/**
 * Metadata as Chroma will store it, or the first problem. Accepted values: strings, finite
 * numbers (integers within ±2^53, which a JSON reader keeps exactly), booleans; `null` per
 * `nulls`. Lists are refused: the pinned Chroma server (binding 1.0.5) rejects every list value.
 */
export function checkMetadata(value: unknown, nulls: NullRule): MetadataCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      message: `must be an object whose values are ${ACCEPTED}, got ${describeValue(value)}`,
    };
  }
  const entries = Object.entries(value);
  if (entries.length > INPUT_LIMITS.maxMetadataKeys) {
    return {
      ok: false,
      message: `has ${entries.length} keys, more than the maximum of ${INPUT_LIMITS.maxMetadataKeys} per record`,
    };
  }
  const metadata: Metadata = {};
  for (const [key, item] of entries) {
    const problem = keyProblem(key) ?? valueProblem(item, nulls);
    if (problem) return { ok: false, key, message: problem };
    if (item !== null) metadata[key] = item as MetadataScalar;
  }
  return { ok: true, metadata };
}

function keyProblem(key: string): string | undefined {
  if (key.startsWith('chroma:')) {
    return 'is a reserved key: Chroma keeps keys starting with "chroma:" for itself and would drop it';
  }
  if (hasLoneSurrogate(key)) return 'is not valid Unicode (the key contains a lone surrogate)';
  return undefined;
}

function valueProblem(value: unknown, nulls: NullRule): string | undefined {
  switch (typeof value) {
    case 'boolean':
      return undefined;
    case 'string':
      return hasLoneSurrogate(value) ? 'is not valid Unicode (it contains a lone surrogate)' : undefined;
    case 'number':
      if (!Number.isFinite(value)) {
        return `is out of range: the number is too large to read (it overflows to ${value})`;
      }
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
        return `is an integer beyond ±2^53 (${value}) that cannot be stored exactly: write it as a string`;
      }
      return undefined;
  }
  if (value === null) {
    return nulls === 'drop'
      ? undefined
      : 'is null, and updateMetadata cannot delete a key: leave the key out to keep its value, or upsert the whole record';
  }
  const hint = Array.isArray(value) ? ' (the pinned Chroma server does not store lists)' : '';
  return `must be ${ACCEPTED}${nulls === 'drop' ? ' (null drops the key)' : ''}, got ${describeValue(value)}${hint}`;
}
