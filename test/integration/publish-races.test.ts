import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPublishedCollection } from '../../lambdas/core/chroma/published-snapshot.ts';
import { BUILD_LEASE, LeaseLock, lockId } from '../../lambdas/core/protocol/lock.ts';
import { systemClock } from '../../lambdas/core/protocol/ports.ts';
import { publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { publishDeps, type Runtime } from '../../lambdas/core/runtime.ts';
import { startTestStack, type TestStack, uniqueCollection } from '../helpers/local-stack.ts';
import { makeUpserts } from '../helpers/records.ts';

/**
 * The race tests against the real local DynamoDB, S3 and Chroma (the in-memory suite,
 * test/unit/protocol/races.test.ts, runs thousands of interleavings; these check the adapters).
 */
const DIM = 8;
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

function countAndIds(rt: Runtime, collection: string) {
  return withPublishedCollection(rt, collection, async ({ collection: opened }) => ({
    count: await opened.count(),
    ids: new Set((await opened.get({ include: [] })).ids),
  }));
}

describe.each(['two-phase', 'single-phase'] as const)('%s: concurrent publishers', (strategy) => {
  it('8 publishers adding disjoint ids all succeed and lose nothing; each is live when it reports published', async () => {
    const rt = stack.runtime({ LOCK_STRATEGY: strategy, LOCK_WAIT_SECONDS: '300' });
    const collection = uniqueCollection('words');
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        publish(
          publishDeps(rt),
          collection,
          opsChange(`run-${index}`, makeUpserts(`p${index}`, 25, DIM, index)),
        ),
      ),
    );
    expect(results.every((result) => result.status === 'published')).toBe(true);
    expect(results.map((result) => result.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const { count, ids } = await countAndIds(rt, collection);
    expect(count).toBe(200);
    for (let index = 0; index < 8; index++) expect(ids.has(`p${index}-00024`)).toBe(true);
    const pointer = await rt.pointers.read(collection);
    expect(pointer).toMatchObject({ publishedSeq: 8, recordCount: 200 });
    if (strategy === 'two-phase') {
      // folding: fewer snapshots than runs, and no run waited behind a lock
      expect(pointer.version).toBeLessThan(8);
      expect(results.every((result) => result.lockHoldMs === 0)).toBe(true);
    } else {
      expect(pointer.version).toBe(8);
    }
  });
});

describe('leases and clocks', () => {
  it('clocks that disagree cost only wasted work: a builder 10 minutes fast steals live leases, nothing is lost', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    const fast = new LeaseLock(rt.items, {
      leaseSeconds: 60,
      heartbeatSeconds: 15,
      waitSeconds: 60,
      naming: BUILD_LEASE,
      clock: { now: () => Date.now() + 10 * 60_000, sleep: systemClock.sleep },
    });
    const results = await Promise.all([
      ...Array.from({ length: 3 }, (_, index) =>
        publish(
          publishDeps(rt),
          collection,
          opsChange(`honest-${index}`, makeUpserts(`honest${index}`, 10, DIM, index)),
        ),
      ),
      ...Array.from({ length: 3 }, (_, index) =>
        publish(
          publishDeps(rt, { buildLease: fast }),
          collection,
          opsChange(`fast-${index}`, makeUpserts(`fast${index}`, 10, DIM, 10 + index)),
        ),
      ),
    ]);
    expect(results.every((result) => result.status === 'published')).toBe(true);
    const { count } = await countAndIds(rt, collection);
    expect(count).toBe(60);
  });

  it('a builder whose lease was made to look expired mid-build is overtaken, and nothing is applied twice', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('lines');
    await publish(publishDeps(rt), collection, opsChange('seed', makeUpserts('seed', 3, DIM)));
    let overtaken = false;
    const slow = publish(
      publishDeps(rt, {
        faults: async (point) => {
          if (point !== 'mid-build' || overtaken) return;
          overtaken = true;
          await rt.aws.dynamo.send(
            new UpdateCommand({
              TableName: rt.aws.table,
              Key: { pk: lockId(collection, BUILD_LEASE) },
              UpdateExpression: 'SET expiresAt = :past',
              ExpressionAttributeValues: { ':past': 1 },
            }),
          );
          await publish(publishDeps(rt), collection, opsChange('newer', makeUpserts('newer', 4, DIM)));
        },
      }),
      collection,
      opsChange('stale', makeUpserts('stale', 5, DIM)),
    );
    expect((await slow).status).toBe('published');
    const { count, ids } = await countAndIds(rt, collection);
    expect(count).toBe(12);
    expect(ids.has('newer-00003') && ids.has('stale-00004') && ids.has('seed-00002')).toBe(true);
  });

  it('the pointer swap refuses a stale revision even without any lock', async () => {
    const rt = stack.runtime();
    const collection = uniqueCollection('words');
    await publish(publishDeps(rt), collection, opsChange('a', makeUpserts('a', 2, DIM)));
    await publish(publishDeps(rt), collection, opsChange('b', makeUpserts('b', 2, DIM)));
    const head = await rt.pointers.read(collection);
    const stale = { ...head, revision: 1, version: 1 };
    const forged = {
      ...head,
      revision: 2,
      version: 2,
      snapshotKey: 'snapshots/x/forged.tar',
      writeId: 'forged',
    };
    expect(await rt.pointers.swap(stale, forged)).toEqual({ swapped: false, head });
    expect(await rt.pointers.read(collection)).toEqual(head);
  });
});
