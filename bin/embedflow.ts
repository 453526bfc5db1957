import { Command, CommanderError, Option } from 'commander';
import { EXIT_OK, EXIT_USAGE, reportError } from '../cli/output.ts';
import { registerStoreCommands } from '../cli/store-commands.ts';
import { registerWorkflowCommands } from '../cli/workflow-commands.ts';

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
