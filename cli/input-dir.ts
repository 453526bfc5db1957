import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { validateCollectionName } from '../lambdas/core/records/records.ts';
import type { ObjectStore } from '../lambdas/core/storage/object-store.ts';
import type { RunInput } from '../lambdas/core/workflow/run-input.ts';
import { inputPrefix } from '../lambdas/core/workflow/run-layout.ts';
import { UsageError } from './output.ts';

/** `run --input DIR`: DIR/<collection>/*.jsonl, every file one delta, applied in name order. */
export interface LocalInput {
  dir: string;
  collections: { name: string; files: string[] }[];
}

export async function scanInputDir(dir: string): Promise<LocalInput> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new UsageError(`--input ${dir}: no such directory`);
  const collections: LocalInput['collections'] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (!entry.isDirectory()) continue;
    const files = (await readdir(join(dir, entry.name))).filter((file) => file.endsWith('.jsonl')).sort();
    if (files.length === 0) continue;
    try {
      validateCollectionName(entry.name, `--input ${join(dir, entry.name)}: collection`);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    collections.push({ name: entry.name, files });
  }
  if (collections.length === 0) {
    throw new UsageError(`--input ${dir}: no delta files found (expected ${dir}/<collection>/*.jsonl)`);
  }
  return { dir, collections };
}

/** Copies the deltas to the bucket under the run's input prefix and returns the execution input. */
export async function uploadInput(
  objects: ObjectStore,
  runId: string,
  input: LocalInput,
  ioConcurrency: number,
  onFile?: () => void,
): Promise<RunInput> {
  const limit = pLimit(ioConcurrency);
  const prefix = inputPrefix(runId);
  await Promise.all(
    input.collections.flatMap((collection) =>
      collection.files.map((file) =>
        limit(async () => {
          await objects.uploadFile(
            `${prefix}${collection.name}/${file}`,
            join(input.dir, collection.name, file),
          );
          onFile?.();
        }),
      ),
    ),
  );
  return {
    runId,
    collections: input.collections.map((collection) => ({
      name: collection.name,
      deltaPrefix: `${prefix}${collection.name}/`,
    })),
  };
}
