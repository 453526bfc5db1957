import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type ProcessResult, runNode } from './processes.ts';

/** The built CLI, as `npx embedflow` runs it (test/global-setup.ts builds it). */
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'embedflow.js');

export interface CliResult extends ProcessResult {
  /** The `--json` object: the last line of stdout. */
  json: Record<string, unknown> & { [key: string]: any };
}

/** Runs the real CLI in a child process, as a user would, with extra environment variables. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  const result = await runNode([CLI, ...args], { POWERTOOLS_LOG_LEVEL: 'SILENT', ...env });
  let json: CliResult['json'] = {};
  try {
    json = JSON.parse(result.stdout.trim().split('\n').pop() ?? '');
  } catch {
    // not a --json invocation, or it failed before printing
  }
  return { ...result, json };
}

/**
 * A temp data directory for one test file: `cli(args)` runs the CLI on it; its local stack is
 * stopped and the directory removed after the file's tests.
 */
export function useCliDataDir(prefix: string) {
  const state = { dataDir: '' };
  beforeAll(async () => {
    state.dataDir = await mkdtemp(join(tmpdir(), `embedflow-${prefix}-`));
  });
  afterAll(async () => {
    await runCli(['stack', 'down', '--data-dir', state.dataDir]);
    await rm(state.dataDir, { recursive: true, force: true });
  });
  return {
    get dataDir() {
      return state.dataDir;
    },
    cli: (args: string[], env: Record<string, string> = {}) =>
      runCli([...args, '--data-dir', state.dataDir], env),
  };
}
