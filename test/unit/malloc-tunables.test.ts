import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasHugePageSetting, withHugePageMalloc } from '../../lambdas/core/malloc-tunables.ts';
import { runCli } from '../helpers/cli.ts';

describe('huge-page malloc for the processes that move records', () => {
  it('adds the tunable, keeps the other tunables, and leaves a hugetlb value the user set', () => {
    expect(withHugePageMalloc({}).GLIBC_TUNABLES).toBe('glibc.malloc.hugetlb=1');
    expect(withHugePageMalloc({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES).toBe(
      'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1',
    );
    const own = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' };
    expect(withHugePageMalloc(own)).toBe(own);
    expect(hasHugePageSetting({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=2' })).toBe(true);
    expect(hasHugePageSetting({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).toBe(false);
  });

  describe.runIf(process.platform === 'linux')('the CLI', () => {
    let dir: string;
    let preload: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'embedflow-tunables-'));
      // Loaded into every start of the process, the restart included: prints what that start saw.
      preload = join(dir, 'print-tunables.cjs');
      await writeFile(preload, 'process.stderr.write(`start: ${process.env.GLIBC_TUNABLES}\\n`);\n');
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const starts = async (args: string[]) => {
      const result = await runCli(args, { NODE_OPTIONS: `--require ${preload}`, GLIBC_TUNABLES: undefined });
      expect(result.code).toBe(0);
      return result.stderr.split('\n').filter((line) => line.startsWith('start: '));
    };

    it('restarts a long command once, in place, under the setting', async () => {
      expect(await starts(['run', '--help'])).toEqual(['start: undefined', 'start: glibc.malloc.hugetlb=1']);
      expect(await starts(['bench', '--help'])).toHaveLength(2);
    });

    it('starts a short command once, as it is', async () => {
      expect(await starts(['executions', '--help'])).toEqual(['start: undefined']);
    });
  });
});
