import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { stopAllChromaServers } from '../lambdas/core/chroma/chroma-server.ts';
import { info } from './output.ts';

/**
 * Everything a CLI process writes besides the shared stack lives in one directory of its own,
 * `<dataDir>/work/p<pid>-<nonce>/`: the publish work copies (EMBEDFLOW_WORK_DIR), the temp files of
 * code that uses os.tmpdir() (TMPDIR points inside), the demo's generated input. So:
 *  - a normal exit removes it;
 *  - SIGINT, SIGTERM or SIGHUP stop this process's Chroma servers first, then remove it, then exit
 *    with 128 + the signal number (a second signal exits at once);
 *  - after a SIGKILL the Chroma servers die on their own (their watchdog), and the next CLI start on
 *    the data directory removes the directories of processes that are gone.
 */
export interface ProcessScope {
  dir: string;
  /** A directory inside the scope for one purpose (removed with it). */
  subdir(name: string): Promise<string>;
}

interface Owner {
  host: string;
  pid: number;
  /** Kernel start time of the process (Linux), so a recycled pid is not taken for the owner. */
  startTicks: string | null;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
const OWNER_FILE = 'owner.json';

let current: Promise<ProcessScope> | undefined;
let stoppingOn: NodeJS.Signals | undefined;

/** The signal this process is stopping on, if any: what fails after it is its own doing, not news. */
export function stoppingSignal(): NodeJS.Signals | undefined {
  return stoppingOn;
}

function startTicks(pid: number): string | null {
  try {
    // Field 22 of /proc/PID/stat, counted after the command name (which may contain spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isRunning(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ticks = startTicks(owner.pid);
  return owner.startTicks === null || ticks === null || ticks === owner.startTicks;
}

/** Removes the scopes of this host's processes that are gone; returns the directories removed. */
export async function sweepDeadScopes(workRoot: string): Promise<string[]> {
  const entries = await readdir(workRoot).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const entry of entries.filter((name) => /^p\d+-/.test(name))) {
    const dir = join(workRoot, entry);
    let owner: Owner;
    try {
      owner = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as Owner;
    } catch {
      continue; // being created right now, or not ours to judge
    }
    if (owner.host !== hostname() || isRunning(owner)) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

async function create(dataDir: string): Promise<ProcessScope> {
  const workRoot = join(resolve(dataDir), 'work');
  const removed = await sweepDeadScopes(workRoot);
  if (removed.length > 0)
    info(`removed ${removed.length} work director${removed.length === 1 ? 'y' : 'ies'} of stopped processes`);
  const dir = join(workRoot, `p${process.pid}-${randomUUID().slice(0, 8)}`);
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const owner: Owner = { host: hostname(), pid: process.pid, startTicks: startTicks(process.pid) };
  await writeFile(join(dir, OWNER_FILE), JSON.stringify(owner));
  process.env.EMBEDFLOW_WORK_DIR = dir;
  process.env.TMPDIR = join(dir, 'tmp');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  installSignalHandlers(dir);
  return {
    dir,
    async subdir(name) {
      const path = join(dir, name);
      await mkdir(path, { recursive: true });
      return path;
    },
  };
}

function installSignalHandlers(dir: string): void {
  const stop = (signal: NodeJS.Signals) => {
    const code = 128 + (SIGNAL_NUMBERS[signal] ?? 0);
    if (stoppingOn) process.exit(code);
    stoppingOn = signal;
    info(`embedflow: ${signal}: stopping Chroma servers and removing ${dir}`);
    stopAllChromaServers(`the CLI is stopping (${signal})`)
      .then(() => rm(dir, { recursive: true, force: true }))
      .catch((error: unknown) => info(`embedflow: cleanup after ${signal} failed: ${String(error)}`))
      .finally(() => process.exit(code));
  };
  for (const signal of Object.keys(SIGNAL_NUMBERS) as NodeJS.Signals[]) process.on(signal, stop);
}

/** The scope of this process on `dataDir`, created (and dead ones swept) on first use. */
export function processScope(dataDir: string): Promise<ProcessScope> {
  current ??= create(dataDir);
  return current;
}
