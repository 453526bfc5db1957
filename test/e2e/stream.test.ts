import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCliDataDir } from '../helpers/cli.ts';

const dir = useCliDataDir('stream');
const { cli } = dir;

describe('embedflow stream', () => {
  it('applies a file of messages in batches and reports failures with reasons', async () => {
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
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ messages: 5, applied: 3, batches: 3, publishes: { words: 2 } });
    expect(result.json.failed.map((f: { messageId: string }) => f.messageId)).toEqual(['d', 'line-5']);
    expect(result.json.failed[0].reason).toBe('updateMetadata: no record "nope" in collection "words"');
    expect(result.stderr).toContain('stream: 5/5 messages');
  });
});
