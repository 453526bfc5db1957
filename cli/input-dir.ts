import type { Dirent } from 'node:fs';
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import pLimit from 'p-limit';
import { CHROMA_DIRECTORY_MARKER } from '../lambdas/core/chroma/chroma-delta.ts';
import { DELTA_KINDS, type DeltaKind, fileDeltaKind } from '../lambdas/core/records/deltas.ts';
import { validateCollectionName } from '../lambdas/core/records/records.ts';
import type { ObjectStore } from '../lambdas/core/storage/object-store.ts';
import type { RunInput } from '../lambdas/core/workflow/run-input.ts';
import { inputPrefix } from '../lambdas/core/workflow/run-layout.ts';
import { info, UsageError } from './output.ts';

/**
 * `run --input DIR`: DIR/<collection>/<delta>, every delta a `.jsonl` file, a `.jsonl.gz` file or
 * a Chroma persist directory, applied in name order. Nothing is skipped silently: an entry that
 * is not a delta is refused (or, with --skip-unknown, skipped with a warning), and a delta that
 * cannot be read (a dangling link, a link out of DIR, a directory named *.jsonl) is always refused.
 */
export interface LocalDelta {
  name: string;
  kind: DeltaKind;
  /** Files to upload, relative to the delta (a Chroma directory's files; `[""]` for a file delta). */
  files: string[];
}

export interface LocalInput {
  dir: string;
  collections: { name: string; deltas: LocalDelta[] }[];
}

export interface ScanOptions {
  skipUnknown?: boolean;
  warn?: (message: string) => void;
}

/** What an entry of DIR is once links are resolved, or why it cannot be used. */
type Resolved = { type: 'file' | 'directory' | 'other'; real: string } | { problem: string };

class Scan {
  /** Entries that are not deltas, with what they are ("is not a delta"). */
  readonly unknown: { label: string; what: string }[] = [];
  readonly unreadable: string[] = [];
  constructor(
    readonly dir: string,
    readonly realDir: string,
  ) {}

  label(path: string): string {
    return relative(this.dir, path).split(sep).join('/');
  }

  /** Follows a link only when it ends inside DIR; a plain entry is what it is. */
  async resolve(path: string, entry: Dirent): Promise<Resolved> {
    if (!entry.isSymbolicLink()) {
      const type = entry.isFile() ? 'file' : entry.isDirectory() ? 'directory' : 'other';
      return { type, real: path };
    }
    const target = await readlink(path);
    const real = await realpath(path).catch(() => null);
    if (real === null) return { problem: `is a symlink to ${target}, which does not exist` };
    if (real !== this.realDir && !real.startsWith(this.realDir + sep)) {
      return {
        problem: `is a symlink to ${real}, outside the input directory: embedflow follows no link out of it`,
      };
    }
    const info = await stat(real);
    return { type: info.isFile() ? 'file' : info.isDirectory() ? 'directory' : 'other', real };
  }
}

