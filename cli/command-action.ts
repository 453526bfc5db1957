import type { Command } from 'commander';
import { EXIT_OK, emit, type GlobalOptions, reportError } from './output.ts';
import { stoppingSignal } from './process-scope.ts';

/**
 * What a command returns: its --json value, the text printed without --json, and its exit code
 * when that is not 0 (a stream with failed messages still prints its summary, then exits 1).
 */
export type Rendered = { value: unknown; human: () => string; exitCode?: number };

function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** Wraps a command so every outcome maps to CONTRACT.md's exit codes and output rules. */
export function action<A extends unknown[]>(
  body: (options: GlobalOptions & Record<string, unknown>, ...args: A) => Promise<Rendered | number>,
) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const options = { ...globals(command), ...command.opts() };
    try {
      const outcome = await body(
        options as GlobalOptions & Record<string, unknown>,
        ...(args.slice(0, -2) as A),
      );
      if (typeof outcome === 'number') process.exitCode = outcome;
      else {
        emit(options, outcome.value, outcome.human);
        process.exitCode = outcome.exitCode ?? EXIT_OK;
      }
    } catch (error) {
      // Stopping on a signal: the handler reports and exits; a server it stopped failing is expected.
      if (stoppingSignal()) return;
      process.exitCode = reportError(error, options.json);
    }
  };
}
