import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChroma, stopAllChromaServers } from '../../lambdas/core/chroma/chroma-server.ts';
import { ChromaStartError } from '../../lambdas/core/errors.ts';
import { eventually } from '../helpers/processes.ts';

/** A Chroma server dies with the process that started it, however that process dies. */
const require = createRequire(import.meta.url);
const PARENT = join(import.meta.dirname, '..', 'helpers', 'chroma-parent.ts');
let root: string;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (dead, not yet reaped by its new parent) counts as gone.
  return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedflow-watchdog-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('Chroma server lifetime', () => {
  it('exits by itself when its parent is killed with SIGKILL', async () => {
    const parent = spawn(
      process.execPath,
      ['--import', require.resolve('tsx'), PARENT, join(root, 'orphan')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const serverPid = await new Promise<number>((resolve) =>
      parent.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
    );
    expect(alive(serverPid)).toBe(true);
    parent.kill('SIGKILL');
    await eventually('the orphaned server to exit', async () => (alive(serverPid) ? undefined : true));
  });

  it('stopAllChromaServers stops this process’s servers and refuses new ones', async () => {
    const server = await startChroma(join(root, 'own'));
    await stopAllChromaServers('the test is shutting down');
    expect(alive(server.pid)).toBe(false);
    await expect(startChroma(join(root, 'late'))).rejects.toThrow(ChromaStartError);
    await expect(startChroma(join(root, 'late'))).rejects.toThrow('the test is shutting down');
  });
});
