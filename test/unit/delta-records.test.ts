import { describe, expect, it } from 'vitest';
import { INPUT_LIMITS } from '../../lambdas/core/records/record-values.ts';
import { parseDeltaLine } from '../../lambdas/core/records/records.ts';
import { parseStreamMessage } from '../../lambdas/core/stream/stream-messages.ts';

/** Every value a record carries is stored exactly as given, or refused naming file and line. */
const at = { file: 'words/0001.jsonl', line: 7 };
const record = (fields: Record<string, unknown>) =>
  JSON.stringify({ id: 'a', embedding: [0.5, 1], ...fields });
const manyKeys = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i]));

describe('delta records are refused with file, line and reason', () => {
  it.each([
    ['{"id": "a", "embedding": [1, 2', 'words/0001.jsonl line 7: malformed JSON'],
    ['{"embedding": [1, 2]}', 'words/0001.jsonl line 7: missing "id"'],
    ['{"id": 7, "embedding": [1, 2]}', '"id" must be a non-empty string, got 7'],
    ['{"id": "a", "embedding": [1, "x"]}', 'embedding[1] must be a finite number, got a string ("x")'],
    ['{"id": "a", "embedding": [1, null]}', 'embedding[1] must be a finite number, got null'],
    ['{"id": "a", "embedding": [1, 1e39]}', 'embedding[1] is out of float32 range: 1e+39'],
    ['{"id": "a", "embedding": [-1e39, 1]}', 'embedding[0] is out of float32 range: -1e+39'],
    ['{"id": "a", "embedding": [1, 1e400]}', 'embedding[1] is out of range: the number is too large to read'],
    ['{"id": "a", "embedding": [0, 0]}', 'embedding is a zero vector (all 2 values are 0 as float32)'],
    ['{"id": "a", "embedding": [1e-50, 0]}', 'embedding is a zero vector'],
    ['{"id": "a", "embedding": "0.5,1"}', '"embedding" must be a list of numbers, got a string'],
    ['{"id": "a", "embedding": []}', 'embedding must not be empty'],
    [
      '{"id": "a", "embedding": [1, 2, 3]}',
      'record "a" has dimension 3, but the collection\'s dimension is 2',
    ],
    ['{"id": "a"}', 'record "a" has no "embedding"'],
    ['[1, 2]', 'expected a JSON object, got a list ([1,2])'],
    ['{"id": "\\ud800", "embedding": [1, 2]}', 'is not valid Unicode'],
    [record({ document: 'x\udc00' }), '"document" is not valid Unicode'],
    [record({ document: 5 }), '"document" must be a string or null, got 5'],
    [record({ metadatas: {} }), 'record "a" has unknown field "metadatas"'],
    ['{"id": "a", "delete": false}', '"delete" must be true'],
    ['{"id": "a", "delete": true, "embedding": [1]}', 'tombstone "a" has other fields (embedding)'],
  ])('%s', (line, message) => {
    expect(() => parseDeltaLine(line, at, 2)).toThrow(message);
  });

  it('refuses more values than the maximum dimension', () => {
    const line = JSON.stringify({ id: 'a', embedding: Array(INPUT_LIMITS.maxDimension + 1).fill(1) });
    expect(() => parseDeltaLine(line, at)).toThrow('more than the maximum dimension of 65536');
  });

  it('keeps the largest float32 and the smallest normal values exactly', () => {
    const op = parseDeltaLine(
      '{"id": "a", "embedding": [3.4028234663852886e38, 1.1754943508222875e-38]}',
      at,
    );
    expect(op.op === 'upsert' && Array.from(op.embedding)).toEqual([
      3.4028234663852886e38, 1.1754943508222875e-38,
    ]);
  });
});

