import { describe, expect, it } from 'vitest';
import { CHANGESET_GRACE_MS, CHANGESET_SWEEP_INTERVAL_MS } from '../../../lambdas/core/protocol/cleanup.ts';
import { buildUnderLease, type FaultPoint } from '../../../lambdas/core/protocol/publication.ts';
import { publish } from '../../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../../lambdas/core/records/changes.ts';
import type { ObjectStore } from '../../../lambdas/core/storage/object-store.ts';
import { compactWith, type StreamRecord } from '../../../lambdas/core/stream/stream-compaction.ts';
import { FastClock, ManualClock } from '../../helpers/memory/clocks.ts';
import { heldForever, liveIds, type MemoryWorld, memoryWorld } from '../../helpers/memory/memory-runtime.ts';
import { makeUpserts } from '../../helpers/records.ts';

const DIM = 4;
const ids = (world: MemoryWorld, key: string | null) => [...world.snapshots.read(key!).keys()].sort();
const live = (world: MemoryWorld) => liveIds(world, 'words');
const upsert = (messageId: string, id: string, value = 1): StreamRecord => ({
  messageId: `sqs-${messageId}-${Math.random()}`,
  body: JSON.stringify({
    messageId,
    collection: 'words',
    operation: 'upsert',
    records: [{ id, embedding: [value, 1, 1, 1] }],
  }),
});
const always = heldForever('words');

class Crash extends Error {}

