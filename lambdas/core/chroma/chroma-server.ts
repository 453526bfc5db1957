import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { promisify } from 'node:util';
import { ChromaClient } from 'chromadb';
import { ChromaStartError } from '../errors.ts';
import { withHugePageMalloc } from '../malloc-tunables.ts';

/**
 * A Chroma server on loopback over one persist directory, as a child process (the npm package's
 * native server; the same in Lambda, under /tmp). Stopped with SIGTERM, then SIGKILL if it hangs:
 * a killed server's directory still reopens with every record.
 *
 * The server binds port 0 and we read the port it got from its own listening socket. Probing a
 * free port first and handing it over is a race: two publishes starting at once got the same
 * port, the loser's server failed to bind, and its heartbeat was answered by the winner's server,
 * so both wrote into one directory. A port read off the child's socket can only be the child's.
 *
 * A server never outlives the process that started it: it runs with a watchdog (a worker thread
 * loaded with --import) that kills it once its stdin pipe closes, which the kernel does when the
 * parent dies, SIGKILL included. stopAllChromaServers() is for a parent's own signal handlers.
 */
export interface ChromaServer {
  port: number;
  pid: number;
  path: string;
  client: ChromaClient;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);
const execFileAsync = promisify(execFile);

export function chromaCliPath(): string {
  if (process.env.CHROMA_CLI_PATH) return process.env.CHROMA_CLI_PATH;
  // chromadb exports no package.json: find its dist folder from the resolved entry point.
  const entry = require.resolve('chromadb');
  return join(entry.slice(0, entry.lastIndexOf(`${sep}dist${sep}`)), 'dist', 'cli.mjs');
}

/** Ports on which process `pid` itself listens (TCP, IPv4 or IPv6). */
export async function listeningPorts(pid: number): Promise<number[]> {
  if (process.platform !== 'linux') return listeningPortsWithLsof(pid);
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return []; // the process is gone
  }
  await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const socket = /^socket:\[(\d+)\]$/.exec(target);
      if (socket) inodes.add(socket[1]!);
    }),
  );
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT, state 0A is LISTEN, field 9 is the socket inode
      if (fields.length < 10 || fields[3] !== '0A' || !inodes.has(fields[9]!)) continue;
      ports.push(Number.parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

async function listeningPortsWithLsof(pid: number): Promise<number[]> {
  try {
    const { stdout } = await execFileAsync('lsof', [
      '-a',
      '-p',
      String(pid),
      '-iTCP',
      '-sTCP:LISTEN',
      '-P',
      '-n',
      '-Fn',
    ]);
    return stdout
      .split('\n')
      .filter((line) => line.startsWith('n'))
      .map((line) => Number(line.slice(line.lastIndexOf(':') + 1)))
      .filter((port) => Number.isInteger(port) && port > 0);
  } catch {
    return [];
  }
}

async function waitForOwnServer(child: ChildProcess, path: string, output: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    const [port] = await listeningPorts(child.pid!);
    if (port !== undefined) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/api/v2/heartbeat`);
        if (response.ok) return port;
      } catch {
        // listening, not serving yet
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const how =
    child.exitCode !== null || child.signalCode !== null
      ? `exited (${child.exitCode ?? child.signalCode})`
      : `did not answer within ${timeoutMs} ms`;
  throw new ChromaStartError(`Chroma server for ${path} ${how}: ${startFailureReason(output())}`);
}

/** The server's panic message when it has one (the backtrace after it says nothing to a user). */
export function startFailureReason(output: string): string {
  const panic = /panicked at [^\n]*\n([^\n]+)/.exec(output);
  return panic ? panic[1]!.trim() : output.slice(-500);
}

// Runs in a worker thread of the server process (its main thread is inside the native server and
// never runs JavaScript again): blocks reading stdin, and kills the process at end of file.
const WATCHDOG = `
const { readSync } = require('node:fs');
const buffer = Buffer.alloc(256);
const pause = new Int32Array(new SharedArrayBuffer(4));
for (;;) {
  let read = 0;
  try { read = readSync(0, buffer); } catch (error) {
    if (error.code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 50); continue; }
  }
  if (read === 0) break;
}
process.kill(process.pid, 'SIGKILL');
`;
/** A data: URL, so the watchdog needs no file beside this module (a Lambda bundle has none). */
export const WATCHDOG_IMPORT = `data:text/javascript,${encodeURIComponent(
  `import { Worker } from 'node:worker_threads'; new Worker(${JSON.stringify(WATCHDOG)}, { eval: true }).unref();`,
)}`;

const running = new Set<ChildProcess>();
let refusing: string | undefined;

/**
 * Stops every server this process started and refuses new ones from then on (with `reason`): a
 * shutting-down CLI must not have a handler still in flight start another server behind its back.
 */
export async function stopAllChromaServers(reason: string): Promise<void> {
  refusing = reason;
  await Promise.all([...running].map(stopChild));
}

export async function startChroma(path: string, timeoutMs = 30_000): Promise<ChromaServer> {
  if (refusing !== undefined)
    throw new ChromaStartError(`not starting a Chroma server for ${path}: ${refusing}`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      WATCHDOG_IMPORT,
      chromaCliPath(),
      'run',
      '--path',
      path,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: withHugePageMalloc({ ...process.env, CHROMA_TELEMETRY_DISABLED: 'true' }),
    },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  // The pipe is only there to close when we die; a write error after the child exited is harmless.
  child.stdin?.on('error', () => {});
  let output = '';
  const collect = (chunk: Buffer) => {
    // The start banner and a panic message come first: keep the head, not only the tail.
    if (output.length < 64_000) output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let port: number;
  try {
    port = await waitForOwnServer(child, path, () => output, timeoutMs);
  } catch (error) {
    await stopChild(child); // never leave a server behind writing into a directory we will delete
    throw error;
  }
  return {
    port,
    pid: child.pid ?? 0,
    path,
    client: new ChromaClient({ host: '127.0.0.1', port, ssl: false }),
    stop: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}
