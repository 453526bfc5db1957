import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The package version for `embedflow --version`, read from the package.json above this module
 * wherever the CLI runs from (the checkout through tsx, or a compiled copy in a subdirectory).
 */
export function packageVersion(from = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === 'embedflow' && manifest.version) return manifest.version;
    } catch {
      // no package.json here: look one level up
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