describe('the commit log', () => {
  it('two publishers appending at the same moment both land, in one order', async () => {
    const world = memoryWorld();
    const [a, b] = await Promise.all([
      publish(world.deps(), 'words', opsChange('a', makeUpserts('a', 2, DIM))),
      publish(world.deps(), 'words', opsChange('b', makeUpserts('b', 2, DIM))),
    ]);
    expect(new Set([a.seq, b.seq])).toEqual(new Set([1, 2]));
    expect(a.casRetries + b.casRetries).toBeLessThanOrEqual(1);
    expect(await live(world)).toEqual(['a-00000', 'a-00001', 'b-00000', 'b-00001']);
  });

  it('the head hint is only a hint: with its reads and raises throttled, appends probe up from the floor and land', async () => {
    const world = memoryWorld();
    world.items.faults = (call) => (call.key.startsWith('loghead#') ? 'throttled' : 'none');
    const deps = world.deps();
    const append = async (name: string) => {
      const changeSet = await deps.changeSets.writeOps('words', name, makeUpserts(name, 1, DIM), DIM);
      const appended = await deps.log.append('words', { changeSet, label: name, runId: name }, 0);
      await appended.headRaised; // never fails, even when the raise is throttled
      return appended;
    };
    const first = await append('a');
    const second = await append('b');
    expect([first.entry.seq, second.entry.seq]).toEqual([1, 2]);
    expect(second.conflicts).toBe(1); // started at the floor, lost seq 1, took 2
    expect(world.items.stats.faults.throttled).toBeGreaterThanOrEqual(4);
    expect((await deps.log.pending('words', 0)).map((entry) => entry.runId)).toEqual(['a', 'b']);
  });

  it('concurrent runs are folded: 6 runs publish in fewer builds than runs, each reports SUCCEEDED only once live', async () => {
    const world = memoryWorld();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        publish(world.deps(), 'words', opsChange(`run-${index}`, makeUpserts(`r${index}`, 3, DIM, index))),
      ),
    );
    for (const result of results) {
      expect(result.status).toBe('published');
      const version = (await world.deps().pointers.read('words')).history.find(
        (entry) => entry.version === result.snapshotVersion,
      );
      expect(ids(world, version!.key)).toEqual(
        expect.arrayContaining(makeUpserts(`r${results.indexOf(result)}`, 3, DIM).map((op) => op.id)),
      );
    }
    const pointer = await world.deps().pointers.read('words');
    expect(pointer.publishedSeq).toBe(6);
    expect(pointer.version).toBeLessThan(6);
    expect(world.builder.uploads).toBeLessThan(6);
  });

  it.each(['after-changeset', 'after-append', 'mid-build', 'after-upload', 'after-swap'] as FaultPoint[])(
    'a publisher that crashes %s loses nothing, applies nothing twice and holds no lease past its lease',
    async (point) => {
      const clock = new FastClock(1000);
      const world = memoryWorld({ clock });
      await publish(world.deps(), 'words', opsChange('seed', makeUpserts('s', 1, DIM)));
      const crashing = world.deps({
        faults: (at) => {
          if (at === point) throw new Crash(point);
        },
      });
      await expect(
        publish(crashing, 'words', opsChange('crashed', makeUpserts('c', 2, DIM))),
      ).rejects.toThrow(Crash);
      // the workflow's retry of the same run, and a newer run, after the crashed holder's lease ran out
      const retried = await publish(world.deps(), 'words', opsChange('crashed', makeUpserts('c', 2, DIM)));
      expect(['published', 'already-applied']).toContain(retried.status);
      await publish(world.deps(), 'words', opsChange('newer', makeUpserts('n', 1, DIM)));
      expect(await live(world)).toEqual(['c-00000', 'c-00001', 'n-00000', 's-00000']);
      const again = await publish(world.deps(), 'words', opsChange('crashed', makeUpserts('zz', 1, DIM)));
      expect(again.status).toBe('already-applied');
      const leases = await world.deps().buildLease.list();
      expect(leases.filter((lease) => !lease.expired)).toEqual([]);
    },
  );

  it('a run re-driven after 600 newer runs changes nothing', async () => {
    const world = memoryWorld();
    await publish(world.deps(), 'words', opsChange('old', makeUpserts('x', 1, DIM, 1)));
    for (let run = 0; run < 600; run++) {
      await publish(world.deps(), 'words', opsChange(`run-${run}`, makeUpserts('x', 1, DIM, run + 2)));
    }
    const before = world.snapshots
      .read((await world.deps().pointers.read('words')).snapshotKey!)
      .get('x-00000');
    const redriven = await publish(world.deps(), 'words', opsChange('old', makeUpserts('x', 1, DIM, 1)));
    expect(redriven.status).toBe('already-applied');
    const pointer = await world.deps().pointers.read('words');
    expect(world.snapshots.read(pointer.snapshotKey!).get('x-00000')).toEqual(before);
    expect(JSON.stringify(pointer).length).toBeLessThan(4096);
  });

  it('a message redelivered after 2,100 newer ones changes nothing', async () => {
    const world = memoryWorld();
    await compactWith(world.deps(), {} as ObjectStore, [upsert('first', 'x', 1)]);
    for (let batch = 0; batch < 210; batch++) {
      await compactWith(
        world.deps(),
        {} as ObjectStore,
        Array.from({ length: 10 }, (_, index) => upsert(`m${batch}-${index}`, 'x', 2)),
      );
    }
    const redelivered = await compactWith(world.deps(), {} as ObjectStore, [upsert('first', 'x', 1)]);
    expect(redelivered.publishes.words?.status).toBe('already-applied');
    const pointer = await world.deps().pointers.read('words');
    expect(world.snapshots.read(pointer.snapshotKey!).get('x')?.embedding[0]).toBe(2);
  });

  it('a builder whose swap was lost replays the entries in between onto its open copy, never rebuilding', async () => {
    const world = memoryWorld();
    await publish(world.deps(), 'words', opsChange('seed', makeUpserts('s', 1, DIM)));
    const deps = world.deps();
    await deps.log.append(
      'words',
      {
        changeSet: await deps.changeSets.writeOps('words', 'a', makeUpserts('a', 1, DIM), DIM),
        label: 'a',
        runId: 'a',
      },
      1,
    );
    let stolen = false;
    world.builder.afterUpload = async () => {
      if (stolen) return;
      stolen = true;
      // while our builder uploads, another (its lease lapsed for it) folds our entry and one more
      await deps.log.append(
        'words',
        {
          changeSet: await deps.changeSets.writeOps('words', 'b', makeUpserts('b', 1, DIM), DIM),
          label: 'b',
          runId: 'b',
        },
        1,
      );
      await buildUnderLease(world.deps(), always, 'words');
      await deps.log.append(
        'words',
        {
          changeSet: await deps.changeSets.writeOps('words', 'c', makeUpserts('c', 1, DIM), DIM),
          label: 'c',
          runId: 'c',
        },
        1,
      );
    };
    const opensBefore = world.builder.opened;
    const report = await buildUnderLease(deps, always, 'words');
    expect(report.replays).toBe(1);
    expect(world.builder.opened - opensBefore).toBe(2); // ours, once; and the other builder's
    expect(await live(world)).toEqual(['a-00000', 'b-00000', 'c-00000', 's-00000']);
    expect((await world.deps().pointers.read('words')).publishedSeq).toBe(4);
  });

  it('change sets are swept past the grace, and listed at most once per sweep interval', async () => {
    const clock = new ManualClock();
    const world = memoryWorld({ clock });
    let listings = 0;
    const list = world.changeSets.list.bind(world.changeSets);
    world.changeSets.list = (collection) => {
      listings++;
      return list(collection);
    };
    await publish(world.deps(), 'words', opsChange('first', makeUpserts('a', 1, DIM)));
    const first = [...world.changeSets.objects.keys()];
    expect(first).toHaveLength(1);
    expect(listings).toBe(1);
    await clock.advance(CHANGESET_GRACE_MS + 60_000, 60_000);
    await publish(world.deps(), 'words', opsChange('second', makeUpserts('b', 1, DIM)));
    expect(listings).toBe(2);
    expect(world.changeSets.deleted).toEqual(first); // past the grace, no longer pending
    await clock.advance(CHANGESET_SWEEP_INTERVAL_MS / 2, 60_000);
    await publish(world.deps(), 'words', opsChange('third', makeUpserts('c', 1, DIM)));
    expect(listings).toBe(2); // swept a moment ago: not listed again
    await clock.advance(CHANGESET_SWEEP_INTERVAL_MS, 60_000);
    await publish(world.deps(), 'words', opsChange('fourth', makeUpserts('d', 1, DIM)));
    expect(listings).toBe(3);
    expect(await live(world)).toEqual(['a-00000', 'b-00000', 'c-00000', 'd-00000']);
  });
});