describe('metadata', () => {
  it.each([
    [
      { tags: ['a', 'b'] },
      'metadata.tags must be a string, a number or a boolean (null drops the key), got a list (["a","b"]) (the pinned Chroma server does not store lists)',
    ],
    [
      { nested: { k: 1 } },
      'metadata.nested must be a string, a number or a boolean (null drops the key), got an object ({"k":1})',
    ],
    [{ 'chroma:document': 'x' }, 'metadata.chroma:document is a reserved key'],
    [
      manyKeys(INPUT_LIMITS.maxMetadataKeys + 1),
      'metadata has 1001 keys, more than the maximum of 1000 per record',
    ],
    [
      'flat',
      'metadata must be an object whose values are a string, a number or a boolean, got a string ("flat")',
    ],
  ])('refuses %j', (metadata, message) => {
    expect(() => parseDeltaLine(record({ metadata }), at)).toThrow(
      `words/0001.jsonl line 7: record "a": ${message}`,
    );
  });

  it.each([
    ['1e400', 'metadata.n is out of range: the number is too large to read (it overflows to Infinity)'],
    [
      '12345678901234567890',
      'metadata.n is an integer beyond ±2^53 (12345678901234567000) that cannot be stored exactly',
    ],
  ])('refuses the number %s, which would not be stored as written', (number, message) => {
    expect(() => parseDeltaLine(`{"id": "a", "embedding": [1], "metadata": {"n": ${number}}}`, at)).toThrow(
      message,
    );
  });

  it('drops keys whose value is null, and reads a null document or metadata as none', () => {
    expect(parseDeltaLine(record({ metadata: { keep: 'x', gone: null }, document: null }), at)).toEqual({
      op: 'upsert',
      id: 'a',
      embedding: Float32Array.from([0.5, 1]),
      metadata: { keep: 'x' },
    });
    expect(parseDeltaLine(record({ metadata: null }), at)).not.toHaveProperty('metadata');
    expect(parseDeltaLine(record({ metadata: { only: null } }), at)).not.toHaveProperty('metadata');
  });

  it('accepts the maximum number of keys and the documented scalar types', () => {
    const op = parseDeltaLine(record({ metadata: { ...manyKeys(997), s: 'x', f: 1.5, b: false } }), at);
    expect(op.op === 'upsert' && Object.keys(op.metadata!)).toHaveLength(INPUT_LIMITS.maxMetadataKeys);
  });

  it('accepts records and tombstones', () => {
    expect(parseDeltaLine('{"id": "a", "delete": true}', at)).toEqual({ op: 'delete', id: 'a' });
    expect(
      parseDeltaLine('{"id": "a", "embedding": [0.5, 1], "document": "d", "metadata": {"k": true}}', at, 2),
    ).toEqual({
      op: 'upsert',
      id: 'a',
      embedding: Float32Array.from([0.5, 1]),
      document: 'd',
      metadata: { k: true },
    });
  });
});

describe('stream messages share the record rules', () => {
  const upsert = (fields: Record<string, unknown>) =>
    JSON.stringify({
      collection: 'words',
      operation: 'upsert',
      records: [{ id: 'a', embedding: [1, 0], ...fields }],
    });
  const update = (metadata: unknown) =>
    JSON.stringify({ collection: 'words', operation: 'updateMetadata', updates: [{ id: 'a', metadata }] });

  it.each([
    [upsert({ metadata: { tags: [1] } }), 'records.0.metadata.tags: must be a string, a number or a boolean'],
    [upsert({ embedding: [1, 1e39] }), 'records.0.embedding: embedding[1] is out of float32 range'],
    [upsert({ embedding: [0, 0] }), 'records.0.embedding: embedding is a zero vector'],
    [update({ k: null }), 'updates.0.metadata.k: is null, and updateMetadata cannot delete a key'],
    [update({ 'chroma:x': 1 }), 'updates.0.metadata.chroma:x: is a reserved key'],
  ])('%s', (body, reason) => {
    const parsed = parseStreamMessage(body, 'line-1');
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toContain(reason);
  });

  it('drops null metadata values of an upsert, as in a delta', () => {
    const parsed = parseStreamMessage(upsert({ metadata: { k: null, j: 1 } }), 'line-1');
    expect(parsed.ok && parsed.message.operation === 'upsert' && parsed.message.records[0]!.metadata).toEqual(
      { j: 1 },
    );
  });
});
