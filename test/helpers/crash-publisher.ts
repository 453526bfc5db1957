/**
 * A publisher process that dies with SIGKILL at one fault point of the publish protocol: a real
 * crash, with no finally blocks, no release and no more heartbeats.
 * Usage: crash-publisher COLLECTION RUN_ID CRASH_AT PREFIX COUNT DIMENSION (env: the local stack)
 */

import { type FaultPoint, publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { createRuntime, publishDeps } from '../../lambdas/core/runtime.ts';
import { makeUpserts } from './records.ts';

const [collection, runId, crashAt, prefix, count, dimension] = process.argv.slice(2);
const rt = createRuntime();
await publish(
  publishDeps(rt, {
    faults: (point: FaultPoint) => {
      if (point === crashAt) process.kill(process.pid, 'SIGKILL');
    },
  }),
  collection!,
  opsChange(runId!, makeUpserts(prefix!, Number(count), Number(dimension), 99)),
);
process.stdout.write('survived\n');