export async function scanInputDir(dir: string, options: ScanOptions = {}): Promise<LocalInput> {
  const top = await stat(dir).catch(() => null);
  if (!top?.isDirectory()) throw new UsageError(`--input ${dir}: no such directory`);
  const scan = new Scan(dir, await realpath(dir));
  const warn = options.warn ?? ((message: string) => info(`warning: ${message}`));
  const collections: LocalInput['collections'] = [];
  for (const entry of await sortedEntries(dir)) {
    const path = join(dir, entry.name);
    const resolved = await scan.resolve(path, entry);
    if ('problem' in resolved) {
      scan.unreadable.push(`${entry.name} ${resolved.problem}`);
      continue;
    }
    if (resolved.type !== 'directory') {
      scan.unknown.push({
        label: entry.name,
        what: 'is not a folder (DIR holds one folder per collection: DIR/<collection>/<delta>)',
      });
      continue;
    }
    try {
      validateCollectionName(entry.name, `--input ${path}: collection`);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const deltas = await scanCollection(scan, path);
    if (deltas.length === 0)
      warn(`--input ${path} holds no deltas: collection ${entry.name} is not part of this run`);
    else collections.push({ name: entry.name, deltas });
  }
  if (scan.unreadable.length > 0) {
    throw new UsageError(problemList(dir, scan.unreadable));
  }
  if (scan.unknown.length > 0) {
    if (!options.skipUnknown) {
      throw new UsageError(
        problemList(
          dir,
          scan.unknown.map(({ label, what }) => `${label} ${what}`),
          `${DELTA_KINDS}; --skip-unknown skips entries that are not deltas, with a warning`,
        ),
      );
    }
    for (const { label, what } of scan.unknown) warn(`--input ${dir}: skipped ${label}, which ${what}`);
  }
  if (collections.length === 0) {
    throw new UsageError(
      `--input ${dir}: no deltas found (expected ${dir}/<collection>/<delta>; ${DELTA_KINDS})`,
    );
  }
  return { dir, collections };
}

async function scanCollection(scan: Scan, collectionDir: string): Promise<LocalDelta[]> {
  const deltas: LocalDelta[] = [];
  for (const entry of await sortedEntries(collectionDir)) {
    const path = join(collectionDir, entry.name);
    const label = scan.label(path);
    const resolved = await scan.resolve(path, entry);
    const kind = fileDeltaKind(entry.name);
    if ('problem' in resolved) {
      scan.unreadable.push(`${label} ${resolved.problem}`);
    } else if (kind && resolved.type === 'directory') {
      scan.unreadable.push(`${label} is a directory, not a ${kind} file`);
    } else if (kind && resolved.type === 'file') {
      deltas.push({ name: entry.name, kind, files: [''] });
    } else if (resolved.type === 'directory' && (await isChromaDirectory(resolved.real))) {
      const files = await chromaDirectoryFiles(scan, path, new Set([resolved.real]));
      deltas.push({ name: entry.name, kind: 'chroma', files });
    } else {
      const what =
        resolved.type === 'directory' ? `a folder without ${CHROMA_DIRECTORY_MARKER}` : 'not a delta';
      scan.unknown.push({ label, what: `is ${what}` });
    }
  }
  return deltas;
}

async function isChromaDirectory(real: string): Promise<boolean> {
  return (await stat(join(real, CHROMA_DIRECTORY_MARKER)).catch(() => null))?.isFile() ?? false;
}

/** Every file of a Chroma persist directory, relative to it; links are followed only inside DIR. */
async function chromaDirectoryFiles(
  scan: Scan,
  root: string,
  visited: Set<string>,
  sub = '',
): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await sortedEntries(join(root, sub))) {
    const rel = sub ? `${sub}/${entry.name}` : entry.name;
    const path = join(root, rel);
    const resolved = await scan.resolve(path, entry);
    if ('problem' in resolved) scan.unreadable.push(`${scan.label(path)} ${resolved.problem}`);
    else if (resolved.type === 'file') files.push(rel);
    else if (resolved.type === 'other') scan.unreadable.push(`${scan.label(path)} is not a regular file`);
    else if (visited.has(resolved.real))
      scan.unreadable.push(`${scan.label(path)} links back into its own directory`);
    else files.push(...(await chromaDirectoryFiles(scan, root, new Set([...visited, resolved.real]), rel)));
  }
  return files;
}

/** Entries in name order by code unit: the order S3 lists keys in, so local and AWS runs agree. */
async function sortedEntries(dir: string): Promise<Dirent[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function problemList(dir: string, problems: string[], hint?: string): string {
  const head =
    problems.length === 1
      ? `--input ${dir}: ${problems[0]}`
      : `--input ${dir}: ${problems.length} entries refused:\n  ${problems.join('\n  ')}`;
  return hint ? `${head}\n${hint}` : head;
}

export function deltaCount(input: LocalInput): number {
  return input.collections.reduce((sum, collection) => sum + collection.deltas.length, 0);
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
      collection.deltas.flatMap((delta) =>
        delta.files.map((file) =>
          limit(async () => {
            const name = file ? `${delta.name}/${file}` : delta.name;
            await objects.uploadFile(
              `${prefix}${collection.name}/${name}`,
              join(input.dir, collection.name, name),
            );
            onFile?.();
          }),
        ),
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
