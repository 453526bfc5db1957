import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Pointer } from '../protocol/pointer.ts';
import type { SnapshotBuilder, Workspace } from '../protocol/ports.ts';
import { TrackedIds } from '../protocol/tracked-ids.ts';
import type { RecordTarget } from '../records/record-target.ts';
import { type SnapshotStore, snapshotKey } from '../storage/snapshot-store.ts';
import { type ChromaServer, startChroma } from './chroma-server.ts';
import { chromaTarget, openCollection } from './chroma-target.ts';

/**
 * Workspaces on Chroma: the base snapshot moved out of the cache into a private directory (a
 * download on a miss; a copy where the cache is on another file system), with its own Chroma
 * server on loopback. An upload stops the server (Chroma must not be writing while its directory
 * is packed), packs and uploads; the next fold starts the server again on the same directory, so
 * folding more entries never downloads anything again. Closed after an upload, the directory
 * becomes the cache's copy of the version it was uploaded as; closed without one (a failed
 * build, a fold that changed nothing, a copy prepared ahead and not used), it is removed (its
 * server may have written to it), and the next build downloads its base.
 */
export class ChromaSnapshotBuilder implements SnapshotBuilder {
  constructor(
    private readonly snapshots: SnapshotStore,
    private readonly workDir: string,
  ) {}

  async open(base: Pointer): Promise<Workspace> {
    const work = await this.snapshots.checkout(base, this.workDir, { take: true });
    const snapshots = this.snapshots;
    let server: ChromaServer | undefined;
    let target: RecordTarget | undefined;
    /** The key the directory was last uploaded to, while nothing has touched it since. */
    let uploadedAs: string | undefined;
    const ids = new TrackedIds(async () => {
      if (!base.snapshotKey) return [];
      return (await snapshots.getIds(base.snapshotKey)) ?? (await (await workspace.target()).allIds());
    });
    const workspace: Workspace = {
      cacheHit: work.cacheHit,
      async target() {
        if (!server) {
          uploadedAs = undefined; // a running server may write to the directory
          server = await startChroma(work.path);
          target = ids.track(chromaTarget(await openCollection(server, base.collection), server));
        }
        return target!;
      },
      async upload(version, label) {
        await server?.stop();
        server = undefined;
        // A nonce keeps two builds of one version (a retried Lambda) from ever writing the same key.
        const key = snapshotKey(base.collection, version, `${label}-${randomUUID().slice(0, 8)}`);
        await snapshots.upload(work.path, key);
        uploadedAs = key;
        return key;
      },
      ids: () => ids.current(),
      async close() {
        await server?.stop();
        server = undefined;
        // What was uploaded last is the next build's starting point: cached as it is, not downloaded again.
        if (uploadedAs) await snapshots.adopt(work.path, uploadedAs);
        else await rm(work.path, { recursive: true, force: true });
      },
    };
    return workspace;
  }
}
