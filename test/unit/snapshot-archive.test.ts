import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../lambdas/core/storage/object-store.ts';
import { SnapshotStore, snapshotKey } from '../../lambdas/core/storage/snapshot-store.ts';

/** The two calls a snapshot archive makes, over a map: what was stored is what is read back. */
function memoryObjects(failUploads = false) {
  const stored = new Map<string, Buffer>();
  const objects = {
    async uploadStream(key: string, body: Readable | Buffer) {
      if (failUploads) throw new Error('AccessDenied: no write to this bucket');
      const chunks: Buffer[] = [];
      for await (const chunk of Readable.from(body)) chunks.push(Buffer.from(chunk as Uint8Array));
      stored.set(key, Buffer.concat(chunks));
    },
    async getStream(key: string) {
      const body = stored.get(key);
      if (!body) throw new Error(`no object ${key}`);
      return Readable.from([body]);
    },
  };
  return { stored, objects: objects as unknown as ObjectStore };
}

let root: string;
let source: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedflow-archive-'));
  source = join(root, 'persist');
  await mkdir(join(source, 'segment'), { recursive: true });
  await writeFile(join(source, 'chroma.sqlite3'), 'rows');
  // as Chroma's preallocated HNSW file: mostly zeros
  await writeFile(join(source, 'segment', 'data_level0.bin'), Buffer.alloc(4 * 1024 * 1024));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function unpackedFiles(path: string) {
  return {
    sqlite: await readFile(join(path, 'chroma.sqlite3'), 'utf8'),
    hnsw: (await readFile(join(path, 'segment', 'data_level0.bin'))).length,
  };
}

describe('snapshot archives', () => {
  it('packs a persist directory as a zstd tar that unpacks to the same files', async () => {
    const { stored, objects } = memoryObjects();
    const key = snapshotKey('words', 1, 'run-1');
    expect(key).toMatch(/\.tar\.zst$/);
    await new SnapshotStore(objects, join(root, 'cache-a')).upload(source, key);
    const archive = stored.get(key)!;
    expect([...archive.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    expect(archive.length).toBeLessThan(64 * 1024); // the zeros are gone
    const { path, cacheHit } = await new SnapshotStore(objects, join(root, 'cache-b')).materialize(key);
    expect(cacheHit).toBe(false);
    expect(await unpackedFiles(path)).toEqual({ sqlite: 'rows', hnsw: 4 * 1024 * 1024 });
  });

  it('reads a plain .tar snapshot written before snapshots were compressed', async () => {
    const { stored, objects } = memoryObjects();
    const key = snapshotKey('words', 1, 'run-1').replace(/\.zst$/, '');
    await new SnapshotStore(objects, join(root, 'cache-a')).upload(source, key);
    expect(stored.get(key)!.length).toBeGreaterThan(4 * 1024 * 1024); // stored as it is
    const { path } = await new SnapshotStore(objects, join(root, 'cache-b')).materialize(key);
    expect(await unpackedFiles(path)).toEqual({ sqlite: 'rows', hnsw: 4 * 1024 * 1024 });
  });

  for (const [kind, extension] of [
    ['zstd', '.tar.zst'],
    ['plain', '.tar'],
  ] as const) {
    it(`refuses a truncated ${kind} archive as unreadable, naming it, and caches nothing`, async () => {
      const { stored, objects } = memoryObjects();
      const key = snapshotKey('words', 1, 'run-1').replace(/\.tar\.zst$/, extension);
      await new SnapshotStore(objects, join(root, 'cache-a')).upload(source, key);
      const whole = stored.get(key)!;
      stored.set(key, whole.subarray(0, Math.floor(whole.length / 2)));
      const cache = join(root, 'cache-b');
      await expect(new SnapshotStore(objects, cache).materialize(key)).rejects.toThrow(
        new RegExp(`snapshot ${key.replace(/\./g, '\\.')} is unreadable`),
      );
      expect(await readdir(join(cache, 'snapshots', 'words'))).toEqual([]);
    });
  }

  it('refuses a plain archive with a corrupt entry header instead of skipping the entry', async () => {
    const { stored, objects } = memoryObjects();
    const key = snapshotKey('words', 1, 'run-1').replace(/\.zst$/, '');
    await new SnapshotStore(objects, join(root, 'cache-a')).upload(source, key);
    const corrupt = Buffer.from(stored.get(key)!);
    corrupt[0] = corrupt[0]! ^ 0xff; // the first entry's name: its header checksum no longer matches
    stored.set(key, corrupt);
    await expect(new SnapshotStore(objects, join(root, 'cache-b')).materialize(key)).rejects.toThrow(
      /is unreadable/,
    );
  });

  it("fails with the store's error when the upload is refused, and stores nothing", async () => {
    const { stored, objects } = memoryObjects(true);
    const store = new SnapshotStore(objects, join(root, 'cache-a'));
    await expect(store.upload(source, snapshotKey('words', 1, 'run-1'))).rejects.toThrow(/AccessDenied/);
    expect(stored.size).toBe(0);
  });

  describe("a builder's checkout", () => {
    const pointerOf = (key: string) =>
      ({ collection: 'words', snapshotKey: key }) as unknown as Parameters<SnapshotStore['checkout']>[0];
    async function cachedVersion(cacheDir: string) {
      const { objects } = memoryObjects();
      const key = snapshotKey('words', 1, 'run-1');
      const store = new SnapshotStore(objects, cacheDir);
      await store.upload(source, key);
      const { path } = await store.materialize(key);
      return { store, key, cached: path };
    }

    it('moves the cached copy on one file system (a reader that comes after downloads it)', async () => {
      const { store, key, cached } = await cachedVersion(join(root, 'cache'));
      const work = await store.checkout(pointerOf(key), join(root, 'work'), { take: true });
      expect(work.cacheHit).toBe(true);
      expect(await unpackedFiles(work.path)).toEqual({ sqlite: 'rows', hnsw: 4 * 1024 * 1024 });
      expect(existsSync(cached)).toBe(false);
      const reader = await store.checkout(pointerOf(key), join(root, 'work'));
      expect(reader.cacheHit).toBe(false);
      expect(existsSync(cached)).toBe(true);
    });

    // tmpfs where this machine has one beside the temp dir's file system (Linux)
    const otherFileSystem =
      existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(tmpdir()).dev ? '/dev/shm' : null;
    it.skipIf(otherFileSystem === null)(
      'copies it when the cache is on another file system, and leaves the cache as it was',
      async () => {
        const shm = await mkdtemp(join(otherFileSystem!, 'embedflow-cache-'));
        try {
          const { store, key, cached } = await cachedVersion(shm);
          const work = await store.checkout(pointerOf(key), join(root, 'work'), { take: true });
          expect(work.cacheHit).toBe(true);
          expect(await unpackedFiles(work.path)).toEqual({ sqlite: 'rows', hnsw: 4 * 1024 * 1024 });
          expect(await unpackedFiles(cached)).toEqual({ sqlite: 'rows', hnsw: 4 * 1024 * 1024 });
        } finally {
          await rm(shm, { recursive: true, force: true });
        }
      },
    );
  });
});
