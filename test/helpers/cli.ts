import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'embedflow.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The `--json` object: the last line of stdout. */
  json: Record<string, unknown> & { [key: string]: any };
}

/** Runs the real CLI in a child process, as a user would, with extra environment variables. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('exit', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let json: CliResult['json'] = {};
      try {
        json = JSON.parse(last);
      } catch {
        // not a --json invocation, or it failed before printing
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}
