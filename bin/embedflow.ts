#!/usr/bin/env node
import '../cli/cli-environment.ts';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_OK, EXIT_USAGE, reportError } from '../cli/output.ts';
import { registerStoreCommands } from '../cli/store-commands.ts';
import { registerWorkflowCommands } from '../cli/workflow-commands.ts';
import { PACKAGE_VERSION } from '../local/package-paths.ts';

/**
 * The CLI's entry point (built to dist/embedflow.js). Commands are registered with their options
 * only: each loads its implementation when it runs, so `--help` and a usage error load no AWS SDK,
 * Chroma client, benchmark or console code.
 */
const program = new Command('embedflow')
  .description(
    'Merge batch embedding runs into ChromaDB snapshots with a Step Functions workflow.\n' +
      'Locally every command runs against a shared stack of local services in the data directory.',
  )
  .version(
    `${PACKAGE_VERSION} (node ${process.version})`,
    '-V, --version',
    'the version, and the Node running it',
  )
  .addOption(
    new Option('--data-dir <dir>', 'data directory of the local stack')
      .env('EMBEDFLOW_HOME')
      .default('./.embedflow'),
  )
  .option('--json', 'print one JSON object as the last line of stdout')
  .showHelpAfterError()
  .exitOverride();

registerWorkflowCommands(program);
registerStoreCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  } else {
    process.exitCode = reportError(error, process.argv.includes('--json'));
  }
}
