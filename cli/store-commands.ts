import { type Command, Option } from 'commander';
import { action } from './command-action.ts';
import { parseIntegerOption, table } from './output.ts';
import { parseInclude, QUERY_FIELDS, type QueryField } from './query-options.ts';

/** This process pointed at the data directory's local stack (the AWS SDK and core load here). */
async function useLocalStack(dataDir: string) {
  return (await import('./local-env.ts')).useLocalStack(dataDir);
}

/**
 * The commands on what the workflow keeps: snapshots and queries, locks, the local stack. Each
 * action imports its implementation when it runs: `--help` loads none of them.
 */
export function registerStoreCommands(program: Command): void {
  program
    .command('query')
    .description('nearest neighbours in the current snapshot of a collection')
    .requiredOption('--collection <name>', 'collection to query')
    .option(
      '--text <text>',
      "query text, embedded by the demo's hashing embedder (only for a collection it built)",
    )
    .option('--vector-of <id>', 'use the stored vector of this id')
    .option('--vector <json>', "the query vector as a JSON array: '[0.12, -0.5, …]'")
    .option('--vector-file <file>', 'the query vector from a file: a JSON array, or one JSONL record')
    .option('--where <json>', `Chroma's metadata filter, e.g. '{"merchant": "Corner Market"}'`)
    .addOption(
      new Option('--include <fields>', 'fields of each result besides its id')
        .default([...QUERY_FIELDS], QUERY_FIELDS.join(','))
        .argParser(parseInclude),
    )
    .option('-k <n>', 'results', parseIntegerOption('-k', 1), 5)
    .action(
      action(async (options) => {
        const { querySnapshot } = await import('./query.ts');
        const rt = await useLocalStack(options.dataDir);
        return querySnapshot(rt, {
          collection: String(options.collection),
          text: options.text as string | undefined,
          vectorOf: options.vectorOf as string | undefined,
          vector: options.vector as string | undefined,
          vectorFile: options.vectorFile as string | undefined,
          where: options.where as string | undefined,
          include: options.include as QueryField[],
          k: Number(options.k),
        });
      }),
    );

  const collections = program.command('collections').description('the collections and starting one over');
  collections
    .command('list')
    .description('every collection: version, records, dimension, embedder, last update')
    .action(
      action(async (options) => {
        const { listCollections } = await import('./collections.ts');
        return listCollections(await useLocalStack(options.dataDir));
      }),
    );
  collections
    .command('drop <name>')
    .description(
      'remove a collection (pointer, lock, snapshots, catalog entry) so it can start over; refused while a run or stream publishes into it',
    )
    .option('--yes', 'do not ask for confirmation')
    .action(
      action(async (options, name: string) => {
        const { dropCollectionCommand } = await import('./collections.ts');
        return dropCollectionCommand(await useLocalStack(options.dataDir), {
          dataDir: String(options.dataDir),
          name,
          yes: Boolean(options.yes),
        });
      }),
    );

  const snapshots = program.command('snapshots').description('published snapshot versions');
  snapshots
    .command('list')
    .requiredOption('--collection <name>', 'collection')
    .description('retained versions, newest first')
    .action(
      action(async (options) => {
        const { listSnapshots } = await import('./snapshots.ts');
        return listSnapshots(await useLocalStack(options.dataDir), String(options.collection));
      }),
    );
  snapshots
    .command('export')
    .requiredOption('--collection <name>', 'collection')
    .requiredOption('--out <dir>', 'empty directory to unpack into (a Chroma persist directory)')
    .option('--version <n>', 'version (default: current)', parseIntegerOption('--version', 1))
    .description('unpack a snapshot: stock Chroma opens it with `chroma run --path DIR`')
    .action(
      action(async (options) => {
        const { exportSnapshot } = await import('./snapshots.ts');
        return exportSnapshot(
          await useLocalStack(options.dataDir),
          String(options.collection),
          String(options.out),
          options.version as number | undefined,
        );
      }),
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
      action(async (options) => {
        const { rollbackSnapshot } = await import('./snapshots.ts');
        return rollbackSnapshot(
          await useLocalStack(options.dataDir),
          String(options.collection),
          Number(options.to),
        );
      }),
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

  const stack = program
    .command('stack')
    .description('the local services shared by all CLI processes on a data directory');
  stack
    .command('up')
    .description('start the local services (DynamoDB- and S3-compatible) if they are not running')
    .action(
      action(async (options) => {
        const { ensureStack } = await import('./stack.ts');
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
        const { stopStack } = await import('./stack.ts');
        const stopped = await stopStack(options.dataDir);
        return { value: { stopped: stopped !== null }, human: () => (stopped ? 'stopped' : 'not running') };
      }),
    );
  stack
    .command('status')
    .description('whether the local services run, and on which ports')
    .action(
      action(async (options) => {
        const { readStack } = await import('./stack.ts');
        const info = await readStack(options.dataDir);
        return {
          value: { running: info !== null, ...info },
          human: () => (info ? `running: ${JSON.stringify(info)}` : 'not running'),
        };
      }),
    );
}
