import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStack } from '../../cli/stack.ts';
import { CollectionInUseError, dropCollection } from '../../lambdas/core/protocol/drop-collection.ts';
import { createRuntime, type Runtime } from '../../lambdas/core/runtime.ts';
import { CollectionCatalog } from '../../lambdas/core/storage/collection-catalog.ts';
import { useCliDataDir } from '../helpers/cli.ts';
import { deltaFiles, writeInputDir } from '../helpers/input-dir.ts';

/**
 * Collections a user can see, query with real vectors, and start over: the embedder each was built
 * with, --text refused where it would be meaningless, --vector/--vector-file/--where/--include,
 * `collections list` and `collections drop`, and honest output for runs and rollbacks that change
 * nothing.
 */
const data = useCliDataDir('collections');
const { cli } = data;
const DIM = 8;
const scratch: string[] = [];
let rt: Runtime;
let externalFiles: Record<string, string>;

beforeAll(async () => {
  const { env } = await ensureStack(data.dataDir);
  rt = createRuntime({ ...env, POWERTOOLS_LOG_LEVEL: 'SILENT' });
  externalFiles = deltaFiles('ext', 'ext', 2, 6, DIM);
  const input = await writeInputDir(externalFiles);
  scratch.push(input);
  const run = await cli(['run', '--input', input, '--run-id', 'ext-1', '--json']);
  expect(run.code, run.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('the demo', () => {
  it('says at its end which dimension its collections now have, and how to drop them', async () => {
    const demo = await cli([
      'run',
      '--demo',
      ...['--records-per-delta', '4', '--dim', '16', '--words-deltas', '3', '--lines-deltas', '2'],
      '--run-id',
      'demo-1',
    ]);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toContain(
      "note: lines and words now hold 16-d vectors from the demo's hashing embedder",
    );
    expect(demo.stdout).toContain('embedflow collections drop words --yes');
    expect(demo.stdout).toContain('embedflow collections drop lines --yes');
  });

  it('re-running an applied run id says "already applied, nothing changed"', async () => {
    const again = await cli([
      'run',
      '--demo',
      ...['--records-per-delta', '4', '--dim', '16'],
      '--run-id',
      'demo-1',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/words: run demo-1 already applied, nothing changed \(v1, \d+ records\)/);
    expect(again.stdout).not.toMatch(/published version/);
    // The run id's execution succeeded: nothing runs again (the execution store says so).
    expect(again.stderr).toContain('run demo-1 was already applied by execution demo-1: nothing changed');
  });
});

describe('collections list', () => {
  it('shows name, version, records, dimension, embedder and last update of each collection', async () => {
    const listed = await cli(['collections', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const byName = Object.fromEntries(listed.json.collections.map((c: { name: string }) => [c.name, c]));
    expect(byName.ext).toMatchObject({ version: 1, recordCount: 12, dimension: DIM, embedder: 'external' });
    expect(byName.words).toMatchObject({ version: 1, dimension: 16, embedder: 'hashing' });
    expect(byName.lines).toMatchObject({ version: 1, dimension: 16, embedder: 'hashing' });
    expect(Date.parse(byName.ext.updatedAt)).not.toBeNaN();
    const human = await cli(['collections', 'list']);
    expect(human.stdout.split('\n')[0]).toMatch(/^NAME\s+VERSION\s+RECORDS\s+DIM\s+EMBEDDER\s+UPDATED$/);
  });
});

describe('query', () => {
  it('refuses --text on a collection of external vectors, saying how to query it', async () => {
    const refused = await cli(['query', '--collection', 'ext', '--text', 'anything', '--json']);
    expect(refused.code).toBe(2);
    expect(refused.json.error.message).toContain('holds vectors from an external embedder');
    expect(refused.json.error.message).toContain(`--vector '[…]' (${DIM} numbers), --vector-file F`);
    const demo = await cli([
      'query',
      '--collection',
      'lines',
      '--text',
      'corner market',
      '-k',
      '1',
      '--json',
    ]);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.json).toMatchObject({ embedder: 'hashing' });
  });

  it('takes a vector on the command line, with --include choosing the fields', async () => {
    const record = JSON.parse(externalFiles['ext/delta-0000.jsonl']!.split('\n')[2]!);
    const found = await cli([
      'query',
      ...['--collection', 'ext', '--vector', JSON.stringify(record.embedding), '-k', '2'],
      ...['--include', 'documents', '--json'],
    ]);
    expect(found.code, found.stderr).toBe(0);
    expect(found.json.results).toHaveLength(2);
    expect(found.json.results[0]).toEqual({ id: record.id, document: record.document });
    const wrong = await cli(['query', '--collection', 'ext', '--vector', '[1, 2]', '--json']);
    expect(wrong.code).toBe(2);
    expect(wrong.json.error.message).toBe(`--vector has 2 values, but collection "ext" has dimension ${DIM}`);
  });

  it('takes a vector from a file (one JSONL record or a JSON array) and filters with --where', async () => {
    const line = externalFiles['ext/delta-0000.jsonl']!.split('\n')[3]!;
    const dir = await mkdtemp(join(tmpdir(), 'embedflow-query-'));
    scratch.push(dir);
    await writeFile(join(dir, 'record.jsonl'), `${line}\n`);
    await writeFile(join(dir, 'vector.json'), JSON.stringify(JSON.parse(line).embedding));
    const [fromRecord, fromArray] = await Promise.all(
      ['record.jsonl', 'vector.json'].map((file) =>
        cli([
          'query',
          ...['--collection', 'ext', '--vector-file', join(dir, file), '-k', '5'],
          ...['--where', '{"index": 3}', '--json'],
        ]),
      ),
    );
    for (const result of [fromRecord!, fromArray!]) {
      expect(result.code, result.stderr).toBe(0);
      expect(result.json.results.map((r: { id: string }) => r.id).sort()).toEqual([
        'ext-d0000-00003',
        'ext-d0001-00003',
      ]);
      expect(result.json.results[0]).toMatchObject({ id: 'ext-d0000-00003', metadata: { index: 3 } });
      expect(result.json.results[0].distance).toBeCloseTo(0, 5);
    }
  });
});

describe('rollback to the current version', () => {
  it('says so and publishes nothing', async () => {
    const rolled = await cli(['snapshots', 'rollback', '--collection', 'ext', '--to', '1']);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toContain('v1 is already the current version of ext: nothing published');
    expect((await rt.pointers.read('ext')).version).toBe(1);
  });
});

describe('collections drop', () => {
  const dropDeps = () => ({
    ...rt,
    catalog: new CollectionCatalog(rt.items, rt.aws.dynamo, rt.aws.table),
  });

  it('is refused while a build holds the collection build lease', async () => {
    const held = await rt.buildLease.tryHold('ext');
    expect(held).not.toBeNull();
    try {
      const refused = await cli(['collections', 'drop', 'ext', '--yes', '--json']);
      expect(refused.code).toBe(1);
      expect(refused.json.error).toMatchObject({ name: 'CollectionInUseError' });
      expect(refused.json.error.message).toContain(
        `is being published (build-ext-lease held by ${held!.owner}, lease ends in`,
      );
      expect((await rt.pointers.read('ext')).version).toBe(1);
    } finally {
      await held!.release();
    }
  });

  it('is refused while a committed change waits for a build, and removes nothing', async () => {
    const collection = `busy-${randomUUID().slice(0, 8)}`;
    const changeSet = await rt.changeSets.writeOps(collection, 'waiting', [], null);
    const { entry } = await rt.log.append(collection, { changeSet, label: 'waiting', runId: 'waiting' }, 0);
    await expect(dropCollection(dropDeps(), collection)).rejects.toThrow(CollectionInUseError);
    await expect(dropCollection(dropDeps(), collection)).rejects.toThrow(
      `has committed changes waiting to be published (log entry ${entry.seq}, waiting)`,
    );
    expect(await rt.log.pending(collection, 0)).toHaveLength(1);
    expect(await rt.lock.list()).toEqual([]);
  });

  it('asks first: without a terminal to ask on, it needs --yes', async () => {
    const refused = await cli(['collections', 'drop', 'ext']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('add --yes to drop collection "ext" (v1, 12 records, 8-d');
  });

  // Six CLI commands in a row: minutes on a busy machine.
  it('removes pointer, log, applied records, snapshots, change sets and catalog entry, so the name can start over', {
    timeout: 600_000,
  }, async () => {
    const dropped = await cli(['collections', 'drop', 'ext', '--yes', '--json']);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.json).toMatchObject({
      dropped: true,
      collection: 'ext',
      droppedVersion: 1,
      snapshotsDeleted: 1,
    });
    expect((await rt.pointers.read('ext')).version).toBe(0);
    expect(await rt.snapshots.listKeys('ext')).toEqual([]);
    expect(await rt.log.pending('ext', 0)).toEqual([]);
    expect(await rt.applied.runAppliedAt('ext', 'ext-1')).toBeUndefined();
    expect(await rt.items.scan('applied#ext#')).toEqual([]);
    expect(await rt.changeSets.list('ext')).toEqual([]);
    expect((await rt.lock.list()).filter((lock) => lock.collection === 'ext')).toEqual([]);
    const listed = await cli(['collections', 'list', '--json']);
    expect(listed.json.collections.map((c: { name: string }) => c.name)).toEqual(['lines', 'words']);

    // Another dimension is welcome now.
    const wider = await writeInputDir(deltaFiles('ext', 'wide', 1, 3, DIM * 2));
    scratch.push(wider);
    const again = await cli(['run', '--input', wider, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.collections.ext).toMatchObject({
      previousVersion: 0,
      snapshotVersion: 1,
      recordCount: 3,
    });
    const unknown = await cli(['collections', 'drop', 'no-such-collection', '--yes']);
    expect(unknown.code).toBe(2);
  });
});
