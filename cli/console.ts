import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { ExecutionSource } from '../local/console/execution-source.ts';
import { startConsoleServer } from '../local/console/server.ts';
import { checkStateMachineArn } from './aws-arguments.ts';
import { info, UsageError } from './output.ts';

/** `embedflow console`: serves the execution console on 127.0.0.1 until Ctrl-C. */
export interface ConsoleOptions {
  dataDir: string;
  /** 0 picks any free port. */
  port: number;
  /** Show this deployed state machine's executions instead of the local ones. */
  stateMachineArn?: string;
  /** Open the page in the default browser. */
  open?: boolean;
}

async function sourceFor(options: ConsoleOptions): Promise<ExecutionSource | undefined> {
  if (options.stateMachineArn === undefined) return undefined;
  checkStateMachineArn(options.stateMachineArn);
  // Loaded only in AWS mode: the local console needs no AWS SDK client.
  const { AwsExecutionSource } = await import('../local/console/aws-source.ts');
  return new AwsExecutionSource(options.stateMachineArn);
}

/** Best effort: a machine without a desktop just keeps the printed URL. */
function openInBrowser(url: string): void {
  const [command, ...args] =
    process.platform === 'darwin'
      ? ['open', url]
      : process.platform === 'win32'
        ? ['cmd', '/c', 'start', '', url]
        : ['xdg-open', url];
  const child = spawn(command!, args, { detached: true, stdio: 'ignore' });
  child.on('error', () => info(`could not open a browser: open ${url} yourself`));
  child.unref();
}

function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolveSignal(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Starts the console, prints its URL to stderr, and resolves once SIGINT or SIGTERM stopped it. */
export async function runConsole(options: ConsoleOptions): Promise<void> {
  const source = await sourceFor(options);
  const port = options.port;
  const server = await startConsoleServer({
    dataDir: resolve(options.dataDir),
    port,
    ...(source && { source }),
  }).catch((error: unknown) => {
    if ((error as { code?: string }).code === 'EADDRINUSE') {
      throw new UsageError(
        `port ${port} on 127.0.0.1 is in use: choose another with --port N (0: any free port)`,
      );
    }
    throw error;
  });
  const where = source?.description ?? `local executions in ${resolve(options.dataDir)}`;
  info(`embedflow console: ${server.url} (${where}); Ctrl-C to stop`);
  if (options.open) openInBrowser(server.url);
  await untilStopSignal();
  await server.close();
}
