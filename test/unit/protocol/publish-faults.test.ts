import { describe, expect, it } from 'vitest';
import { BUILD_LEASE, lockId } from '../../../lambdas/core/protocol/lock.ts';
import { publish } from '../../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../../lambdas/core/records/changes.ts';
import { FastClock } from '../../helpers/memory/clocks.ts';
import { type Fault, randomFaults } from '../../helpers/memory/memory-item-store.ts';
import { memoryWorld } from '../../helpers/memory/memory-runtime.ts';
import { seededRandom } from '../../helpers/memory/random.ts';
import { makeUpserts } from '../../helpers/records.ts';

const DIM = 4;
const isPointer = (key: string) => key.startsWith('pointer#');

/** Every object the pointer names or retains exists, and the live one holds exactly `ids`. */
async function expectLive(world: ReturnType<typeof memoryWorld>, collection: string, ids: string[]) {
  const pointer = await world.deps().pointers.read(collection);
  for (const entry of pointer.history) expect(world.snapshots.objects.has(entry.key), entry.key).toBe(true);
  const live = world.snapshots.read(pointer.snapshotKey!);
  expect([...live.keys()].sort()).toEqual([...ids].sort());
  expect(pointer.recordCount).toBe(ids.length);
  return pointer;
}

describe('publish under the failures DynamoDB really produces', () => {
  it.each(['lost', 'lost-retried'] as const)(
    'a pointer swap that was applied but answered with an error (%s) is a publish',
    async (fault) => {
      const world = memoryWorld();
      let armed = true;
      const deps = world.deps();
      const faulty = world.items.connection((call) => {
        if (!armed || !isPointer(call.key) || call.op !== 'put') return 'none';
        armed = false;
        return fault as Fault;
      });
      deps.pointers = world.deps({}).pointers;
      (deps.pointers as unknown as { items: unknown }).items = faulty;
      const result = await publish(deps, 'words', opsChange('run-1', makeUpserts('a', 3, DIM)));
      expect(result).toMatchObject({ status: 'published', snapshotVersion: 1, casRetries: 0 });
      expect(world.snapshots.deleted).toEqual([]);
      await expectLive(world, 'words', ['a-00000', 'a-00001', 'a-00002']);
      const next = await publish(world.deps(), 'words', opsChange('run-2', makeUpserts('b', 1, DIM)));
      expect(next).toMatchObject({ status: 'published', snapshotVersion: 2 });
      await expectLive(world, 'words', ['a-00000', 'a-00001', 'a-00002', 'b-00000']);
    },
  );

  it('30% of conditional writes lost or throttled: 20 runs in a row all publish, nothing is lost, nothing named is deleted', async () => {
    const random = seededRandom(7);
    const world = memoryWorld({ random });
    world.items.faults = randomFaults(random, { lost: 0.15, 'lost-retried': 0.15, throttled: 0.1 });
    const ids: string[] = [];
    for (let run = 0; run < 20; run++) {
      const ops = makeUpserts(`r${run}`, 2, DIM, run);
      ids.push(...ops.map((op) => op.id));
      const result = await publish(
        world.deps({ config: { maxCasRetries: 10 } }),
        'words',
        opsChange(`run-${run}`, ops),
      );
      expect(result.status).toBe('published');
    }
    expect(world.items.stats.faults.lost + world.items.stats.faults['lost-retried']).toBeGreaterThan(10);
    const pointer = await expectLive(world, 'words', ids);
    expect(pointer.version).toBe(20);
  });

  it('a lock item removed by TTL between publishes blocks nothing', async () => {
    const world = memoryWorld();
    await publish(world.deps(), 'words', opsChange('one', makeUpserts('a', 1, DIM)));
    world.items.items.delete(lockId('words')); // DynamoDB TTL, a day after the last lease
    const result = await publish(world.deps(), 'words', opsChange('two', makeUpserts('b', 1, DIM)));
    expect(result).toMatchObject({ status: 'published', snapshotVersion: 2, casRetries: 0 });
  });

  it('a run applied once is never applied again, even when its first publish ended with an error', async () => {
    const world = memoryWorld();
    let armed = true;
    const deps = world.deps({
      items: world.items.connection((call) => {
        if (!armed || !isPointer(call.key) || call.op !== 'put') return 'none';
        armed = false;
        return 'lost';
      }),
    });
    await publish(deps, 'words', opsChange('run-1', makeUpserts('a', 2, DIM)));
    const again = await publish(world.deps(), 'words', opsChange('run-1', makeUpserts('zzz', 2, DIM)));
    expect(again).toMatchObject({ status: 'already-applied', snapshotVersion: 1 });
  });

  it('a builder whose lease runs out mid-build (heartbeats throttled) never publishes over the builder that took over', async () => {
    const clock = new FastClock(1000);
    const world = memoryWorld({ clock });
    await publish(world.deps(), 'words', opsChange('seed', makeUpserts('s', 1, DIM)));
    let throttle = false;
    const slow = world.deps({
      lockItems: world.items.connection((call) =>
        throttle && call.op === 'put' && call.key === lockId('words', BUILD_LEASE) ? 'throttled' : 'none',
      ),
    });
    let uploads = 0;
    world.builder.afterUpload = async () => {
      uploads++;
      if (uploads !== 1) return;
      // the slow builder's first upload: its lease runs out while its heartbeats fail, and another takes over
      throttle = true;
      await clock.sleep(120_000);
      await publish(world.deps(), 'words', opsChange('fast', makeUpserts('f', 1, DIM)));
      throttle = false;
    };
    const result = await publish(slow, 'words', opsChange('slow', makeUpserts('slow', 1, DIM)));
    expect(result.status).toBe('published');
    const pointer = await world.deps().pointers.read('words');
    // seed v1; the builder that took over folded slow and fast into v2; the slow builder's upload was dropped
    expect(pointer).toMatchObject({ version: 2, publishedSeq: 3, recordCount: 3 });
    expect([...world.snapshots.read(pointer.snapshotKey!).keys()].sort()).toEqual([
      'f-00000',
      's-00000',
      'slow-00000',
    ]);
    expect(result.snapshotVersion).toBe(2);
  });
});
