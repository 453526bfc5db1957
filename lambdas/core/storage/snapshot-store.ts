import { randomUUID } from 'node:crypto';
import { cp, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createZstdCompress, createZstdDecompress, gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { StorageError } from '../errors.ts';
import type { Pointer } from '../protocol/pointer.ts';
import {
  idsKeyOf,
  isCompressedArchive,
  isSnapshotArchive,
  type SnapshotObjects,
  snapshotStem,
} from '../protocol/ports.ts';
import { BoundedCache } from './bounded-cache.ts';
import type { ObjectStore } from './object-store.ts';

/**
 * Snapshots are Chroma persist directories packed as tar and compressed with zstd (`.tar.zst`) at
 * immutable versioned keys; plain `.tar` snapshots written before compression read as they are.
 * Reads go through a cache directory keyed by version (EFS in AWS, a directory locally): a hit
 * skips the download, and a cached version is never modified: a reader copies it into a private
 * working directory, a builder moves it there (and its result comes back as the next version's).
 */
export const SNAPSHOT_PREFIX = 'snapshots/';

export function snapshotKey(collection: string, version: number, runId: string): string {
  return `${SNAPSHOT_PREFIX}${collection}/v${String(version).padStart(8, '0')}-${runId}.tar.zst`;
}

/**
 * zstd at its fastest level: Chroma preallocates its HNSW index (a 3,000 x 1536-d collection's
 * data_level0.bin is 63 MB for 18 MB of vectors, the rest zeros), so a 73 MB tar packs to 24 MB
 * in ~0.15 s, and a 50k x 64-d one from 48 to 22 MB. Higher levels gain under 2% for more time.
 */
const ZSTD_LEVEL = 1;
/** zlib's default 16 KB output chunks make a thread-pool round trip each: 1,400 for a 24 MB archive. */
const ZSTD_CHUNK_BYTES = 1024 * 1024;

export function parseSnapshotKey(key: string): { collection: string; version: number; runId: string } | null {
  if (!isSnapshotArchive(key)) return null;
  const match = /^snapshots\/(.+)\/v(\d{8,})-(.+)$/.exec(snapshotStem(key));
  if (!match) return null;
  return { collection: match[1]!, version: Number(match[2]), runId: match[3]! };
}

export interface MaterializeResult {
  path: string;
  cacheHit: boolean;
}

const LEFTOVER_MS = 60 * 60_000;
const IDS_CACHED = 4;

export class SnapshotStore implements SnapshotObjects {
  private readonly idsCache = new BoundedCache<string, ReadonlySet<string>>(IDS_CACHED);

  constructor(
    readonly objects: ObjectStore,
    readonly cacheDir: string,
  ) {}

  /**
   * Packs `dir` and uploads it to `key` (compressed for a `.tar.zst` key, in the libuv thread pool
   * while the tar streams). The directory must not be open in a server.
   */
  async upload(dir: string, key: string): Promise<void> {
    const packed = Readable.from(tar.c({ cwd: dir, portable: true }, await readdir(dir)));
    if (!isCompressedArchive(key)) return this.objects.uploadStream(key, packed, 'application/x-tar');
    const compress = createZstdCompress({
      chunkSize: ZSTD_CHUNK_BYTES,
      params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL },
    });
    try {
      await Promise.all([
        pipeline(packed, compress),
        this.objects.uploadStream(key, compress, 'application/zstd'),
      ]);
    } catch (error) {
      // A failed upload stops reading: without this the tar would wait on back-pressure forever.
      packed.destroy();
      throw error;
    }
  }

  /**
   * A private, writable copy of the pointer's snapshot (an empty directory for version 0). If the
   * cached copy is evicted while we copy it, the copy fails (eviction renames the directory away
   * in one step, so a copy is never silently partial) and we download the version once more.
   * `take`: a builder's checkout moves the cached copy instead of copying it (one rename), since
   * what it builds is adopted back as the next version's copy; a reader that finds it gone
   * downloads. Copied as before when the cache is on another file system (EFS in AWS).
   */
  async checkout(
    pointer: Pick<Pointer, 'collection' | 'snapshotKey'>,
    workRoot: string,
    { take = false } = {},
  ): Promise<{ path: string; cacheHit: boolean }> {
    const path = join(workRoot, `work-${pointer.collection}-${randomUUID()}`);
    if (!pointer.snapshotKey) {
      await mkdir(path, { recursive: true });
      return { path, cacheHit: false };
    }
    for (let attempt = 0; ; attempt++) {
      const cached = await this.materialize(pointer.snapshotKey);
      try {
        if (!(take && (await movedAway(cached.path, path))))
          await cp(cached.path, path, { recursive: true, errorOnExist: true, force: false });
        return { path, cacheHit: cached.cacheHit };
      } catch (error) {
        await rm(path, { recursive: true, force: true });
        if (attempt > 0) {
          throw new StorageError(`cached snapshot ${pointer.snapshotKey} vanished twice while copying`, {
            cause: error,
          });
        }
      }
    }
  }

  /**
   * Takes `dir`, whose content is exactly what was just packed and uploaded to `key`, as the
   * cache's unpacked copy of `key`: the next build on that version starts from it instead of
   * downloading it. Moved in one rename (readers never see half); if the cache already holds the
   * version, or the cache is on another file system, `dir` is simply removed.
   */
  async adopt(dir: string, key: string): Promise<void> {
    const path = join(this.cacheDir, snapshotStem(key));
    try {
      await mkdir(dirname(path), { recursive: true });
      if (!(await exists(path))) {
        await rename(dir, path);
        return;
      }
    } catch {
      // not adopted: the next build downloads the version, as without a cache
    }
    await rm(dir, { recursive: true, force: true });
  }

  /** The unpacked snapshot in the cache; downloads into a temp dir and renames so readers never see half. */
  async materialize(key: string): Promise<MaterializeResult> {
    const path = join(this.cacheDir, snapshotStem(key));
    if (await exists(path)) return { path, cacheHit: true };
    const partial = `${path}.partial-${randomUUID()}`;
    await mkdir(partial, { recursive: true });
    try {
      const body = await this.objects.getStream(key);
      // strict: a truncated or corrupt archive is an error, never a half-unpacked snapshot
      const unpack = tar.x({ cwd: partial, strict: true });
      try {
        if (isCompressedArchive(key))
          await pipeline(body, createZstdDecompress({ chunkSize: ZSTD_CHUNK_BYTES }), unpack);
        else await pipeline(body, unpack);
      } catch (error) {
        throw new StorageError(`snapshot ${key} is unreadable: ${(error as Error).message}`, {
          cause: error,
        });
      }
      try {
        await rename(partial, path);
      } catch (error) {
        // Another process cached the same immutable version first: theirs is identical.
        if (!(await exists(path))) throw error;
        await rm(partial, { recursive: true, force: true });
      }
    } catch (error) {
      await discardPartial(partial);
      throw error;
    }
    return { path, cacheHit: false };
  }

  /**
   * Drops cached versions of a collection that are not in `keep`. Each goes in two steps: renamed
   * aside (atomic: a reader either copies the whole directory or fails and downloads again), then
   * removed. Leftovers of crashed processes (partial downloads, evicted copies) go after an hour.
   */
  async pruneCache(collection: string, keep: string[]): Promise<void> {
    const dir = join(this.cacheDir, SNAPSHOT_PREFIX, collection);
    const kept = new Set(keep.map((key) => snapshotStem(key.slice(key.lastIndexOf('/') + 1))));
    let entries: string[] = [];
    try {
      entries = await readdir(dir);
    } catch {
      return;
    }
    await Promise.all(
      entries.map(async (entry) => {
        const path = join(dir, entry);
        if (entry.includes('.partial-') || entry.includes('.evicted-')) {
          const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
          if (age > LEFTOVER_MS) await rm(path, { recursive: true, force: true });
          return;
        }
        if (kept.has(entry)) return;
        const aside = `${path}.evicted-${randomUUID()}`;
        try {
          await rename(path, aside);
        } catch {
          return; // another process evicted it first
        }
        await rm(aside, { recursive: true, force: true });
      }),
    );
  }

  /** The ids of a published snapshot, gzipped one per line beside it: what stream commits check updates against. */
  async putIds(snapshotKey: string, ids: Iterable<string>): Promise<void> {
    const text = [...ids].join('\n');
    await this.objects.uploadStream(idsKeyOf(snapshotKey), gzipSync(Buffer.from(text)), 'application/gzip');
    this.idsCache.set(snapshotKey, new Set(ids));
  }

  async getIds(snapshotKey: string): Promise<ReadonlySet<string> | null> {
    const known = this.idsCache.get(snapshotKey);
    if (known) return known;
    let body: Buffer;
    try {
      body = gunzipSync(await this.objects.getBytes(idsKeyOf(snapshotKey)));
    } catch (error) {
      if (error instanceof StorageError) return null;
      throw error;
    }
    const text = body.toString('utf8');
    const ids = new Set(text === '' ? [] : text.split('\n'));
    this.idsCache.set(snapshotKey, ids);
    return ids;
  }

  /** Deletes snapshot objects (phase D decides which: see protocol/retention.ts). */
  async deleteKeys(keys: string[]): Promise<number> {
    return this.objects.deleteKeys(keys);
  }

  async listKeys(collection: string): Promise<string[]> {
    return this.objects.listKeys(`${SNAPSHOT_PREFIX}${collection}/`);
  }
}

/** Renames `from` to `to`: false when they are on different file systems (then copy instead). */
async function movedAway(from: string, to: string): Promise<boolean> {
  await mkdir(dirname(to), { recursive: true });
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw error; // ENOENT: taken or evicted meanwhile, and the caller downloads it again
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes a failed download's directory without masking why it failed. tar may still be closing a
 * file it opened before the archive turned out bad, so a first pass can meet a directory that is
 * not empty yet: rm retries those, and what is left goes with the next prune, which removes
 * `.partial-` leftovers older than an hour.
 */
async function discardPartial(partial: string): Promise<void> {
  await rm(partial, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 }).catch(() => {});
}
