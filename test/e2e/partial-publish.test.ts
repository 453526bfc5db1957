import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { ensureStack } from '../../cli/stack.ts';
import { createRuntime } from '../../lambdas/core/runtime.ts';
import { useCliDataDir } from '../helpers/cli.ts';
import { deltaFiles, writeInputDir } from '../helpers/input-dir.ts';

/**
 * A two-collection run in which one collection's publish fails (its current snapshot object has gone
 * missing from the bucket): the other collection publishes, the run fails saying which is which,
 * the pointers say the same, and running the run id again once the object is back completes it
 * without applying anything twice.
 */
const data = useCliDataDir('partial');
const { cli } = data;
const DIM = 8;

const current = async (collection: string) => {
  const listed = await cli(['snapshots', 'list', '--collection', collection, '--json']);
  return listed.json as { current: number; snapshots: { version: number; key: string; runId: string }[] };
};

describe('a run whose publish fails in one collection', () => {
  it('publishes the other, reports both, and completes when the run id is run again', async () => {
    const seed = await writeInputDir({
      ...deltaFiles('words', 'seed-w', 2, 3, DIM),
      ...deltaFiles('lines', 'seed-l', 2, 3, DIM),
    });
    expect((await cli(['run', '--input', seed, '--run-id', 'seed', '--json'])).code).toBe(0);

    // The bucket loses lines' current snapshot (and this machine's cached copy of it).
    const { env } = await ensureStack(data.dataDir);
    const { objects } = createRuntime(env);
    const lost = (await current('lines')).snapshots[0]!.key;
    const chunks: Buffer[] = [];
    for await (const chunk of await objects.getStream(lost)) chunks.push(Buffer.from(chunk as Uint8Array));
    const bytes = Buffer.concat(chunks);
    await objects.deleteKeys([lost]);
    await rm(join(data.dataDir, 'cache', 'snapshots', 'lines'), { recursive: true, force: true });

    const input = await writeInputDir({
      ...deltaFiles('words', 'next-w', 2, 3, DIM),
      ...deltaFiles('lines', 'next-l', 2, 3, DIM),
    });
    const failed = await cli(['run', '--input', input, '--run-id', 'next', '--json']);
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.json).toMatchObject({
      status: 'FAILED',
      error: { name: 'PublishIncomplete' },
      collections: {
        words: { status: 'published', previousVersion: 1, snapshotVersion: 2 },
        lines: { status: 'failed', error: { name: 'StorageError' } },
      },
    });
    expect(failed.json.error.message).toMatch(
      /^Not published: lines \(StorageError: .* does not exist\)\. Published: words \(v2\)\. Run next again/,
    );
    expect((await current('words')).current).toBe(2);
    expect((await current('lines')).current).toBe(1);
    expect(await objects.listKeys('runs/next/')).toEqual([]); // the failed run cleaned what it owned

    // The object is restored (S3 versioning, say): the same run id completes the run.
    await objects.s3.send(new PutObjectCommand({ Bucket: objects.bucket, Key: lost, Body: bytes }));
    const again = await cli(['run', '--input', input, '--run-id', 'next', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toMatchObject({ executionId: 'next_2', status: 'SUCCEEDED' }); // the run's second attempt
    const listed = await cli(['executions', 'list', '--json']);
    expect(listed.json.executions.filter((e: { runId: string }) => e.runId === 'next')).toMatchObject([
      { executionId: 'next_2', status: 'SUCCEEDED' },
      { executionId: 'next', status: 'FAILED' },
    ]);
    expect(again.json.collections).toMatchObject({
      words: { status: 'already-applied', alreadyApplied: true, snapshotVersion: 2 },
      lines: { status: 'published', previousVersion: 1, snapshotVersion: 2 },
    });
    const words = await current('words');
    expect(words.current).toBe(2);
    expect(words.snapshots.map((s) => s.runId)).toEqual(['next', 'seed']); // applied once
    expect((await current('lines')).snapshots.map((s) => s.runId)).toEqual(['next', 'seed']);
    expect(await objects.listKeys('runs/')).toEqual([]);
  }, 600_000); // lines' publish is retried (StorageError, with Step Functions' real backoff) before it fails
});
