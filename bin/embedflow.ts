import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { parseScenarioNames, runBench } from '../bench/run-bench.ts';
import { DEFAULT_CONSOLE_PORT, runConsole } from '../cli/console.ts';
import { executionSource, listExecutions, showExecution } from '../cli/executions.ts';
import { useLocalStack } from '../cli/local-env.ts';
import {
  EXIT_OK,
  EXIT_USAGE,
  emit,
  type GlobalOptions,
  parseIntegerOption,
  reportError,
  table,
} from '../cli/output.ts';
import { querySnapshot } from '../cli/query.ts';
import { renderRunSummary, runLocal } from '../cli/run.ts';
import { runAws } from '../cli/run-aws.ts';
import { exportSnapshot, listSnapshots, rollbackSnapshot } from '../cli/snapshots.ts';
import { ensureStack, readStack, stopStack } from '../cli/stack.ts';
import { streamFile } from '../cli/stream.ts';

type Rendered = { value: unknown; human: () => string };

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

function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** Wraps a command so every outcome maps to CONTRACT.md's exit codes and output rules. */
function action<A extends unknown[]>(
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
        process.exitCode = EXIT_OK;
      }
    } catch (error) {
      process.exitCode = reportError(error, options.json);
    }
  };
}

program
  .command('run')
  .description(
    'run the workflow on the local stack: synthetic receipts (--demo) or a directory of deltas (--input)',
  )
  .option(
    '--demo',
    'generate synthetic receipt words and lines, embedded by the local deterministic embedder',
  )
  .option(
    '--input <dir>',
    'DIR/<collection>/*.jsonl: every file one delta, applied in name order (AWS mode: s3://bucket/prefix/)',
  )
  .option(
    '--state-machine-arn <arn>',
    'AWS mode: start this deployed state machine on --input s3://… and follow it',
  )
  .option('--run-id <id>', 'run id (re-running an applied run id changes nothing)')
  .option('--words-deltas <n>', 'demo: words deltas', parseIntegerOption('--words-deltas', 0), 60)
  .option('--lines-deltas <n>', 'demo: lines deltas', parseIntegerOption('--lines-deltas', 0), 40)
  .option(
    '--records-per-delta <n>',
    'demo: records per delta',
    parseIntegerOption('--records-per-delta', 1),
    50,
  )
  .option('--dim <n>', 'demo: embedding dimension', parseIntegerOption('--dim', 2), 384)
  .option('--seed <n>', 'demo: random seed', parseIntegerOption('--seed', 0), 42)
  .addHelpText(
    'after',
    '\nSizes come from the environment: CHUNK_SIZE_WORDS (15), CHUNK_SIZE_LINES (25), CHUNK_SIZE (15),\n' +
      'GROUP_SIZE (20), MAP_MAX_CONCURRENCY, IO_CONCURRENCY, LOCK_DURATION_SECONDS, HEARTBEAT_INTERVAL_SECONDS,\n' +
      'MAX_CAS_RETRIES, SNAPSHOT_RETENTION, LOCK_STRATEGY. Exit codes: 0 succeeded, 1 run failed, 2 usage error.',
  )
  .action(
    action(async (options) => {
      const { summary, exitCode } = options.stateMachineArn
        ? await runAws(options as never)
        : await runLocal(options as never);
      if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else process.stdout.write(`${renderRunSummary(summary)}\n`);
      return exitCode;
    }),
  );

const executions = program
  .command('executions')
  .description('inspect executions (event history like the console)');
const stateMachineOption = () =>
  new Option(
    '--state-machine-arn <arn>',
    "AWS mode: a deployed state machine's executions instead of the local ones",
  );
executions
  .command('list')
  .description('list executions, newest first')
  .addOption(stateMachineOption())
  .action(action(async (options) => listExecutions(await executionSource(options as never))));
executions
  .command('show <id>')
  .description(
    "an execution's event history: state, event, elapsed, duration, error (AWS mode: id is the ARN)",
  )
  .addOption(stateMachineOption())
  .action(action(async (options, id: string) => showExecution(await executionSource(options as never), id)));

program
  .command('console')
  .description('serve a web console of executions on 127.0.0.1: graph, event history, run summary, live')
  .option(
    '--port <n>',
    'port on 127.0.0.1 (0: any free port)',
    parseIntegerOption('--port', 0),
    DEFAULT_CONSOLE_PORT,
  )
  .option('--open', 'open the page in the default browser')
  .addOption(stateMachineOption())
  .action(
    action(async (options) => {
      await runConsole({
        dataDir: String(options.dataDir),
        port: Number(options.port),
        stateMachineArn: options.stateMachineArn as string | undefined,
        open: Boolean(options.open),
      });
      return EXIT_OK;
    }),
  );

program
  .command('query')
  .description('nearest neighbours in the current snapshot of a collection')
  .requiredOption('--collection <name>', 'collection to query')
  .option('--text <text>', 'query text, embedded by the local embedder')
  .option('--vector-of <id>', 'use the stored vector of this id')
  .option('-k <n>', 'results', parseIntegerOption('-k', 1), 5)
  .action(
    action(async (options) => {
      const rt = await useLocalStack(options.dataDir);
      return querySnapshot(rt, {
        collection: String(options.collection),
        text: options.text as string | undefined,
        vectorOf: options.vectorOf as string | undefined,
        k: Number(options.k),
      });
    }),
  );

