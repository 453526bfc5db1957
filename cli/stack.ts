import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { alive } from '../local/process-alive.ts';
import { ensureTable, localEnv, startLocalServices } from '../local/services.ts';

/**
 * The local stack shared by every CLI process on one data directory: the first process starts
 * the services detached and records their ports in `stack.json`; later processes reuse them, so
 * no two processes ever open the same DynamoDB or S3 files.
 */
export interface StackInfo {
  pid: number;
  s3Port: number;
  dynamoPort: number;
  startedAt: string;
  dataDir: string;
}

const stackFile = (dataDir: string) => join(dataDir, 'stack.json');
const startLock = (dataDir: string) => join(dataDir, 'stack.starting');

function listening(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolvePort(true);
    });
    socket.once('error', () => resolvePort(false));
  });
}

export async function readStack(dataDir: string): Promise<StackInfo | null> {
  try {
    const info = JSON.parse(await readFile(stackFile(dataDir), 'utf8')) as StackInfo;
    if (alive(info.pid) && (await listening(info.s3Port)) && (await listening(info.dynamoPort))) return info;
  } catch {
    // no stack file, or a stale one
  }
  return null;
}

async function takeStartLock(dataDir: string): Promise<boolean> {
  try {
    await mkdir(startLock(dataDir));
    return true;
  } catch {
    // A starter that died leaves the lock behind: it is stale after a minute.
    const info = await stat(startLock(dataDir)).catch(() => null);
    if (info && Date.now() - info.mtimeMs > 60_000)
      await rm(startLock(dataDir), { recursive: true, force: true });
    return false;
  }
}

/** Returns the running stack, starting it if needed; concurrent callers start it once. */
export async function ensureStack(
  dataDirInput: string,
): Promise<{ info: StackInfo; env: Record<string, string>; started: boolean }> {
  const dataDir = resolve(dataDirInput);
  await mkdir(dataDir, { recursive: true });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const running = await readStack(dataDir);
    if (running) {
      const env = localEnv(running.s3Port, running.dynamoPort, dataDir);
      await ensureTable(env);
      return { info: running, env, started: false };
    }
    if (await takeStartLock(dataDir)) {
      try {
        const again = await readStack(dataDir);
        if (again) continue;
        const services = await startLocalServices({ dataDir, detached: true });
        const info: StackInfo = {
          pid: services.pid,
          s3Port: services.s3Port,
          dynamoPort: services.dynamoPort,
          startedAt: new Date().toISOString(),
          dataDir,
        };
        await writeFile(stackFile(dataDir), `${JSON.stringify(info, null, 2)}\n`);
        return { info, env: services.env, started: true };
      } finally {
        await rm(startLock(dataDir), { recursive: true, force: true });
      }
    }
    await new Promise((wait) => setTimeout(wait, 100));
  }
  throw new Error(`could not start or reach the local stack in ${dataDir} within 60 s`);
}

export async function stopStack(dataDirInput: string): Promise<StackInfo | null> {
  const dataDir = resolve(dataDirInput);
  const running = await readStack(dataDir);
  if (running) {
    process.kill(running.pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(running.pid) && Date.now() < deadline) await new Promise((wait) => setTimeout(wait, 50));
    if (alive(running.pid)) process.kill(running.pid, 'SIGKILL');
  }
  await rm(stackFile(dataDir), { force: true });
  return running;
}
