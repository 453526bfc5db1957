import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPublishedCollection } from '../../lambdas/core/chroma/published-snapshot.ts';
import { BadInputError } from '../../lambdas/core/errors.ts';
import { advancedPointer } from '../../lambdas/core/protocol/pointer.ts';
import { idsKeyOf, isSnapshotArchive, snapshotStem } from '../../lambdas/core/protocol/ports.ts';
import { publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { publishDeps } from '../../lambdas/core/runtime.ts';
import { snapshotKey } from '../../lambdas/core/storage/snapshot-store.ts';
import { startTestStack, storedSnapshots, type TestStack, uniqueCollection } from '../helpers/local-stack.ts';
import { makeUpserts } from '../helpers/records.ts';

const DIM = 16;
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

describe('publish protocol', () => {
  it('publishes a first version, then applies a later run on top of it', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    const first = await publish(
      publishDeps(rt),
      collection,
      opsChange('run-1', makeUpserts('a', 50, DIM, 1)),
    );
    expect(first).toMatchObject({
      status: 'published',
      previousVersion: 0,
      snapshotVersion: 1,
      recordCount: 50,
    });
    const second = await publish(
      publishDeps(rt),
      collection,
      opsChange('run-2', [...makeUpserts('b', 20, DIM, 2), { op: 'delete', id: 'a-00000' }]),
    );
    expect(second).toMatchObject({
      status: 'published',
      previousVersion: 1,
      snapshotVersion: 2,
      recordCount: 69,
    });
    expect(second.lockHoldMs).toBe(0); // a commit waits behind no lock
    expect(second.commitMs).toBeGreaterThan(0);
    expect(second.casRetries).toBe(0);
    const pointer = await rt.pointers.read(collection);
    expect(pointer.history.map((entry) => entry.version)).toEqual([2, 1]);
  });

  it("a builder moves its base out of the cache, and its last upload becomes the cache's copy: the next build downloads nothing", async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('cached-1', makeUpserts('a', 30, DIM, 1)));
    const pointer = await rt.pointers.read(collection);
    const downloads: string[] = [];
    const getStream = rt.objects.getStream.bind(rt.objects);
    rt.objects.getStream = (key: string) => {
      if (isSnapshotArchive(key)) downloads.push(key);
      return getStream(key);
    };
    const cached = join(rt.snapshots.cacheDir, snapshotStem(pointer.snapshotKey!));
    const workspace = await rt.builder.open(pointer);
    try {
      expect(workspace.cacheHit).toBe(true);
      expect(existsSync(cached)).toBe(false); // moved, not copied
      expect(await (await workspace.target()).count()).toBe(30);
    } finally {
      await workspace.close();
    }
    // Closed without an upload, the moved copy is gone: the next build downloads its base once.
    expect(existsSync(cached)).toBe(false);
    await publish(publishDeps(rt), collection, opsChange('cached-2', makeUpserts('b', 3, DIM, 2)));
    expect(downloads).toEqual([pointer.snapshotKey]);
    downloads.length = 0;
    const next = await publish(
      publishDeps(rt),
      collection,
      opsChange('cached-3', makeUpserts('c', 2, DIM, 3)),
    );
    expect(next).toMatchObject({ status: 'published', recordCount: 35 });
    expect(downloads).toEqual([]);
    // built on the cached copy, the new version is whole: a reader with a cache of its own downloads it
    const cacheDir = await mkdtemp(join(tmpdir(), 'embedflow-other-cache-'));
    try {
      const reader = stack.runtime({ SNAPSHOT_CACHE_DIR: cacheDir });
      await withPublishedCollection(reader, collection, async (opened) => {
        expect(await opened.collection.count()).toBe(35);
      });
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('a prefetched change set reads the same as one read directly, even once deleted, and only once', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    const single = await rt.changeSets.writeOps(collection, 'one', makeUpserts('a', 40, DIM, 1), DIM);
    const other = await rt.changeSets.writeOps(collection, 'two', makeUpserts('b', 30, DIM, 2), DIM);
    const copied = await rt.changeSets.copySegments(
      collection,
      'copied',
      [
        { key: single.key, records: 40 },
        { key: other.key, records: 30 },
      ],
      DIM,
    );
    const rowsOf = async (key: string) => {
      const body = await rt.changeSets.read(key);
      if (body.kind !== 'ops') throw new Error('expected ops');
      const rows: string[] = [];
      for await (const op of body.ops) rows.push(`${op.id}:${op.op === 'upsert' ? op.embedding[0] : ''}`);
      return { dimension: body.dimension, rows };
    };
    const direct = { single: await rowsOf(single.key), copied: await rowsOf(copied.key) };
    expect(direct.copied.rows).toHaveLength(70);

    await rt.changeSets.prefetch([single.key, copied.key]);
    await rt.changeSets.deleteKeys([single.key, copied.key]);
    expect(await rowsOf(single.key)).toEqual(direct.single);
    expect(await rowsOf(copied.key)).toEqual(direct.copied);
    // taken by its read: the next read goes to S3, where it is gone
    await expect(rt.changeSets.read(single.key)).rejects.toThrow(/does not exist/);

    await rt.changeSets.prefetch([other.key]);
    rt.changeSets.dropPrefetched([other.key]);
    await rt.changeSets.deleteKeys([other.key]);
    await expect(rt.changeSets.read(other.key)).rejects.toThrow(/does not exist/);
  });

  it('writes zstd-compressed snapshots and still reads and builds on a plain .tar one written before', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    const first = await publish(
      publishDeps(rt),
      collection,
      opsChange('zst-1', makeUpserts('a', 40, DIM, 1)),
    );
    expect(first.snapshotKey).toMatch(/\.tar\.zst$/);
    const head = await rt.objects.getBytes(first.snapshotKey!);
    expect([...head.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]); // the zstd frame magic
    // a legacy snapshot: the same content as a plain tar, named by the pointer
    const pointer = await rt.pointers.read(collection);
    const legacyKey = snapshotKey(collection, pointer.version, 'legacy').replace(/\.zst$/, '');
    const { path } = await rt.snapshots.materialize(first.snapshotKey!);
    await rt.snapshots.upload(path, legacyKey);
    await rt.objects.uploadStream(
      idsKeyOf(legacyKey),
      await rt.objects.getBytes(idsKeyOf(first.snapshotKey!)),
    );
    const [newest, ...older] = pointer.history;
    const legacy = {
      ...advancedPointer(pointer, pointer.publishedSeq),
      snapshotKey: legacyKey,
      history: [{ ...newest!, key: legacyKey }, ...older],
    };
    expect(await rt.pointers.swap(pointer, legacy)).toEqual({ swapped: true });
    // a reader and a builder with empty caches must download and unpack the plain tar
    const cacheDir = await mkdtemp(join(tmpdir(), 'embedflow-legacy-cache-'));
    try {
      const fresh = stack.runtime({ SNAPSHOT_CACHE_DIR: cacheDir });
      await withPublishedCollection(fresh, collection, async (opened) => {
        expect(opened.entry.key).toBe(legacyKey);
        expect(await opened.collection.count()).toBe(40);
      });
      await rm(cacheDir, { recursive: true, force: true });
      const next = await publish(
        publishDeps(fresh),
        collection,
        opsChange('zst-2', makeUpserts('b', 5, DIM, 2)),
      );
      expect(next).toMatchObject({ status: 'published', recordCount: 45 });
      expect(next.snapshotKey).toMatch(/\.tar\.zst$/);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('treats re-publishing an applied run id as a no-op', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('run-x', makeUpserts('a', 10, DIM)));
    const keysBefore = await storedSnapshots(rt, collection);
    const again = await publish(publishDeps(rt), collection, opsChange('run-x', makeUpserts('zzz', 10, DIM)));
    expect(again).toMatchObject({ status: 'already-applied', snapshotVersion: 1, recordCount: 10 });
    expect(await storedSnapshots(rt, collection)).toEqual(keysBefore);
  });

  it('rejects a record whose dimension differs from the collection and leaves the pointer as it was', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('lines');
    await publish(publishDeps(rt), collection, opsChange('ok', makeUpserts('a', 5, DIM)));
    const before = await rt.pointers.read(collection);
    await expect(
      publish(publishDeps(rt), collection, opsChange('bad', makeUpserts('b', 5, DIM + 1))),
    ).rejects.toThrow(BadInputError);
    expect(await rt.pointers.read(collection)).toEqual(before);
    expect(await storedSnapshots(rt, collection)).toEqual([before.snapshotKey]);
  });

  it('writes a snapshot that stock Chroma opens with the expected count and nearest neighbour', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    const records = makeUpserts('doc', 200, DIM, 7);
    const published = await publish(publishDeps(rt), collection, opsChange('run-open', records));
    await withPublishedCollection(rt, collection, async ({ collection: opened, entry }) => {
      expect(entry.key).toBe(published.snapshotKey);
      expect(await opened.count()).toBe(200);
      const probe = records[123]!;
      if (probe.op !== 'upsert') throw new Error('expected an upsert');
      const result = await opened.query({ queryEmbeddings: [Array.from(probe.embedding)], nResults: 3 });
      expect(result.ids[0]?.[0]).toBe(probe.id);
    });
  });
});
