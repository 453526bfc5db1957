import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startChroma } from '../lambdas/core/chroma/chroma-server.ts';
import { openCollection } from '../lambdas/core/chroma/chroma-target.ts';
import { publish } from '../lambdas/core/protocol/publish.ts';
import { opsChange } from '../lambdas/core/records/changes.ts';
import type { RecordOp } from '../lambdas/core/records/records.ts';
import { publishDeps, type Runtime } from '../lambdas/core/runtime.ts';
import type { Rendered } from './command-action.ts';
import { checkCollectionName } from './names.ts';
import { table, UsageError } from './output.ts';
import { newRunId } from './run.ts';

/** `snapshots list|export|rollback`: what the pointer retains, and operations on those versions. */
export async function listSnapshots(rt: Runtime, collection: string): Promise<Rendered> {
  checkCollectionName(collection);
  const pointer = await rt.pointers.read(collection);
  if (pointer.version === 0) {
    throw new UsageError(
      `collection "${collection}" has no published snapshot (see: embedflow collections list)`,
    );
  }
  const value = {
    collection,
    current: pointer.version,
    snapshots: pointer.history.map(({ version, key, recordCount, dimension, runId, createdAt }) => ({
      version,
      key,
      recordCount,
      dimension,
      runId,
      createdAt,
    })),
  };
  const human = () =>
    pointer.version === 0
      ? `collection "${collection}" has no published snapshot yet`
      : table(
          ['VERSION', 'CURRENT', 'RECORDS', 'DIM', 'RUN', 'CREATED'],
          value.snapshots.map((s) => [
            s.version,
            s.version === pointer.version ? '*' : '',
            s.recordCount,
            s.dimension ?? '',
            s.runId ?? 'stream',
            s.createdAt,
          ]),
        );
  return { value, human };
}

async function retainedVersion(rt: Runtime, collection: string, version?: number) {
  checkCollectionName(collection);
  const pointer = await rt.pointers.read(collection);
  if (pointer.version === 0) throw new UsageError(`collection "${collection}" has no published snapshot`);
  const wanted = version ?? pointer.version;
  const entry = pointer.history.find((item) => item.version === wanted);
  if (!entry) {
    throw new UsageError(
      `version ${wanted} of "${collection}" is not retained (retained: ${pointer.history.map((item) => item.version).join(', ')})`,
    );
  }
  return { pointer, entry };
}

export async function exportSnapshot(rt: Runtime, collection: string, out: string, version?: number) {
  const { entry } = await retainedVersion(rt, collection, version);
  const target = resolve(out);
  await mkdir(target, { recursive: true });
  if ((await readdir(target)).length > 0) throw new UsageError(`--out ${target} must be an empty directory`);
  const cached = await rt.snapshots.materialize(entry.key);
  await cp(cached.path, target, { recursive: true });
  const value = { collection, version: entry.version, recordCount: entry.recordCount, path: target };
  return {
    value,
    human: () => `exported ${collection} v${entry.version} (${entry.recordCount} records) to ${target}`,
  };
}

/**
 * Rollback publishes version N's content as a new version through the same protocol: the
 * history only moves forward, and a concurrent writer is rebased against, never overwritten.
 */
export async function rollbackSnapshot(rt: Runtime, collection: string, to: number): Promise<Rendered> {
  const { pointer, entry } = await retainedVersion(rt, collection, to);
  if (entry.version === pointer.version) {
    return {
      value: { rolledBackTo: to, status: 'already-current', snapshotVersion: pointer.version },
      human: () => `v${to} is already the current version of ${collection}: nothing published`,
    };
  }
  const [target, current] = await Promise.all([
    readAll(rt, entry.key, collection),
    readAll(rt, pointer.snapshotKey!, collection),
  ]);
  const ops: RecordOp[] = [...target.values()];
  for (const id of current.keys()) if (!target.has(id)) ops.push({ op: 'delete', id });
  const result = await publish(publishDeps(rt), collection, opsChange(newRunId(`rollback-v${to}`), ops));
  const value = { rolledBackTo: to, ...result };
  if (result.status === 'already-applied') {
    return {
      value,
      human: () => `the rollback of ${collection} to v${to} was applied already: nothing changed`,
    };
  }
  return {
    value,
    human: () =>
      `published v${result.snapshotVersion} of ${collection} with the content of v${to} (${result.recordCount} records)`,
  };
}

async function readAll(rt: Runtime, key: string, collection: string): Promise<Map<string, RecordOp>> {
  const { path: work } = await rt.snapshots.checkout({ collection, snapshotKey: key }, rt.workDir);
  const server = await startChroma(work);
  try {
    const opened = await openCollection(server, collection);
    const records = new Map<string, RecordOp>();
    const total = await opened.count();
    for (let offset = 0; offset < total; offset += 1000) {
      const page = await opened.get({
        limit: 1000,
        offset,
        include: ['embeddings', 'documents', 'metadatas'],
      });
      page.ids.forEach((id, index) => {
        records.set(id, {
          op: 'upsert',
          id,
          embedding: Float32Array.from(page.embeddings[index] as number[]),
          ...(page.documents[index] != null && { document: page.documents[index] as string }),
          ...(page.metadatas[index] != null && {
            metadata: page.metadatas[index] as Record<string, string | number | boolean>,
          }),
        });
      });
    }
    return records;
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}