const snapshots = program.command('snapshots').description('published snapshot versions');
snapshots
  .command('list')
  .requiredOption('--collection <name>', 'collection')
  .description('retained versions, newest first')
  .action(
    action(async (options) =>
      listSnapshots(await useLocalStack(options.dataDir), String(options.collection)),
    ),
  );
snapshots
  .command('export')
  .requiredOption('--collection <name>', 'collection')
  .requiredOption('--out <dir>', 'empty directory to unpack into (a Chroma persist directory)')
  .option('--version <n>', 'version (default: current)', parseIntegerOption('--version', 1))
  .description('unpack a snapshot: stock Chroma opens it with `chroma run --path DIR`')
  .action(
    action(async (options) =>
      exportSnapshot(
        await useLocalStack(options.dataDir),
        String(options.collection),
        String(options.out),
        options.version as number | undefined,
      ),
    ),
  );
snapshots
  .command('rollback')
  .requiredOption('--collection <name>', 'collection')
  .requiredOption(
    '--to <n>',
    'retained version whose content to publish again',
    parseIntegerOption('--to', 1),
  )
  .description("publish version N's content as a new version (through the same publish protocol)")
  .action(
    action(async (options) =>
      rollbackSnapshot(await useLocalStack(options.dataDir), String(options.collection), Number(options.to)),
    ),
  );

program
  .command('locks')
  .description('collection locks')
  .command('list')
  .description('held locks with owner, age and remaining lease')
  .action(
    action(async (options) => {
      const locks = await (await useLocalStack(options.dataDir)).lock.list();
      return {
        value: { locks },
        human: () =>
          locks.length === 0
            ? 'no locks held'
            : table(
                ['LOCK', 'OWNER', 'FENCE', 'AGE', 'REMAINING'],
                locks.map((l) => [
                  l.lockId,
                  l.owner,
                  l.fence,
                  `${l.ageMs} ms`,
                  l.expired ? 'expired' : `${l.remainingMs} ms`,
                ]),
              ),
      };
    }),
  );

program
  .command('stream')
  .description('stream compaction locally: feed change messages through the SQS handler in batches')
  .requiredOption('--file <path>', 'messages, one JSON body per line (see docs/stream.md)')
  .option('--batch-size <n>', 'messages per batch (an SQS batch)', parseIntegerOption('--batch-size', 1), 10)
  .option('--batch-wait-ms <n>', 'pause between batches', parseIntegerOption('--batch-wait-ms', 0), 0)
  .action(
    action(async (options) =>
      streamFile(await useLocalStack(options.dataDir), {
        file: String(options.file),
        batchSize: Number(options.batchSize),
        batchWaitMs: Number(options.batchWaitMs),
      }),
    ),
  );

program
  .command('bench')
  .description('benchmarks measured side by side in one run; writes docs/benchmarks.md and charts')
  .option('--quick', 'smaller sizes (a few minutes)')
  .addOption(
    new Option('--only <names>', 'comma-separated scenarios to run (default: all)').argParser(
      parseScenarioNames,
    ),
  )
  .option(
    '--docs-dir <dir>',
    'where to write benchmarks.md and the PNG charts',
    join(import.meta.dirname, '..', 'docs'),
  )
  .action(
    action(async (options) => {
      const result = await runBench({
        quick: Boolean(options.quick),
        docsDir: String(options.docsDir),
        ...(options.only !== undefined && { only: options.only as string[] }),
      });
      return {
        value: {
          scenarios: result.scenarios,
          ratios: result.ratios,
          machine: result.machine,
          wallSeconds: result.wallSeconds,
        },
        human: () =>
          `${result.scenarios.length} measurements in ${result.wallSeconds} s; ratios ${JSON.stringify(result.ratios)}; report in ${options.docsDir}/benchmarks.md`,
      };
    }),
  );

const stack = program
  .command('stack')
  .description('the local services shared by all CLI processes on a data directory');
stack
  .command('up')
  .description('start the local services (DynamoDB- and S3-compatible) if they are not running')
  .action(
    action(async (options) => {
      const { info, started } = await ensureStack(options.dataDir);
      return {
        value: { ...info, started },
        human: () => `${started ? 'started' : 'running'}: ${JSON.stringify(info)}`,
      };
    }),
  );
stack
  .command('down')
  .description('stop the local services')
  .action(
    action(async (options) => {
      const stopped = await stopStack(options.dataDir);
      return { value: { stopped: stopped !== null }, human: () => (stopped ? 'stopped' : 'not running') };
    }),
  );
stack
  .command('status')
  .description('whether the local services run, and on which ports')
  .action(
    action(async (options) => {
      const info = await readStack(options.dataDir);
      return {
        value: { running: info !== null, ...info },
        human: () => (info ? `running: ${JSON.stringify(info)}` : 'not running'),
      };
    }),
  );

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  } else {
    process.exitCode = reportError(error, process.argv.includes('--json'));
  }
}
