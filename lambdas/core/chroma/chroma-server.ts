import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join, sep } from 'node:path';
import { ChromaClient } from 'chromadb';
import { StorageError } from '../errors.ts';

/**
 * A Chroma server on loopback over one persist directory, as a child process (the npm package's
 * native server; the same in Lambda, under /tmp). Stopped with SIGTERM, then SIGKILL if it hangs:
 * a killed server's directory still reopens with every record.
 */
export interface ChromaServer {
  port: number;
  pid: number;
  path: string;
  client: ChromaClient;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

export function chromaCliPath(): string {
  if (process.env.CHROMA_CLI_PATH) return process.env.CHROMA_CLI_PATH;
  // chromadb exports no package.json: find its dist folder from the resolved entry point.
  const entry = require.resolve('chromadb');
  return join(entry.slice(0, entry.lastIndexOf(`${sep}dist${sep}`)), 'dist', 'cli.mjs');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForHeartbeat(port: number, child: ChildProcess, output: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const response = await fetch(`http://127.0.0.1:${port}/api/v2/heartbeat`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill('SIGKILL');
  throw new StorageError(`Chroma server on port ${port} did not start: ${output().slice(-500)}`);
}

export async function startChroma(path: string, timeoutMs = 30_000): Promise<ChromaServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [chromaCliPath(), 'run', '--path', path, '--host', '127.0.0.1', '--port', String(port)],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CHROMA_TELEMETRY_DISABLED: 'true' } },
    );
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    try {
      await waitForHeartbeat(port, child, () => output, timeoutMs);
    } catch (error) {
      lastError = error; // most likely another process took the port between probe and bind
      await stopChild(child); // never leave a server behind writing into a directory we will delete
      continue;
    }
    return {
      port,
      pid: child.pid ?? 0,
      path,
      client: new ChromaClient({ host: '127.0.0.1', port, ssl: false }),
      stop: () => stopChild(child),
    };
  }
  throw lastError;
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
