import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

/**
 * The node_modules that FinalMerge and CompactionStream ship so they can start a Chroma server as
 * a child process. Installed once per lockfile version into a cache directory, then copied into
 * each function's bundle by an afterBundling hook.
 *
 * NodejsFunction's own `nodeModules` cannot do it: it writes a package.json without the project's
 * `overrides`, so `npm ci` finds chromadb's optional binding (^1.3.4) out of sync with the locked
 * 1.0.5 (the last binding that runs on Lambda's glibc 2.34) and fails.
 */
export const CHROMA_PACKAGES = ['chromadb', 'chromadb-js-bindings-linux-x64-gnu'] as const;
const BINDING = 'chromadb-js-bindings-linux-x64-gnu';

/** Lambda's limit on a function's unzipped code, layers included. */
const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

interface LockEntry {
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [field: string]: unknown;
}

interface PackageLock {
  packages: Record<string, LockEntry>;
}

/** A lockfile holding only what the Chroma packages need, pinned exactly as the project's lockfile. */
export function chromaLockfile(projectLock: PackageLock): { packageJson: object; packageLock: object } {
  const picked: Record<string, LockEntry> = {};
  const pending: string[] = [...CHROMA_PACKAGES];
  while (pending.length > 0) {
    const name = pending.pop()!;
    const key = `node_modules/${name}`;
    if (picked[key]) continue;
    const entry = projectLock.packages[key];
    if (!entry) throw new Error(`package-lock.json has no ${key}: run npm install in the project first`);
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...kept } = entry;
    picked[key] = kept as LockEntry;
    pending.push(...Object.keys({ ...entry.dependencies, ...entry.optionalDependencies }));
  }
  const dependencies = Object.fromEntries(
    CHROMA_PACKAGES.map((name) => [name, picked[`node_modules/${name}`]!.version]),
  );
  const name = 'embedflow-chroma-runtime';
  return {
    packageJson: { name, private: true, dependencies, overrides: { [BINDING]: dependencies[BINDING] } },
    packageLock: {
      name,
      lockfileVersion: 3,
      requires: true,
      packages: { '': { name, dependencies }, ...picked },
    },
  };
}

function directorySize(path: string): number {
  return readdirSync(path, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .reduce((total, entry) => total + statSync(join(entry.parentPath, entry.name)).size, 0);
}

function run(command: string, args: string[], cwd: string, hint: string): void {
  try {
    execFileSync(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().slice(-2000) ?? '';
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd} (${hint}): ${stderr || String(error)}`);
  }
}

/**
 * Returns a directory with `node_modules/` ready to copy into a bundle: installed with `npm ci`
 * for linux-x64-glibc whatever the host, the binding's debug info stripped (437 MB → ~53 MB:
 * Lambda refuses code over 250 MB unzipped). Concurrent synths race harmlessly: the first rename wins.
 */
export function prepareChromaRuntime(projectRoot: string, cacheRoot: string): string {
  const projectLock = JSON.parse(readFileSync(join(projectRoot, 'package-lock.json'), 'utf8')) as PackageLock;
  const { packageJson, packageLock } = chromaLockfile(projectLock);
  const digest = createHash('sha256').update(JSON.stringify(packageLock)).digest('hex').slice(0, 16);
  const target = join(cacheRoot, `chroma-runtime-${digest}`);
  if (existsSync(join(target, 'node_modules', BINDING))) return target;

  mkdirSync(cacheRoot, { recursive: true });
  const staging = mkdtempSync(join(cacheRoot, '.staging-'));
  try {
    writeFileSync(join(staging, 'package.json'), JSON.stringify(packageJson, null, 2));
    writeFileSync(join(staging, 'package-lock.json'), JSON.stringify(packageLock, null, 2));
    run(
      'npm',
      ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'].concat([
        '--os=linux',
        '--cpu=x64',
        '--libc=glibc',
      ]),
      staging,
      'needs the npm registry or a warm npm cache',
    );
    const bindingDir = join(staging, 'node_modules', BINDING);
    for (const file of readdirSync(bindingDir).filter((name) => name.endsWith('.node'))) {
      run(
        'strip',
        ['--strip-debug', join(bindingDir, file)],
        staging,
        'needs GNU binutils: deploy from Linux',
      );
    }
    rmSync(join(staging, 'package-lock.json'));
    const size = directorySize(join(staging, 'node_modules'));
    if (size > LAMBDA_UNZIPPED_LIMIT_BYTES) {
      throw new Error(
        `the Chroma runtime is ${Math.round(size / 2 ** 20)} MB, over Lambda's 250 MB code limit`,
      );
    }
    try {
      renameSync(staging, target);
    } catch (error) {
      if (!existsSync(target)) throw error;
    }
    return target;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
