import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCliDataDir } from '../helpers/cli.ts';

const dir = useCliDataDir('stream');
const { cli } = dir;

describe('embedflow stream', () => {
  it('applies a file of messages in batches, reports failures by message id and exits 1', async () => {
    const messages = [
      {
        messageId: 'a',
        collection: 'words',
        operation: 'upsert',
        records: [{ id: 'w1', embedding: [1, 0, 0] }],
      },
      {
        messageId: 'b',
        collection: 'words',
        operation: 'upsert',
        records: [{ id: 'w2', embedding: [0, 1, 0] }],
      },
      {
        messageId: 'c',
        collection: 'words',
        operation: 'updateMetadata',
        updates: [{ id: 'w1', metadata: { tag: 'x' } }],
      },
      {
        messageId: 'd',
        collection: 'words',
        operation: 'updateMetadata',
        updates: [{ id: 'nope', metadata: { tag: 'y' } }],
      },
    ];
    const file = join(dir.dataDir, 'messages.jsonl');
    await writeFile(file, `${messages.map((m) => JSON.stringify(m)).join('\n')}\nnot json\n`);
    const result = await cli(['stream', '--file', file, '--batch-size', '2', '--json']);
    // Any failed message fails the command; the summary is still the last stdout line.
    expect(result.code, result.stderr).toBe(1);
    expect(result.json).toMatchObject({ messages: 5, applied: 3, batches: 3, publishes: { words: 2 } });
    // Named by the message's own id (a line without one keeps its line number as its id).
    expect(result.json.failed).toEqual([
      {
        messageId: 'd',
        line: 4,
        collection: 'words',
        reason: 'updateMetadata: no record "nope" in collection "words"',
      },
      { messageId: 'line-5', line: 5, reason: expect.stringContaining('malformed JSON') },
    ]);
    expect(result.stderr).toContain('stream: 5/5 messages');
  });

  it('applies a local delta file named by applyDelta (uploaded first), and exits 0 when all applied', async () => {
    const delta = [
      { id: 'local-1', embedding: [0, 0, 1] },
      { id: 'local-2', embedding: [1, 1, 0] },
    ];
    await writeFile(
      join(dir.dataDir, 'local-delta.jsonl'),
      `${delta.map((r) => JSON.stringify(r)).join('\n')}\n`,
    );
    const file = join(dir.dataDir, 'apply.jsonl');
    await writeFile(
      file,
      `${JSON.stringify({ messageId: 'apply-1', collection: 'words', operation: 'applyDelta', deltaKey: './local-delta.jsonl' })}\n`,
    );
    const result = await cli(['stream', '--file', file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('1 messages in 1 batches: 1 applied, 0 failed');
    expect(result.stderr).toMatch(/uploaded 1 local delta file\(s\) from .*apply\.jsonl to runs\/stream-/);
    const found = await cli([
      'query',
      '--collection',
      'words',
      '--vector-of',
      'local-2',
      '-k',
      '1',
      '--json',
    ]);
    expect(found.json.results[0].id).toBe('local-2');
  });

  it('names the line of an applyDelta whose local file does not exist, with exit 2', async () => {
    const file = join(dir.dataDir, 'missing.jsonl');
    await writeFile(
      file,
      `{"collection":"words","operation":"delete","ids":["w2"]}\n${JSON.stringify({ collection: 'words', operation: 'applyDelta', deltaKey: '../nowhere.jsonl' })}\n`,
    );
    const result = await cli(['stream', '--file', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--file ${file} line 2: applyDelta names the local file`);
  });
});
