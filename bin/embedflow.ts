#!/usr/bin/env node
import '../cli/cli-environment.ts';
import { hasHugePageSetting, withHugePageMalloc } from '../lambdas/core/malloc-tunables.ts';
import { PACKAGE_VERSION } from '../local/package-paths.ts';

/**
 * The commands that run the workflow in this process restart once, in place (execve: same pid,
 * same stdio), under glibc's huge-page malloc, which a process reads only when it starts. A run
 * moves its deltas, segments and snapshot through this process's memory: ~60 ms of restart saved
 * ~0.7 s of page faults in a 3,000 x 1536-d run (docs/benchmarks.md). The servers it starts get
 * the setting in their environment anyway.
 */
const LONG_COMMANDS = new Set(['run', 'stream', 'bench']);

function restartWithHugePageMalloc(): void {
  if (process.platform !== 'linux' || !process.execve || hasHugePageSetting(process.env)) return;
  const args = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  process.execve(process.execPath, args, withHugePageMalloc(process.env));
}

// `embedflow --version` answers before the command tree (and everything it imports) is loaded;
// only as the first argument, so `snapshots export --version N` keeps its own flag.
const first = process.argv[2];
if (first === '--version' || first === '-V') {
  process.stdout.write(`${PACKAGE_VERSION} (node ${process.version})\n`);
} else {
  if (first !== undefined && LONG_COMMANDS.has(first)) restartWithHugePageMalloc();
  const { main } = await import('../cli/program.ts');
  process.exitCode = await main(process.argv);
}
