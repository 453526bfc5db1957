import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { percentile } from '../cli/stats.ts';
import { createRuntime, type Runtime, resetRuntime } from '../lambdas/core/runtime.ts';
import { entryPointArgs } from '../local/package-paths.ts';
import { type LocalServices, startLocalServices } from '../local/services.ts';

export { percentile };

export const median = (values: number[]) => percentile(values, 50);

/** Each metric's median over rounds of one variant (every round reports the same metrics). */
export function medianMetrics(samples: Record<string, number>[]): Record<string, number> {
  const names = Object.keys(samples[0] ?? {});
  return Object.fromEntries(names.map((name) => [name, median(samples.map((sample) => sample[name]!))]));
}

/** What every scenario reports: one row per variant, measured in the same run on the same data. */
export interface ScenarioResult {
  name: string;
  variant: string;
  params: Record<string, number | string>;
  metrics: Record<string, number>;
}

export interface BenchContext {
  quick: boolean;
  services: LocalServices;
  /** A runtime wired to the bench's services, with extra configuration. */
  runtime(overrides?: Record<string, string>): Runtime;
  /** Points process.env (read by the in-process workflow handlers) at the services, plus overrides. */
  useEnv(overrides?: Record<string, string>): void;
  log(message: string): void;
}

const BASE_ENV = { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' };
const TUNABLES = [
  'CHUNK_SIZE_WORDS',
  'CHUNK_SIZE_LINES',
  'GROUP_SIZE',
  'LOCK_STRATEGY',
  'MAX_CAS_RETRIES',
  'LOCK_WAIT_SECONDS',
  'PUBLISH_WAIT_SECONDS',
  'BUILD_BUDGET_SECONDS',
];

export async function withBenchContext<T>(
  quick: boolean,
  body: (context: BenchContext) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'embedflow-bench-'));
  const services = await startLocalServices({ dataDir: dir });
  const context: BenchContext = {
    quick,
    services,
    runtime: (overrides = {}) => createRuntime({ ...services.env, ...BASE_ENV, ...overrides }),
    useEnv(overrides = {}) {
      for (const name of TUNABLES) delete process.env[name];
      Object.assign(process.env, services.env, BASE_ENV, overrides);
      resetRuntime();
    },
    log: (message) => process.stderr.write(`bench: ${message}\n`),
  };
  try {
    return await body(context);
  } finally {
    // Teardown trouble is reported, never allowed to replace the measurements or the real error.
    await services.stop().catch((error) => context.log(`could not stop the services: ${error}`));
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }).catch((error) =>
      context.log(`could not remove ${dir}: ${error}`),
    );
  }
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export async function timed<T>(body: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await body();
  return { value, ms: performance.now() - started };
}

/** Peak resident memory of a process in MB (VmHWM), read before it exits. */
export function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? round(Number(match[1]) / 1024, 1) : 0;
  } catch {
    return 0;
  }
}

export function machineDescription(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const tunables = process.env.GLIBC_TUNABLES ? `, GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES}` : '';
  return `${cpus().length} cores (${cpu}), ${round(totalmem() / 2 ** 30, 1)} GiB RAM, Node ${process.version}, ${process.platform}${tunables}`;
}

/**
 * Runs one of the package's entry points (local/package-paths.ts) as a child process and returns
 * the JSON of the last line it prints; its stderr (progress, errors) passes through.
 */
export function runJsonChild<T>(
  entry: Parameters<typeof entryPointArgs>[0],
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entryPointArgs(entry), ...args], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) return resolve(JSON.parse(out.trim().split('\n').pop()!) as T);
      reject(new Error(`${entry} ${args.join(' ')} exited with ${code ?? signal} (its output is above)`));
    });
  });
}
