import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { writeChromaDirectory } from '../helpers/chroma-dir.ts';
import { useCliDataDir } from '../helpers/cli.ts';
import { writeInputDir } from '../helpers/input-dir.ts';

/**
 * What `run --input DIR` accepts, through the real CLI: .jsonl (with a byte-order mark),
 * .jsonl.gz and Chroma persist directories written by the chromadb package, in name order;
 * anything else refused (or skipped with --skip-unknown, saying so).
 */
const { cli } = useCliDataDir('formats');
const line = (id: string, embedding: number[], extra: Record<string, unknown> = {}) =>
  `${JSON.stringify({ id, embedding, ...extra })}\n`;

async function query(collection: string, id: string) {
  const result = await cli(['query', '--collection', collection, '--vector-of', id, '-k', '10', '--json']);
  expect(result.code, result.stderr).toBe(0);
  return result.json.results as { id: string; distance: number; document?: string; metadata?: object }[];
}

describe('files in a collection folder', () => {
  const files = {
    'words/0001.jsonl': `\ufeff${line('a', [1, 0, 0, 0], { metadata: { keep: 1, gone: null } })}`,
    'words/0002.jsonl.gz': gzipSync(line('b', [0, 1, 0, 0]) + line('c', [0, 0, 1, 0])),
    'words/0003.json': JSON.stringify([{ id: 'd', embedding: [0, 0, 0, 1] }]),
  };

  it('refuses a file that is not a delta, naming it, before anything is written', async () => {
    const input = await writeInputDir(files);
    const result = await cli(['run', '--input', input, '--json']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--input ${input}: words/0003.json is not a delta`);
    expect(result.stderr).toContain('--skip-unknown');
    expect(result.json).toMatchObject({ status: 'ERROR', error: { name: 'UsageError' } });
    const executions = await cli(['executions', 'list', '--json']);
    expect(executions.json.executions).toHaveLength(0);
  });

  it('with --skip-unknown reads .jsonl (BOM and all) and .jsonl.gz, and warns about the file it skips', async () => {
    const input = await writeInputDir(files);
    const result = await cli(['run', '--input', input, '--skip-unknown', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(
      `warning: --input ${input}: skipped words/0003.json, which is not a delta`,
    );
    expect(result.json.collections.words).toMatchObject({ deltas: 2, records: 3, recordCount: 3 });
    const [nearest] = await query('words', 'a');
    expect(nearest).toMatchObject({ id: 'a', metadata: { keep: 1 } }); // null dropped the key
  });
});

describe('Chroma persist directories as deltas', () => {
  it('applies a directory written by chromadb in name order among JSONL deltas', async () => {
    const input = await writeInputDir({
      'lines/0001.jsonl': line('l1', [1, 0, 0]) + line('l2', [0, 1, 0], { document: 'from jsonl' }),
      'lines/0003.jsonl': `${JSON.stringify({ id: 'l3', delete: true })}\n`,
    });
    await writeChromaDirectory(join(input, 'lines', '0002'), {
      lines: [
        { id: 'l2', embedding: [0, 1, 0.1], document: 'from chroma', metadata: { source: 'chroma' } },
        { id: 'l3', embedding: [0, 0, 1], document: 'deleted by 0003' },
      ],
    });
    const result = await cli(['run', '--input', input, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json.collections.lines).toMatchObject({ deltas: 3, records: 5, recordCount: 2 });
    const results = await query('lines', 'l2');
    expect(results.map((r) => r.id).sort()).toEqual(['l1', 'l2']);
    expect(results[0]).toMatchObject({ id: 'l2', document: 'from chroma', metadata: { source: 'chroma' } });
  });

  it('validates a directory like a JSONL delta: a wrong dimension names the directory and record', async () => {
    const input = await writeInputDir({});
    await writeChromaDirectory(join(input, 'lines', '0001'), {
      lines: [{ id: 'wide', embedding: [1, 0, 0, 0] }],
      other: [{ id: 'x', embedding: [1, 0] }],
    });
    const result = await cli(['run', '--input', input, '--json']);
    expect(result.code).toBe(1);
    expect(result.json.error).toEqual({
      name: 'BadInputError',
      message: 'lines/0001/ record 1: record "wide" has dimension 4, but the collection\'s dimension is 3',
    });
  });
});

describe('symlinks inside DIR', () => {
  it('follows a symlinked collection folder that stays inside DIR', async () => {
    const input = await writeInputDir({ 'words_copy/0001.jsonl': line('s1', [1, 1, 0, 0]) });
    await symlink('words_copy', join(input, 'words_link'));
    const result = await cli(['run', '--input', input, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(Object.keys(result.json.collections).sort()).toEqual(['words_copy', 'words_link']);
    expect(result.json.collections.words_link).toMatchObject({ deltas: 1, recordCount: 1 });
  });
});
