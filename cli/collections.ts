import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { CollectionInUseError, dropCollection } from '../lambdas/core/protocol/drop-collection.ts';
import type { Runtime } from '../lambdas/core/runtime.ts';
import { CollectionCatalog, EXTERNAL_EMBEDDER } from '../lambdas/core/storage/collection-catalog.ts';
import { collectionsOf } from '../local/console/execution-source.ts';
import { ExecutionStore } from '../local/execution-store.ts';
import type { Rendered } from './command-action.ts';
import { checkCollectionName } from './names.ts';
import { table, UsageError } from './output.ts';

/** `embedflow collections list | drop NAME`: what exists, and starting a collection over. */
export function catalogOf(rt: Runtime): CollectionCatalog {
  return new CollectionCatalog(rt.items, rt.aws.dynamo, rt.aws.table);
}

export async function listCollections(rt: Runtime): Promise<Rendered> {
  const [pointers, entries] = await Promise.all([rt.pointers.listCollections(), catalogOf(rt).list()]);
  const embedders = new Map(entries.map((entry) => [entry.collection, entry.embedder]));
  const collections = pointers
    .filter((pointer) => pointer.version > 0)
    .map((pointer) => ({
      name: pointer.collection,
      version: pointer.version,
      recordCount: pointer.recordCount,
      dimension: pointer.dimension,
      embedder: embedders.get(pointer.collection) ?? EXTERNAL_EMBEDDER,
      updatedAt: pointer.updatedAt,
    }));
  return {
    value: { collections },
    human: () =>
      collections.length === 0
        ? 'no collections yet: try `embedflow run --demo`'
        : table(
            ['NAME', 'VERSION', 'RECORDS', 'DIM', 'EMBEDDER', 'UPDATED'],
            collections.map((c) => [
              c.name,
              c.version,
              c.recordCount,
              c.dimension ?? '',
              c.embedder,
              c.updatedAt,
            ]),
          ),
  };
}

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

/** A local run still in flight on the collection: its publish has not taken the lock yet. */
async function runningExecutionOn(dataDir: string, collection: string): Promise<string | undefined> {
  const executions = await new ExecutionStore(join(dataDir, 'executions')).listExecutions();
  return executions.find(
    (execution) => execution.status === 'RUNNING' && collectionsOf(execution.input).includes(collection),
  )?.executionId;
}

export async function dropCollectionCommand(
  rt: Runtime,
  options: { dataDir: string; name: string; yes: boolean },
): Promise<Rendered> {
  const name = checkCollectionName(options.name, 'collection');
  const catalog = catalogOf(rt);
  const [pointer, keys, entry] = await Promise.all([
    rt.pointers.read(name),
    rt.snapshots.listKeys(name),
    catalog.get(name),
  ]);
  if (pointer.version === 0 && keys.length === 0 && entry === null) {
    throw new UsageError(`no collection "${name}" (see: embedflow collections list)`);
  }
  const running = await runningExecutionOn(options.dataDir, name);
  if (running) {
    throw new CollectionInUseError(
      `a run is in progress on "${name}" (execution ${running}): drop it once that run is done`,
    );
  }
  const what = `collection "${name}" (v${pointer.version}, ${pointer.recordCount} records${pointer.dimension ? `, ${pointer.dimension}-d` : ''}, ${keys.length} snapshot objects)`;
  if (!options.yes) {
    if (!process.stdin.isTTY) {
      throw new UsageError(
        `collections drop ${name}: add --yes to drop ${what} (stdin is not a terminal to ask)`,
      );
    }
    if (!(await confirm(`Drop ${what}? This cannot be undone. [y/N] `))) {
      return { value: { dropped: false, collection: name }, human: () => 'not dropped', exitCode: 1 };
    }
  }
  const result = await dropCollection(
    {
      items: rt.items,
      pointers: rt.pointers,
      lock: rt.lock,
      buildLease: rt.buildLease,
      log: rt.log,
      snapshots: rt.snapshots,
      changeSets: rt.changeSets,
      catalog,
    },
    name,
  );
  return {
    value: { dropped: true, ...result },
    human: () =>
      `dropped ${name}: pointer (v${result.droppedVersion}, ${result.recordCount} records), ${result.itemsDeleted} log and applied-record items, ${result.snapshotsDeleted} snapshot objects, change sets and catalog entry removed`,
  };
}
