import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCliDataDir } from '../helpers/cli.ts';

/**
 * `embedflow bench` writes its report where the user says (by default under the data directory)
 * and leaves the project's docs/benchmarks.md alone unless asked (--write-docs). One quick
 * scenario keeps the test short.
 */
const data = useCliDataDir('bench');
const DOCS_REPORT = join(import.meta.dirname, '..', '..', 'docs', 'benchmarks.md');
const digest = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

describe('embedflow bench', () => {
  // Each bench runs a whole (quick) scenario: minutes on a busy machine.
  it('writes its report to the --out directory and leaves docs/benchmarks.md alone', {
    timeout: 600_000,
  }, async () => {
    const docsBefore = await digest(DOCS_REPORT);
    const out = join(data.dataDir, 'my-report');
    const named = await data.cli(['bench', '--quick', '--only', 'overhead', '--out', out, '--json']);
    expect(named.code, named.stderr).toBe(0);
    expect(named.json.report).toBe(join(out, 'benchmarks.md'));
    expect(named.stderr).toContain('--- scenario 1 of 1: overhead');
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['benchmarks.md', 'bench.json']));
    const saved = JSON.parse(await readFile(join(out, 'bench.json'), 'utf8'));
    expect(saved.scenarios.map((s: { variant: string }) => s.variant)).toEqual([
      'workflow-run',
      'raw-chroma-upsert',
      'embedflow-upsert-path',
    ]);
    expect(await readFile(join(out, 'benchmarks.md'), 'utf8')).toContain('overhead');
    expect(await digest(DOCS_REPORT)).toBe(docsBefore);
  });

  it('writes it under DATA_DIR/bench by default', { timeout: 600_000 }, async () => {
    const docsBefore = await digest(DOCS_REPORT);
    const byDefault = await data.cli(['bench', '--quick', '--only', 'overhead']);
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(byDefault.stdout).toContain(`report in ${join(data.dataDir, 'bench', 'benchmarks.md')}`);
    expect(await readdir(join(data.dataDir, 'bench'))).toContain('benchmarks.md');
    expect(await digest(DOCS_REPORT)).toBe(docsBefore);
  });
});
