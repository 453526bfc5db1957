#!/usr/bin/env node
import '../cli/cli-environment.ts';
import { PACKAGE_VERSION } from '../local/package-paths.ts';

// `embedflow --version` answers before the command tree (and everything it imports) is loaded;
// only as the first argument, so `snapshots export --version N` keeps its own flag.
const first = process.argv[2];
if (first === '--version' || first === '-V') {
  process.stdout.write(`${PACKAGE_VERSION} (node ${process.version})\n`);
} else {
  const { main } = await import('../cli/program.ts');
  process.exitCode = await main(process.argv);
}
