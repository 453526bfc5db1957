import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { parseScenarioNames } from '../bench/scenario-names.ts';
import { settingsHelp } from '../lambdas/core/config/config.ts';
import { action } from './command-action.ts';
import { EXIT_OK, info, parseIntegerOption, UsageError } from './output.ts';

const DEFAULT_CONSOLE_PORT = 8321;

/**
 * The workflow's commands: run it, inspect its executions (text and web console), stream, bench.
 * Each action imports its implementation when it runs: `--help` loads none of them.
 */
export function registerWorkflowCommands(program: Command): void {
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
      'DIR/<collection>/<delta>: .jsonl, .jsonl.gz or Chroma persist directories, applied in name order (AWS mode: s3://bucket/prefix/)',
    )
    .option(
      '--skip-unknown',
      'skip entries of --input DIR that are not deltas, with a warning each (default: refuse them)',
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
      `\nEnvironment variables (name=default; set but empty is refused):\n${settingsHelp()}\n` +
        '  CHUNK_SIZE_<NAME>              deltas per chunk for collection NAME (same rule as CHUNK_SIZE)\n' +
        '\nExit codes: 0 succeeded, 1 run failed, 2 usage or configuration error (nothing written).',
    )
    .action(
      action(async (options) => {
        const { demoNote, renderRunSummary, runLocal } = await import('./run.ts');
        const { summary, exitCode } = options.stateMachineArn
          ? await (await import('./run-aws.ts')).runAws(options as never)
          : await runLocal(options as never);
        if (options.json) {
          if (summary.demoDimension !== undefined && summary.status === 'SUCCEEDED') info(demoNote(summary));
          process.stdout.write(`${JSON.stringify(summary)}\n`);
        } else process.stdout.write(`${renderRunSummary(summary)}\n`);
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
    .action(
      action(async (options) => {
        const { executionSource, listExecutions } = await import('./executions.ts');
        return listExecutions(await executionSource(options as never));
      }),
    );
  executions
    .command('show <id>')
    .description(
      "an execution's event history: state, event, elapsed, duration, error (AWS mode: id is the ARN)",
    )
    .addOption(stateMachineOption())
    .action(
      action(async (options, id: string) => {
        const { executionSource, showExecution } = await import('./executions.ts');
        return showExecution(await executionSource(options as never), id);
      }),
    );

  program
    .command('console')
    .description('serve a web console of executions on 127.0.0.1: graph, event history, run summary, live')
    .option(
      '--port <n>',
      'port on 127.0.0.1 (0: any free port)',
      parseIntegerOption('--port', 0, 65_535),
      DEFAULT_CONSOLE_PORT,
    )
    .option('--open', 'open the page in the default browser')
    .addOption(stateMachineOption())
    .action(
      action(async (options) => {
        const { runConsole } = await import('./console.ts');
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
    .command('stream')
    .description(
      'stream compaction locally: feed change messages through the SQS handler in batches; exit 1 when any message failed',
    )
    .requiredOption(
      '--file <path>',
      'messages, one JSON body per line (docs/stream.md); applyDelta may name a local file (./d.jsonl, /abs/d.jsonl)',
    )
    .option(
      '--batch-size <n>',
      'messages per batch (an SQS batch)',
      parseIntegerOption('--batch-size', 1),
      10,
    )
    .option('--batch-wait-ms <n>', 'pause between batches', parseIntegerOption('--batch-wait-ms', 0), 0)
    .action(
      action(async (options) => {
        const { readStreamFile, streamFile } = await import('./stream.ts');
        const { useLocalStack } = await import('./local-env.ts');
        const file = String(options.file);
        const lines = await readStreamFile(file); // a bad file is found before the stack starts
        return streamFile(await useLocalStack(options.dataDir), lines, {
          file,
          batchSize: Number(options.batchSize),
          batchWaitMs: Number(options.batchWaitMs),
        });
      }),
    );

  program
    .command('bench')
    .description('benchmarks measured side by side in one run; a report (benchmarks.md, bench.json, charts)')
    .option('--quick', 'smaller sizes (a few minutes)')
    .addOption(
      new Option('--only <names>', 'comma-separated scenarios to run (default: all)').argParser(
        parseScenarioNames,
      ),
    )
    .option('--out <dir>', 'directory for the report (default: DATA_DIR/bench)')
    .option('--write-docs', "also rewrite the project's docs/benchmarks.md and its charts")
    .action(
      action(async (options) => {
        const { runBench } = await loadBench();
        const outDir = resolve(
          options.out === undefined ? join(options.dataDir, 'bench') : String(options.out),
        );
        const result = await runBench({
          quick: Boolean(options.quick),
          outDir,
          writeDocs: Boolean(options.writeDocs),
          ...(options.only !== undefined && { only: options.only as string[] }),
        });
        return {
          value: {
            report: join(outDir, 'benchmarks.md'),
            scenarios: result.scenarios,
            ratios: result.ratios,
            machine: result.machine,
            wallSeconds: result.wallSeconds,
          },
          human: () =>
            `${result.scenarios.length} measurements in ${result.wallSeconds} s; ratios ${JSON.stringify(result.ratios)}; report in ${join(outDir, 'benchmarks.md')}${options.writeDocs ? ' and docs/benchmarks.md' : ''}`,
        };
      }),
    );
}

/**
 * The benchmark renders charts with vega, vega-lite and resvg, which are devDependencies: a
 * package installed with --omit=dev has every other command, and says so for this one.
 */
async function loadBench() {
  try {
    return await import('../bench/run-bench.ts');
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new UsageError(
      `embedflow bench needs the devDependencies (${(error as Error).message.split('\n')[0]}): run it from a checkout after npm install`,
    );
  }
}
