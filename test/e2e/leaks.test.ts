import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, useCliDataDir } from '../helpers/cli.ts';
import { deltaFiles, writeInputDir } from '../helpers/input-dir.ts';
import { eventually, processesMatching } from '../helpers/processes.ts';

/**
 * No leaked processes or files: a CLI process killed while it builds a snapshot (SIGKILL, SIGINT,
 * SIGTERM; `run`, `stream`, `snapshots rollback`) leaves no Chroma server running, and its work
 * directory is removed (at once on a signal it can handle, at the next start after a SIGKILL).
 * Each test lists what is left.
 */
const data = useCliDataDir('leaks');
const DIM = 64;
let input: string;
let messages: string;
const inputs: string[] = [];

/** Chroma servers working on a copy inside the data directory. */
const chromaServers = () => processesMatching('cli.mjs', 'run --path', data.dataDir);
const workEntries = async () => (await readdir(join(data.dataDir, 'work')).catch(() => [])).sort();

const SHORT_LEASE = { LOCK_DURATION_SECONDS: '6', HEARTBEAT_INTERVAL_SECONDS: '2' };

function start(args: string[]): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [CLI, ...args, '--data-dir', data.dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A killed publisher's build lease lapses in seconds, so the next command does not wait a minute.
    env: { ...process.env, ...SHORT_LEASE },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : null), stderr })),
  );
  return { child, exited };
}

/** Starts the command and waits until it has a Chroma server up: the middle of a build. */
async function startAndWaitForBuild(args: string[]) {
  const started = start(args);
  await eventually(
    `a Chroma server of ${args[0]}`,
    async () => {
      if (started.child.exitCode !== null)
        throw new Error(`${args[0]} exited early: ${await started.exited.then((e) => e.stderr)}`);
      return (await chromaServers()).length > 0 ? true : undefined;
    },
    120_000,
  );
  return started;
}

beforeAll(async () => {
  // Large enough that a build takes a while: the kill lands while Chroma is applying it.
  const files = deltaFiles('big', 'k', 4, 1000, DIM);
  input = await writeInputDir(files);
  inputs.push(input);
  const seed = await data.cli(['run', '--input', input, '--run-id', 'seed-1', '--json']);
  expect(seed.code, seed.stderr).toBe(0);
  const second = await data.cli([
    'run',
    '--input',
    await writeInputDir(deltaFiles('big', 'm', 1, 10, DIM)),
    '--json',
  ]);
  expect(second.code, second.stderr).toBe(0);
  const dir = await mkdtemp(join(tmpdir(), 'embedflow-leaks-stream-'));
  inputs.push(dir);
  await writeFile(join(dir, 'big.jsonl'), Object.values(deltaFiles('big', 's', 1, 4000, DIM))[0]!);
  messages = join(dir, 'messages.jsonl');
  await writeFile(
    messages,
    `${JSON.stringify({ messageId: 'big-1', collection: 'big', operation: 'applyDelta', deltaKey: './big.jsonl' })}\n`,
  );
});

afterAll(async () => {
  await Promise.all(inputs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('a CLI killed mid-build', () => {
  it.each([
    ['run', () => ['run', '--input', input]],
    ['stream', () => ['stream', '--file', messages]],
  ])(
    'SIGKILL of %s: no Chroma server outlives it, and the next start removes its work directory',
    async (_, args) => {
      const { child, exited } = await startAndWaitForBuild(args());
      const scope = (await workEntries()).find((entry) => entry.startsWith(`p${child.pid}-`));
      expect(scope).toBeDefined();
      child.kill('SIGKILL');
      await exited;
      // The servers notice their parent is gone (their stdin pipe closes) and exit by themselves.
      const left = await eventually('the Chroma servers to exit', async () => {
        const servers = await chromaServers();
        return servers.length === 0 ? servers : undefined;
      });
      expect(left).toEqual([]);
      expect(await workEntries()).toContain(scope); // nobody could remove it yet
      const next = await data.cli(['locks', 'list']);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toMatch(/removed \d+ work director(y|ies) of stopped processes/);
      expect(await workEntries()).toEqual([]);
    },
  );

  it.each([
    ['SIGINT', 'run', 130, () => ['run', '--input', input]],
    ['SIGTERM', 'run', 143, () => ['run', '--input', input]],
    [
      'SIGTERM',
      'snapshots rollback',
      143,
      () => ['snapshots', 'rollback', '--collection', 'big', '--to', '1'],
    ],
  ])(
    '%s of %s stops its Chroma servers and removes its work directory before exiting',
    async (signal, _, code, args) => {
      const { child, exited } = await startAndWaitForBuild(args());
      child.kill(signal as NodeJS.Signals);
      const ended = await exited;
      expect(ended.code).toBe(code);
      expect(ended.stderr).toContain(`${signal}: stopping Chroma servers and removing`);
      // What fails because the shutdown stopped it (a server still starting) is not reported as an error.
      expect(ended.stderr).not.toMatch(/^embedflow: \w+Error:/m);
      // Checked right at exit: nothing to wait for.
      expect(await chromaServers()).toEqual([]);
      expect(await workEntries()).toEqual([]);
    },
  );

  it("keeps a killed run's duration at the moment it stopped", async () => {
    const listed = await data.cli(['executions', 'list', '--json']);
    const aborted = listed.json.executions.filter((e: { status: string }) => e.status === 'ABORTED');
    expect(aborted.length).toBeGreaterThan(0);
    for (const execution of aborted) expect(execution.stopDate, execution.executionId).toBeDefined();
    const again = await data.cli(['executions', 'list', '--json']);
    const stops = (list: Record<string, any>) =>
      (list.executions as { executionId: string; stopDate?: string }[]).filter((e) =>
        aborted.some((a: { executionId: string }) => a.executionId === e.executionId),
      );
    expect(stops(again.json)).toEqual(stops(listed.json));
  });
});

describe('local stacks', () => {
  it('a stack stops once the process it watches (the test runner) is gone, even detached', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'embedflow-leaks-watch-'));
    const watched = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      const up = await runCli(['stack', 'up', '--data-dir', dataDir, '--json'], {
        EMBEDFLOW_STACK_WATCH_PID: String(watched.pid),
      });
      expect(up.code, up.stderr).toBe(0);
      // The stack's process and its DynamoDB child: both must go.
      const stack = await processesMatching('services-main.', dataDir);
      expect(stack).toHaveLength(2);
      expect(stack.map((process) => process.pid)).toContain(Number(up.json.pid));
      watched.kill('SIGKILL');
      await eventually('the stack to stop', async () =>
        (await processesMatching('services-main.', dataDir)).length === 0 ? true : undefined,
      );
    } finally {
      watched.kill('SIGKILL');
      await runCli(['stack', 'down', '--data-dir', dataDir]);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
