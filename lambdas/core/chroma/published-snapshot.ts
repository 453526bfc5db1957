import { rm } from 'node:fs/promises';
import type { Collection } from 'chromadb';
import { StorageError } from '../errors.ts';
import type { Pointer, PointerStore, SnapshotVersion } from '../protocol/pointer.ts';
import type { SnapshotStore } from '../storage/snapshot-store.ts';
import { startChroma } from './chroma-server.ts';
import { openCollection } from './chroma-target.ts';

/**
 * Reading a published snapshot: the pointer's current version (or a retained one), copied into a
 * private directory, opened in its own Chroma server, closed and removed afterwards. A reader
 * races retention: the object the pointer named a moment ago may be gone by the time it is
 * downloaded. Reading the current version, it then retries once from the new head.
 */
export interface PublishedReaders {
  pointers: PointerStore;
  snapshots: SnapshotStore;
  workDir: string;
}

export interface OpenedSnapshot {
  collection: Collection;
  pointer: Pointer;
  entry: SnapshotVersion;
}

export class NotRetainedError extends StorageError {}

export async function withPublishedCollection<T>(
  readers: PublishedReaders,
  name: string,
  use: (opened: OpenedSnapshot) => Promise<T>,
  options: { version?: number } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const pointer = await readers.pointers.read(name);
    const wanted = options.version ?? pointer.version;
    const entry = pointer.history.find((candidate) => candidate.version === wanted);
    if (!entry) {
      throw new NotRetainedError(
        pointer.version === 0
          ? `collection "${name}" has no published snapshot`
          : `version ${wanted} of "${name}" is not retained (retained: ${pointer.history.map((item) => item.version).join(', ')})`,
      );
    }
    let work: string | undefined;
    try {
      ({ path: work } = await readers.snapshots.checkout(
        { ...pointer, snapshotKey: entry.key },
        readers.workDir,
      ));
    } catch (error) {
      // Retired between reading the pointer and downloading: read the new head once more.
      if (error instanceof StorageError && options.version === undefined && attempt === 0) continue;
      throw error;
    }
    try {
      const server = await startChroma(work);
      try {
        return await use({ collection: await openCollection(server, name), pointer, entry });
      } finally {
        await server.stop();
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}
