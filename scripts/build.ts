/**
 * Builds the CLI into dist/: one ESM bundle per process entry point (the CLI, the local services'
 * child process, the benchmark's merge worker), with shared code in chunks and every package left
 * external (node_modules resolves them at run time). Lazily imported modules (bench, console, AWS
 * mode) become their own chunks, so `embedflow --help` loads none of them.
 *
 * Run by `npm install` (the `prepare` script: `node scripts/build.ts`, Node 24 strips the types),
 * by `npm pack`, and by the test suite's global setup, so the CLI under test is always built from
 * the sources under test.
 */
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = join(import.meta.dirname, '..');
export const DIST = join(ROOT, 'dist');

/** Entry point name in dist/ → source file. `local/package-paths.ts` starts children by these names. */
const ENTRY_POINTS = {
  embedflow: 'bin/embedflow.ts',
  'services-main': 'local/services-main.ts',
  'merge-worker': 'bench/merge-worker.ts',
};

export async function buildDist(): Promise<void> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new Error(
      'building dist/ needs the devDependencies (esbuild): run `npm install` without --omit=dev in a checkout',
    );
  }
  await rm(DIST, { recursive: true, force: true });
  await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: DIST,
    // Flat: every chunk sits beside the entry points, so a chunk finds them as its siblings.
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    packages: 'external',
    logLevel: 'warning',
  });
  await chmod(join(DIST, 'embedflow.js'), 0o755);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    await buildDist();
  } catch (error) {
    process.stderr.write(`build: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
