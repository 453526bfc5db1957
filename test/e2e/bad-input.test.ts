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
    'Infinity in an embedding',
    `{"id":"a","embedding":[1e999,0,0,0,0,0,0,0]}\n`,
    'words/delta-0001.jsonl line 1',
    /finite number/,
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

  it('an empty input directory', async () => {
    const input = await writeInputDir({ 'words/readme.txt': 'no deltas here' });
    const result = await cli(['run', '--input', input]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no delta files found');
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
