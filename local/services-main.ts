/**
 * The local AWS stand-ins: dynalite (DynamoDB) and s3rver (S3) on 127.0.0.1 with ephemeral ports
 * and their data under one directory. Run in its own process because s3rver's list pagination
 * needs --openssl-legacy-provider, which must not leak into the caller. dynalite runs in a child
 * process of its own: both are single-threaded, and a snapshot upload streaming through s3rver
 * must not hold up the conditional writes of every other publisher.
 * Prints one JSON line {"s3Port", "dynamoPort", "pid"} when ready; exits on SIGTERM/SIGINT, or when
 * a process of EMBEDFLOW_WATCH_PIDS has ended (the DynamoDB child when its parent has).
 */
import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import { alive } from './process-alive.ts';

const DYNAMO_ROLE = 'dynamo';
const dataDir = process.argv[2];
const bucket = process.argv[3] ?? 'embedflow';
if (!dataDir) {
  process.stderr.write('usage: services-main DATA_DIR [BUCKET]\n');
  process.exit(2);
}

/** Exits once any of these processes has ended. */
function exitWith(pids: number[], shutdown: () => void): void {
  if (pids.length === 0) return;
  setInterval(() => {
    for (const pid of pids) if (!alive(pid)) shutdown();
  }, 1000).unref();
}

if (process.env.EMBEDFLOW_SERVICES_ROLE === DYNAMO_ROLE) {
  const dynamo = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    path: join(dataDir, 'dynamodb'),
  });
  await new Promise<void>((resolve) =>
    dynamo.listen(Number(process.env.DYNAMO_PORT ?? 0), '127.0.0.1', resolve),
  );
  const shutdown = () => dynamo.close(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('disconnect', shutdown);
  exitWith([process.ppid], shutdown);
  process.send?.({ dynamoPort: (dynamo.address() as AddressInfo).port });
} else {
  mkdirSync(join(dataDir, 's3'), { recursive: true });
  mkdirSync(join(dataDir, 'dynamodb'), { recursive: true });

  const dynamoChild = fork(process.argv[1]!, process.argv.slice(2), {
    execArgv: process.execArgv,
    env: { ...process.env, EMBEDFLOW_SERVICES_ROLE: DYNAMO_ROLE },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const dynamoPort = await new Promise<number>((resolve, reject) => {
    dynamoChild.once('message', (message) => resolve((message as { dynamoPort: number }).dynamoPort));
    dynamoChild.once('exit', (code) => reject(new Error(`the DynamoDB process exited with code ${code}`)));
  });

  const s3 = new S3rver({
    address: '127.0.0.1',
    port: Number(process.env.S3_PORT ?? 0),
    silent: true,
    directory: join(dataDir, 's3'),
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const s3Address = (await s3.run()) as AddressInfo;

  const shutdown = () => {
    dynamoChild.kill('SIGTERM');
    s3.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  dynamoChild.on('exit', shutdown); // half a stack is no stack
  // Never outlive the processes we were told to watch (the starter of a test stack, the test runner).
  exitWith(
    (process.env.EMBEDFLOW_WATCH_PIDS ?? '')
      .split(',')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0),
    shutdown,
  );

  process.stdout.write(`${JSON.stringify({ s3Port: s3Address.port, dynamoPort, pid: process.pid })}\n`);
}
