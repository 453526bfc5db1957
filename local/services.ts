import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { withHugePageMalloc } from '../lambdas/core/malloc-tunables.ts';
import { entryPointArgs } from './package-paths.ts';

/**
 * Starts the local AWS stand-ins (DynamoDB via dynalite, S3 via s3rver) in one child process on
 * 127.0.0.1 and returns the environment that points the SDK at them. Tests, the CLI's shared
 * stack and the benchmarks all start services through this one function.
 */
export interface LocalServices {
  dataDir: string;
  bucket: string;
  table: string;
  s3Port: number;
  dynamoPort: number;
  pid: number;
  /** The variables under which lambdas/core reaches these services, exactly as it would reach AWS. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export const LOCAL_BUCKET = 'embedflow';
export const LOCAL_TABLE = 'embedflow';

export function localEnv(s3Port: number, dynamoPort: number, dataDir: string): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${s3Port}`,
    AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${dynamoPort}`,
    BUCKET_NAME: LOCAL_BUCKET,
    TABLE_NAME: LOCAL_TABLE,
    // s3rver checks no checksum: computing a CRC32 of every body would be wasted work locally.
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    SNAPSHOT_CACHE_DIR: join(dataDir, 'cache'),
    EMBEDFLOW_WORK_DIR: join(dataDir, 'work'),
  };
}

export interface StartOptions {
  dataDir: string;
  /** Keep running after this process exits (the CLI's shared stack); default: die with the parent. */
  detached?: boolean;
}

/**
 * The processes whose end stops the services: the caller, unless the stack is detached (the CLI's
 * shared stack outlives each command), plus any listed in EMBEDFLOW_STACK_WATCH_PID. The test
 * configuration sets that to the test runner's pid, so stopping the runner, however it is stopped,
 * leaves no stack behind, detached ones included.
 */
export function watchedPids(detached: boolean, env: NodeJS.ProcessEnv = process.env): number[] {
  const listed = (env.EMBEDFLOW_STACK_WATCH_PID ?? '')
    .split(',')
    .map((pid) => Number(pid.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
  return [...new Set([...(detached ? [] : [process.pid]), ...listed])];
}

export async function startLocalServices(options: StartOptions): Promise<LocalServices> {
  const dataDir = options.dataDir;
  await mkdir(dataDir, { recursive: true });
  // A detached stack outlives our pipes: its diagnostics go to a log file in the data directory.
  const stderr = options.detached ? openSync(join(dataDir, 'services.log'), 'a') : 'pipe';
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', ...entryPointArgs('services-main'), dataDir, LOCAL_BUCKET],
    {
      stdio: ['ignore', 'pipe', stderr],
      detached: options.detached ?? false,
      env: withHugePageMalloc({
        ...process.env,
        EMBEDFLOW_WATCH_PIDS: watchedPids(options.detached ?? false).join(','),
      }),
    },
  );
  const ready = await readReadyLine(child);
  const env = localEnv(ready.s3Port, ready.dynamoPort, dataDir);
  await ensureTable(env);
  if (options.detached) {
    child.unref();
    child.stdout?.destroy();
    closeSync(stderr as number);
  }
  return {
    dataDir,
    bucket: LOCAL_BUCKET,
    table: LOCAL_TABLE,
    ...ready,
    env,
    stop: () => stopProcess(child),
  };
}

async function readReadyLine(
  child: ChildProcess,
): Promise<{ s3Port: number; dynamoPort: number; pid: number }> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`local services exited with code ${code}: ${stderr}`))),
  );
  const firstLine = new Promise<string>((resolve) => lines.once('line', resolve));
  const line = await Promise.race([firstLine, exited]);
  lines.close();
  return JSON.parse(line) as { s3Port: number; dynamoPort: number; pid: number };
}

export async function ensureTable(env: Record<string, string>): Promise<void> {
  const client = new DynamoDBClient({
    region: env.AWS_REGION,
    endpoint: env.AWS_ENDPOINT_URL_DYNAMODB,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  try {
    await client.send(
      new CreateTableCommand({
        TableName: env.TABLE_NAME,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  } finally {
    client.destroy();
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
