import { PutObjectCommand } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { payloadBytes } from '../../local/asl-limits.ts';
import { enteredEventOf, type HistoryEvent } from '../../local/history-event.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { makeUpserts, toJsonl } from '../helpers/records.ts';

/**
 * The workflow within Step Functions' limits, run in this process by the local runner (which
 * enforces them as AWS does): the Maps as wide as MAP_MAX_CONCURRENCY, and every state's input and
 * output under 256 KB even for a run of 20,000 deltas.
 */
let stack: TestStack;
// The handlers log and emit metrics through Powertools when their modules load: silence first.
Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
const { resetRuntime, runtime } = await import('../../lambdas/core/runtime.ts');
const { executeLocally } = await import('../../local/workflow.ts');
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** The handlers read process.env through runtime(): point it at the stack with these settings. */
function useSettings(settings: Record<string, string>) {
  for (const name of ['MAP_MAX_CONCURRENCY', 'CHUNK_SIZE', 'GROUP_SIZE', 'IO_CONCURRENCY'])
    delete process.env[name];
  Object.assign(process.env, stack.env(settings));
  resetRuntime();
}

/** `count` one-record deltas of dimension 2 under input/<runId>/<collection>/. */
async function uploadDeltas(runId: string, collection: string, count: number): Promise<string> {
  const prefix = `input/${runId}/${collection}/`;
  const limit = pLimit(32);
  await Promise.all(
    Array.from({ length: count }, (_, index) =>
      limit(() => {
        const name = `d${String(index).padStart(6, '0')}`;
        const { s3, bucket } = runtime().objects;
        const Body = toJsonl(makeUpserts(`${collection}-${name}`, 1, 2, index + 1));
        return s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${name}.jsonl`, Body }));
      }),
    ),
  );
  return prefix;
}

/** Per collection, the most ProcessChunk and MergeGroup tasks that were running at once. */
function widest(events: HistoryEvent[], stateName: string): Record<string, number> {
  const byId = new Map(events.map((event) => [event.id, event]));
  const running: Record<string, number> = {};
  const widest: Record<string, number> = {};
  for (const event of events) {
    if (event.stateName !== stateName) continue;
    if (event.type === 'TaskStateEntered') {
      const collection = (event.input as { collection: string }).collection;
      running[collection] = (running[collection] ?? 0) + 1;
      widest[collection] = Math.max(widest[collection] ?? 0, running[collection]!);
    } else if (event.type === 'TaskStateExited') {
      const collection = (enteredEventOf(event, byId)!.input as { collection: string }).collection;
      running[collection]! -= 1;
    }
  }
  return widest;
}

describe('the local runner runs the workflow within the limits of Step Functions', () => {
  beforeEach(() => resetRuntime());

  it('runs no more chunk or merge tasks of a collection at once than MAP_MAX_CONCURRENCY', async () => {
    useSettings({ MAP_MAX_CONCURRENCY: '1', CHUNK_SIZE: '2', GROUP_SIZE: '2' });
    const runId = 'narrow';
    const collections = await Promise.all(
      ['narrow-a', 'narrow-b'].map(async (name) => ({
        name,
        deltaPrefix: await uploadDeltas(runId, name, 8),
      })),
    );
    const result = await executeLocally({ input: { runId, collections }, executionId: runId });
    expect(result.status, JSON.stringify(result.error)).toBe('SUCCEEDED');
    // 4 chunks and 2 merges per collection, one at a time; the two collections side by side
    expect(widest(result.events, 'ProcessChunk')).toEqual({ 'narrow-a': 1, 'narrow-b': 1 });
    expect(widest(result.events, 'MergeGroup')).toEqual({ 'narrow-a': 1, 'narrow-b': 1 });
  });

  // 40,000 requests to s3rver: minutes on a busy two-core machine. The fan-out's payloads are checked
  // at this size in seconds by test/unit/state-machine.test.ts; EMBEDFLOW_LARGE_RUNS=1 runs it whole.
  it.runIf(process.env.EMBEDFLOW_LARGE_RUNS === '1')(
    'publishes a run of 20,000 deltas with every state input and output under 256 KB',
    async () => {
      // Default chunk and group sizes (1,334 chunks of 15, merged in groups of 20), wide I/O.
      useSettings({ IO_CONCURRENCY: '32', MAP_MAX_CONCURRENCY: '40' });
      const runId = 'wide';
      const deltaPrefix = await uploadDeltas(runId, 'wide', 20_000);
      const result = await executeLocally({
        input: { runId, collections: [{ name: 'wide', deltaPrefix }] },
        executionId: runId,
      });
      expect(result.status, JSON.stringify(result.error)).toBe('SUCCEEDED');
      expect((result.output as { collections: unknown[] }).collections).toEqual([
        expect.objectContaining({
          deltas: 20_000,
          chunks: 1334,
          intermediateMerges: 67 + 4,
          recordCount: 20_000,
        }),
      ]);
      const largest = Math.max(
        ...result.events.flatMap((event) => [payloadBytes(event.input), payloadBytes(event.output)]),
      );
      expect(largest).toBeLessThan(262_144);
      console.info(
        `20,000 deltas: largest state payload ${largest} bytes, ${result.events.length} history events`,
      );
    },
    600_000,
  );
});
