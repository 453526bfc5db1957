import { Command, CommanderError, Help, Option } from 'commander';
import { EXIT_OK, reportError, UsageError } from './output.ts';
import { registerStoreCommands } from './store-commands.ts';
import { registerWorkflowCommands } from './workflow-commands.ts';

/**
 * The whole command tree, without running anything: bin/embedflow.ts parses argv with it.
 * Commands are registered with their options only: each loads its implementation when it runs,
 * so `--help` and a usage error load no AWS SDK, Chroma client, benchmark or console code.
 */
export function buildProgram(): Command {
  const program = new Command('embedflow')
    .description(
      'Merge batch embedding runs into ChromaDB snapshots with a Step Functions workflow.\n' +
        'Locally every command runs against a shared stack of local services in the data directory.',
    )
    .addOption(
      new Option('--data-dir <dir>', 'data directory of the local stack')
        .env('EMBEDFLOW_HOME')
        .default('./.embedflow'),
    )
    .option('--json', 'print one JSON object as the last line of stdout')
    // Every subcommand's help lists --json and --data-dir, and marks the options it cannot do without.
    .configureHelp({
      showGlobalOptions: true,
      optionDescription(option) {
        const text = Help.prototype.optionDescription.call(this, option);
        return option.mandatory ? `${text} (required)` : text;
      },
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      '\n  -V, --version  print the version of embedflow and the Node running it (only as the first argument)',
    )
    .exitOverride();
  registerWorkflowCommands(program);
  registerStoreCommands(program);
  return program;
}

/** Runs the CLI on `argv` (process.argv shape) and returns the exit code of CONTRACT.md. */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? EXIT_OK);
  } catch (error) {
    if (!(error instanceof CommanderError)) return reportError(error, json);
    // --help ends here with exit code 0; anything else commander refuses is a usage error, which
    // it has printed to stderr already: --json still gets its ERROR object on stdout.
    if (error.exitCode === 0) return EXIT_OK;
    return reportError(new UsageError(error.message.replace(/^error: /, '')), json, { alreadyPrinted: true });
  }
}
