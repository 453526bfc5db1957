/**
 * Builds the CLI into dist/: one ESM bundle per process entry point (the CLI, the local services'
 * child process, the benchmark's merge worker and scenario processes), with shared code in chunks. Dependencies are
 * bundled too: a few large files load faster than the AWS SDK's hundreds of small ones (about
 * 150 ms of CPU before a run's first state). Lazily imported modules (bench, console, AWS mode)
 * become their own chunks, so `embedflow --help` loads none of them.
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
/**
 * Left to node_modules at run time: native code and packages found by path (chromadb: its CLI
 * file is started as the Chroma server and loads the binding; dynalite's leveldb, s3rver), and
 * the benchmark's chart libraries, which are devDependencies (`embedflow bench` says so when
 * they are missing).
 */
const EXTERNAL = [
  'chromadb',
  'chromadb-js-bindings-*',
  'dynalite',
  's3rver',
  'vega',
  'vega-lite',
  '@resvg/resvg-js',
];

/** ESM output still meets CommonJS dependencies that call `require`: give them one. */
const REQUIRE_BANNER =
  "import { createRequire as __embedflowCreateRequire } from 'node:module'; const require = __embedflowCreateRequire(import.meta.url);";

const ENTRY_POINTS = {
  embedflow: 'bin/embedflow.ts',
  'services-main': 'local/services-main.ts',
  'merge-worker': 'bench/merge-worker.ts',
  'bench-scenario': 'bench/scenario-main.ts',
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
    external: EXTERNAL,
    mainFields: ['module', 'main'],
    banner: { js: REQUIRE_BANNER },
    // apache-arrow declares `sideEffects: false` yet registers its Node stream adapters as a side
    // effect of its entry point: honouring the flag drops them (the Lambda bundles do the same).
    ignoreAnnotations: true,
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
