import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../helpers/processes.ts';

/**
 * The published package works without devDependencies: `npm pack`, then install the tarball into
 * another directory with --omit=dev (from npm's cache where it can) and run the demo through its
 * `embedflow` bin, on the Node that runs the tests.
 *
 * The dependencies of that install (500 MB, most of it the Chroma binding) are kept between runs
 * in the OS temp directory, keyed by the lock file: only the embedflow tarball is installed anew.
 * Never inside this checkout: Node would resolve the missing devDependencies from its node_modules.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const exec = promisify(execFile);

let consumer = '';
let work = '';

async function consumerDir(): Promise<string> {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
  const lock = await readFile(join(ROOT, 'package-lock.json'));
  const key = createHash('sha256').update(lock).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `embedflow-packed-install-${key}`);
  await mkdir(dir, { recursive: true });
  // A consumer needs the same pin of the Chroma binding as this package (its overrides apply only
  // to its own installs): see README, "Installing the package".
  const consumerManifest = { name: 'embedflow-consumer', private: true, overrides: manifest.overrides };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(consumerManifest, null, 2)}\n`);
  return dir;
}

const npm = (args: string[], cwd: string) =>
  exec('npm', [...args, '--no-audit', '--no-fund'], { cwd, maxBuffer: 16 * 1024 * 1024 });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'embedflow-packed-'));
  // dist/ is already built by the global setup: packing must not rebuild it under running tests.
  const { stdout } = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
  const tarball = join(work, JSON.parse(stdout)[0].filename as string);
  consumer = await consumerDir();
  await rm(join(consumer, 'node_modules', 'embedflow'), { recursive: true, force: true });
  await npm(['install', tarball, '--omit=dev', '--prefer-offline', '--ignore-scripts'], consumer);
}, 600_000);

afterAll(async () => {
  if (consumer && work) await runBin(['stack', 'down', '--data-dir', join(work, 'data')]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** The installed bin, as a shell would run it: `#!/usr/bin/env node` finds this Node first on PATH. */
function runBin(args: string[]) {
  const bin = join(consumer, 'node_modules', 'embedflow', 'dist', 'embedflow.js');
  return runNode([bin, ...args], {
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}`,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
}

describe('the packed package installed with --omit=dev', () => {
  it('has no devDependency installed and a bin that starts', async () => {
    for (const dev of ['vega', 'vega-lite', '@resvg/resvg-js', 'tsx', 'esbuild', 'vitest']) {
      expect(existsSync(join(consumer, 'node_modules', dev)), dev).toBe(false);
    }
    expect(existsSync(join(consumer, 'node_modules', '.bin', 'embedflow'))).toBe(true);
    const version = await runBin(['--version']);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout).toContain(process.version);
  });

  it('runs the demo end to end', async () => {
    const result = await runBin([
      'run',
      '--demo',
      '--words-deltas',
      '3',
      '--lines-deltas',
      '2',
      '--records-per-delta',
      '4',
      '--dim',
      '8',
      '--data-dir',
      join(work, 'data'),
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({
      status: 'SUCCEEDED',
      collections: { words: { recordCount: 12 }, lines: { recordCount: 8 } },
    });
  });

  it('says that the benchmark needs the devDependencies', async () => {
    const result = await runBin(['bench', '--quick', '--data-dir', join(work, 'data')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/embedflow bench needs the devDependencies/);
  });
});
