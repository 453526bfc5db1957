import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCliDataDir } from '../helpers/cli.ts';
import { deltaFiles, writeInputDir } from '../helpers/input-dir.ts';

/**
 * Bad input never changes a snapshot: every case fails with a cause naming the file and line
 * (or the flag or variable), the exit code of CONTRACT.md, and the published version untouched.
 */
const { cli } = useCliDataDir('bad');
const DIM = 8;

async function current(collection: string) {
  const listed = await cli(['snapshots', 'list', '--collection', collection, '--json']);
  return { version: listed.json.current, snapshots: listed.json.snapshots };
}

beforeAll(async () => {
  const seed = await writeInputDir(deltaFiles('words', 'seed', 3, 5, DIM));
  const result = await cli(['run', '--input', seed, '--run-id', 'seed', '--json']);
  expect(result.code, result.stderr).toBe(0);
});

const good = (id: string) =>
  JSON.stringify({ id, embedding: Array.from({ length: DIM }, (_, i) => i / DIM) });
const withEmbedding = (first: string) => `{"id":"a","embedding":[${first},0,0,0,0,0,0,0]}\n`;
const withMetadata = (metadata: Record<string, unknown>) =>
  `${JSON.stringify({ id: 'a', embedding: [1, 0, 0, 0, 0, 0, 0, 0], metadata })}\n`;

describe.each([
  [
    'a wrong dimension in one delta',
    `${good('a')}\n${good('b')}\n{"id":"c","embedding":[1,2,3]}\n`,
    'words/delta-0001.jsonl line 3',
    /dimension 3/,
  ],
  [
    'a malformed JSON line',
    `${good('a')}\n{"id": "b", "embedding": [1,\n`,
    'words/delta-0001.jsonl line 2',
    /malformed JSON/,
  ],
  [
    'NaN in an embedding',
    `{"id":"a","embedding":[NaN,0,0,0,0,0,0,0]}\n`,
    'words/delta-0001.jsonl line 1',
    /malformed JSON/,
  ],
  [
    'a missing id',
    `${good('a')}\n{"embedding":[0,0,0,0,0,0,0,1]}\n`,
    'words/delta-0001.jsonl line 2',
    /missing "id"/,
  ],
  [
    'an embedding value outside float32 (1e39)',
    withEmbedding('1e39'),
    'words/delta-0001.jsonl line 1',
    /embedding\[0\] is out of float32 range: 1e\+39/,
  ],
  [
    'an embedding value that overflows a double (1e400)',
    withEmbedding('1e400'),
    'words/delta-0001.jsonl line 1',
    /embedding\[0\] is out of range: the number is too large to read \(it overflows to Infinity\)/,
  ],
  ['a zero vector', withEmbedding('0'), 'words/delta-0001.jsonl line 1', /zero vector/],
  [
    'Latin-1 text (café)',
    Buffer.from(`${good('ok')}\n{"id":"caf\xe9","embedding":[1,0,0,0,0,0,0,0]}\n`, 'latin1'),
    'words/delta-0001.jsonl line 2',
    /not valid UTF-8 \(byte 0xe9 at byte 11 of the line\)/,
  ],
  [
    'a line longer than the maximum (9 MiB)',
    `${good('ok')}\n${withMetadata({ blob: 'x'.repeat(9 * 1024 * 1024) })}`,
    'words/delta-0001.jsonl line 2',
    /the line is longer than the maximum of 8388608 bytes \(8 MiB\)/,
  ],
  [
    'thousands of metadata keys',
    withMetadata(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]))),
    'words/delta-0001.jsonl line 1',
    /record "a": metadata has 5000 keys, more than the maximum of 1000 per record/,
  ],
  [
    'a reserved chroma: metadata key',
    withMetadata({ 'chroma:document': 'x' }),
    'words/delta-0001.jsonl line 1',
    /metadata\.chroma:document is a reserved key/,
  ],
  [
    'a metadata list',
    withMetadata({ tags: ['a', 'b'] }),
    'words/delta-0001.jsonl line 1',
    /metadata\.tags must be a string, a number or a boolean \(null drops the key\), got a list/,
  ],
  ['gzip data in a .jsonl', gzipSync(`${good('a')}\n`), 'words/delta-0001.jsonl', /looks gzip-compressed/],
])('%s', (_, badDelta, where, reason) => {
  it('fails the execution naming file and line, exit 1, snapshot unchanged', async () => {
    const before = await current('words');
    const input = await writeInputDir({
      'words/delta-0000.jsonl': `${good('ok')}\n`,
      'words/delta-0001.jsonl': badDelta,
    });
    const result = await cli(['run', '--input', input, '--json']);
    expect(result.code, result.stderr).toBe(1);
    expect(result.json.status).toBe('FAILED');
    expect(result.json.error.name).toBe('BadInputError');
    expect(result.json.error.message).toContain(where);
    expect(result.json.error.message).toMatch(reason);
    expect(await current('words')).toEqual(before);
    const history = await cli(['executions', 'show', result.json.executionId, '--json']);
    expect(history.json.status).toBe('FAILED');
    expect(
      history.json.events.some(
        (e: { type: string; stateName?: string }) =>
          e.type === 'LambdaFunctionFailed' && e.stateName === 'ProcessChunk',
      ),
    ).toBe(true);
  });
});

