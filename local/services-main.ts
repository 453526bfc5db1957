/**
 * The local AWS stand-ins as one process: dynalite (DynamoDB) and s3rver (S3) on 127.0.0.1 with
 * ephemeral ports and their data under one directory. Run in its own process because s3rver's
 * list pagination needs --openssl-legacy-provider, which must not leak into the caller.
 * Prints one JSON line {"s3Port", "dynamoPort", "pid"} when ready; exits on SIGTERM/SIGINT, or when
 * a process of EMBEDFLOW_WATCH_PIDS has ended.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import { alive } from './process-alive.ts';

const dataDir = process.argv[2];
const bucket = process.argv[3] ?? 'embedflow';
if (!dataDir) {
  process.stderr.write('usage: services-main DATA_DIR [BUCKET]\n');
  process.exit(2);
}

mkdirSync(join(dataDir, 's3'), { recursive: true });
mkdirSync(join(dataDir, 'dynamodb'), { recursive: true });

const dynamo = dynalite({
  createTableMs: 0,
  deleteTableMs: 0,
  updateTableMs: 0,
  path: join(dataDir, 'dynamodb'),
});
await new Promise<void>((resolve) =>
  dynamo.listen(Number(process.env.DYNAMO_PORT ?? 0), '127.0.0.1', resolve),
);

const s3 = new S3rver({
  address: '127.0.0.1',
  port: Number(process.env.S3_PORT ?? 0),
  silent: true,
  directory: join(dataDir, 's3'),
  configureBuckets: [{ name: bucket, configs: [] }],
});
const s3Address = (await s3.run()) as AddressInfo;

const shutdown = () => {
  s3.close().finally(() => dynamo.close(() => process.exit(0)));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Never outlive the processes we were told to watch (the starter of a test stack, the test runner).
const watched = (process.env.EMBEDFLOW_WATCH_PIDS ?? '')
  .split(',')
  .map(Number)
  .filter((pid) => Number.isInteger(pid) && pid > 0);
if (watched.length > 0) {
  setInterval(() => {
    for (const pid of watched) if (!alive(pid)) shutdown();
  }, 1000).unref();
}

process.stdout.write(
  `${JSON.stringify({ s3Port: s3Address.port, dynamoPort: (dynamo.address() as AddressInfo).port, pid: process.pid })}\n`,
);
