import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Where the package's own files are, the same whether this code runs from its TypeScript sources
 * (tsx, vitest) or from the bundle in dist/ (`npm install`'s build, the published package): the
 * package root is found by walking up to embedflow's package.json, and the processes the CLI
 * starts are the built entry points beside the bundle, or their sources through tsx.
 */
function findPackage(start: string): { root: string; version: string } {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name, version } = JSON.parse(readFileSync(manifest, 'utf8'));
      if (name === 'embedflow') return { root: dir, version };
    }
    if (dirname(dir) === dir) throw new Error(`embedflow's package.json not found above ${start}`);
  }
}

const found = findPackage(import.meta.dirname);
export const PACKAGE_ROOT = found.root;
export const PACKAGE_VERSION = found.version;

/** The one ASL file: deployed by the CDK stack, run by the local runner, drawn by the console. */
export const DEFINITION_PATH = join(PACKAGE_ROOT, 'statemachines', 'embedding-merge.asl.json');

/** The console's static page (HTML, CSS, browser JS): shipped as files, never bundled. */
export const CONSOLE_PAGE_DIR = join(PACKAGE_ROOT, 'local', 'console', 'page');

/** Built: this module is part of a .js bundle in dist/; else it is the .ts source. */
const BUILT = import.meta.url.endsWith('.js');

const SOURCES = {
  'services-main': join(PACKAGE_ROOT, 'local', 'services-main.ts'),
  'merge-worker': join(PACKAGE_ROOT, 'bench', 'merge-worker.ts'),
  'bench-scenario': join(PACKAGE_ROOT, 'bench', 'scenario-main.ts'),
} as const;

/**
 * Node arguments that run one of the package's process entry points: `dist/NAME.js` from the
 * build (scripts/build.mjs names them), the TypeScript source through tsx in development.
 */
export function entryPointArgs(name: keyof typeof SOURCES): string[] {
  if (BUILT) return [join(import.meta.dirname, `${name}.js`)];
  return ['--import', createRequire(import.meta.url).resolve('tsx'), SOURCES[name]];
}
