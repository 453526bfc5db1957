import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordOp } from '../../lambdas/core/records/records.ts';
import { makeUpserts, toJsonl } from './records.ts';

/** Writes an input directory DIR/<collection>/<file> from the given file contents (text or bytes). */
export async function writeInputDir(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'embedflow-input-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path.split('/').slice(0, -1).join('/')), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

/** `count` delta files for one collection, `perDelta` fresh records each (ids `${prefix}-d{delta}-{i}`). */
export function deltaFiles(
  collection: string,
  prefix: string,
  count: number,
  perDelta: number,
  dimension: number,
): Record<string, string> {
  const files: Record<string, string> = {};
  // Different prefixes must give different vectors: a tie in distance would make queries ambiguous.
  const prefixSeed = [...prefix].reduce((sum, char) => sum * 31 + char.charCodeAt(0), 7) % 100_000;
  for (let delta = 0; delta < count; delta++) {
    const ops: RecordOp[] = makeUpserts(
      `${prefix}-d${String(delta).padStart(4, '0')}`,
      perDelta,
      dimension,
      prefixSeed * 10_000 + delta + 1,
    );
    files[`${collection}/delta-${String(delta).padStart(4, '0')}.jsonl`] = toJsonl(ops);
  }
  return files;
}