describe('usage errors (exit 2, nothing written)', () => {
  it('a dimension different from the collection names the file and line', async () => {
    const before = await current('words');
    const input = await writeInputDir(deltaFiles('words', 'wide', 1, 2, DIM + 4));
    const result = await cli(['run', '--input', input, '--json']);
    expect(result.code).toBe(1);
    expect(result.json.error.message).toMatch(
      /words\/delta-0000\.jsonl line 1: .*dimension 12.*dimension is 8/,
    );
    expect(await current('words')).toEqual(before);
  });

  it('a file that is not a delta', async () => {
    const input = await writeInputDir({ 'words/readme.txt': 'no deltas here' });
    const result = await cli(['run', '--input', input]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--input ${input}: words/readme.txt is not a delta`);
  });

  it('an input directory with no deltas', async () => {
    const input = await writeInputDir({ 'words/.keep': '' });
    const result = await cli(['run', '--input', input, '--skip-unknown']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--input ${input}: no deltas found`);
  });

  describe('entries that cannot be read are refused before anything is written', () => {
    const outside = async () => {
      const dir = await mkdtemp(join(tmpdir(), 'embedflow-outside-'));
      await writeFile(join(dir, 'secret.jsonl'), 'TOP-SECRET-BYTES');
      return join(dir, 'secret.jsonl');
    };
    it.each([
      [
        'a directory named *.jsonl',
        async (input: string) => mkdir(join(input, 'words', '0002.jsonl')),
        /words\/0002\.jsonl is a directory, not a jsonl file/,
      ],
      [
        'a dangling symlink',
        async (input: string) => symlink(join(input, 'gone.jsonl'), join(input, 'words', '0002.jsonl')),
        /words\/0002\.jsonl is a symlink to .*gone\.jsonl, which does not exist/,
      ],
      [
        'a symlink to a file outside DIR',
        async (input: string) => symlink(await outside(), join(input, 'words', '0002.jsonl')),
        /words\/0002\.jsonl is a symlink to .*secret\.jsonl, outside the input directory: embedflow follows no link out of it/,
      ],
      [
        'a symlinked collection folder outside DIR',
        async (input: string) => symlink(join(await outside(), '..'), join(input, 'lines')),
        /lines is a symlink to .*, outside the input directory/,
      ],
    ])('%s', async (_, make, message) => {
      const input = await writeInputDir({ 'words/0001.jsonl': `${good('ok')}\n` });
      await make(input);
      const before = await cli(['executions', 'list', '--json']);
      const result = await cli(['run', '--input', input, '--skip-unknown', '--json']);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stdout + result.stderr).not.toContain('TOP-SECRET');
      const after = await cli(['executions', 'list', '--json']);
      expect(after.json.executions).toHaveLength(before.json.executions.length);
    });
  });

  it('an unknown flag', async () => {
    const result = await cli(['run', '--demo', '--no-such-flag']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown option '--no-such-flag'/);
  });

  it.each([
    [{ CHUNK_SIZE_WORDS: '0' }, 'CHUNK_SIZE_WORDS must be an integer >= 1, got "0"'],
    [{ GROUP_SIZE: '1' }, 'GROUP_SIZE must be an integer >= 2, got "1"'],
    [
      { HEARTBEAT_INTERVAL_SECONDS: '40' },
      'HEARTBEAT_INTERVAL_SECONDS (40) must be less than half of LOCK_DURATION_SECONDS (60)',
    ],
  ])('a bad environment variable %o', async (env, message) => {
    const before = await cli(['executions', 'list', '--json']);
    const result = await cli(['run', '--demo', '--records-per-delta', '2', '--dim', String(DIM)], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    const after = await cli(['executions', 'list', '--json']);
    expect(after.json.executions).toHaveLength(before.json.executions.length);
  });
});
