import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LAMBDA_RUNTIME } from '../../lib/workflow-functions.ts';

/**
 * One supported Node everywhere: the `node` devDependency (npm puts its binary first on PATH for
 * npm scripts and npx), `engines`, and the Lambda runtime name one major version.
 */
const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));
const pinnedMajor = Number(/^\D*(\d+)\./.exec(manifest.devDependencies.node)?.[1]);

describe('Node version', () => {
  it('the tests run on the major version of the node devDependency, which engines requires', () => {
    console.info(
      `tests run on node ${process.version} (node devDependency ${manifest.devDependencies.node})`,
    );
    expect(pinnedMajor).toBe(24);
    expect(process.versions.node.split('.')[0]).toBe(String(pinnedMajor));
    expect(manifest.engines.node).toBe(`>=${pinnedMajor}`);
  });

  it('the Lambda functions run the same major version', () => {
    expect(LAMBDA_RUNTIME.name).toBe(`nodejs${pinnedMajor}.x`);
  });
});
