import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../../../lambdas/core/protocol/commit-log.ts';
import { PREFETCH_BUDGET_BYTES, withinPrefetchBudget } from '../../../lambdas/core/protocol/fold.ts';
import { prepareWorkspace } from '../../../lambdas/core/protocol/prepared-workspace.ts';
import {
  buildUnderLease,
  COMMITS_PAUSE_MS,
  GROUP_COMMIT_MAX_MS,
} from '../../../lambdas/core/protocol/publication.ts';
import {
  awaitPublication,
  LEASE_LOOK_MS,
  publish,
  WAIT_POLL_MAX_MS,
} from '../../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../../lambdas/core/records/changes.ts';
import { ManualClock } from '../../helpers/memory/clocks.ts';
import { heldForever, liveIds, type MemoryWorld, memoryWorld } from '../../helpers/memory/memory-runtime.ts';
import { makeUpserts } from '../../helpers/records.ts';

/**
 * What keeps a run from waiting longer than its build: the build lease's winner opening its copy
 * while it commits, the change sets fetched while the copy opens, a waiter looking often enough.
 */
const DIM = 4;
const live = (world: MemoryWorld) => liveIds(world, 'words');
const always = heldForever('words');
/** Appends a run's entry of one record, as its commit would. */
const append = async (deps: ReturnType<MemoryWorld['deps']>, name: string) =>
  deps.log.append(
    'words',
    {
      changeSet: await deps.changeSets.writeOps('words', name, makeUpserts(name, 1, DIM), DIM),
      label: name,
      runId: name,
    },
    0,
  );

describe("a build's head start", () => {
  it('a publisher that wins the build lease opens its copy while committing and builds on it', async () => {
    const world = memoryWorld();
    await publish(world.deps(), 'words', opsChange('seed', makeUpserts('s', 1, DIM)));
    const before = { opened: world.builder.opened, closed: world.builder.closed };
    const result = await publish(world.deps(), 'words', opsChange('next', makeUpserts('n', 1, DIM)));
    expect(result).toMatchObject({ status: 'published', builds: 1 });
    expect(world.builder.opened - before.opened).toBe(1); // the prepared copy, no second open
    expect(world.builder.closed - before.closed).toBe(1);
    expect(await live(world)).toEqual(['n-00000', 's-00000']);
  });

  it('a copy prepared for a pointer that moved meanwhile is closed unused; the build opens the new head', async () => {
    const world = memoryWorld();
    await publish(world.deps(), 'words', opsChange('seed', makeUpserts('s', 1, DIM)));
    const deps = world.deps();
    const head = await deps.pointers.read('words');
    const prepared = prepareWorkspace(deps, head);
    // another builder publishes first
    await publish(world.deps(), 'words', opsChange('other', makeUpserts('o', 1, DIM)));
    await deps.log.append(
      'words',
      {
        changeSet: await deps.changeSets.writeOps('words', 'mine', makeUpserts('m', 1, DIM), DIM),
        label: 'mine',
        runId: 'mine',
      },
      0,
    );
    const before = { opened: world.builder.opened, closed: world.builder.closed };
    await buildUnderLease(deps, always, 'words', prepared);
    expect(world.builder.opened - before.opened).toBe(1); // the new head's copy
    expect(world.builder.closed - before.closed).toBe(2); // the stale prepared copy and the used one
    expect(await live(world)).toEqual(['m-00000', 'o-00000', 's-00000']);
  });

  it('a builder fetches the pending change sets while its copy opens: one deleted once fetched still folds', async () => {
    const world = memoryWorld();
    await publish(world.deps(), 'words', opsChange('seed', makeUpserts('s', 1, DIM)));
    const deps = world.deps();
    for (const name of ['a', 'b'])
      await deps.log.append(
        'words',
        {
          changeSet: await deps.changeSets.writeOps('words', name, makeUpserts(name, 2, DIM), DIM),
          label: name,
          runId: name,
        },
        0,
      );
    const prefetch = world.changeSets.prefetch.bind(world.changeSets);
    const fetched: string[] = [];
    world.changeSets.prefetch = async (keys) => {
      await prefetch(keys);
      fetched.push(...keys);
      await world.changeSets.deleteKeys(keys); // nothing is read from the store after this
    };
    const report = await buildUnderLease(deps, always, 'words');
    expect(fetched).toHaveLength(2);
    expect(report).toMatchObject({ folds: 1, entries: 2 });
    expect(await live(world)).toEqual(['a-00000', 'a-00001', 'b-00000', 'b-00001', 's-00000']);
  });

  it('the prefetch takes ops entries in log order while their records fit its budget', () => {
    const entry = (seq: number, kind: 'ops' | 'messages', records: number) =>
      ({ seq, kind, records, dimension: 1536, changeSet: `cs-${seq}` }) as LogEntry;
    // 1536-d: 6,400 bytes a record with its overhead; 64 MiB hold 10,485
    const keys = withinPrefetchBudget([
      entry(1, 'ops', 6000),
      entry(2, 'messages', 50),
      entry(3, 'ops', 4000),
      entry(4, 'ops', 1000),
      entry(5, 'ops', 1),
    ]);
    expect(keys).toEqual(['cs-1', 'cs-3']);
    expect(PREFETCH_BUDGET_BYTES).toBe(64 * 1024 * 1024);
  });

  it('a waiter notices its publication within WAIT_POLL_MAX_MS of the swap, however long it waited', async () => {
    const clock = new ManualClock();
    const world = memoryWorld({ clock });
    const deps = world.deps();
    const { seq } = (await append(deps, 'late')).entry;
    const builder = (await deps.buildLease.tryHold('words'))!; // someone else is building
    let doneAt: number | undefined;
    const waiting = awaitPublication(deps, 'words', seq).then(() => {
      doneAt = clock.now();
    });
    await clock.advance(30_000, 10); // a long build: the waiter's pauses have grown to their cap
    expect(doneAt).toBeUndefined();
    await buildUnderLease(deps, builder, 'words');
    const swappedAt = clock.now();
    await clock.advance(2 * WAIT_POLL_MAX_MS, 1);
    await waiting;
    expect(doneAt! - swappedAt).toBeLessThanOrEqual(WAIT_POLL_MAX_MS + 1); // +1: time moves in 1 ms steps
    await builder.release();
  });

  it('a waiter reads the pointer alone between looks at the lease, once a second, and still takes over a dead builder', async () => {
    const clock = new ManualClock();
    const world = memoryWorld({ clock });
    const deps = world.deps();
    const { seq } = (await append(deps, 'mine')).entry;
    // A builder that took the lease and died: no heartbeat renews it, so it lapses after one lease.
    expect(await deps.buildLease.tryAcquire('words')).not.toBeNull();
    const looks = { pointer: 0, lease: 0 };
    const read = deps.pointers.read.bind(deps.pointers);
    deps.pointers.read = (collection) => {
      looks.pointer++;
      return read(collection);
    };
    const tryHold = deps.buildLease.tryHold.bind(deps.buildLease);
    deps.buildLease.tryHold = (collection) => {
      looks.lease++;
      return tryHold(collection);
    };
    let done = false;
    const waiting = awaitPublication(deps, 'words', seq).then(() => {
      done = true;
    });
    const leaseMs = 60_000; // memoryWorld's build lease
    await clock.advance(leaseMs - 1000, 5);
    expect(done).toBe(false);
    expect(looks.lease).toBeLessThanOrEqual(Math.ceil((leaseMs - 1000) / LEASE_LOOK_MS) + 1);
    expect(looks.pointer).toBeGreaterThan(((leaseMs - 1000) / WAIT_POLL_MAX_MS) * 0.9);
    await clock.advance(1000 + 2 * LEASE_LOOK_MS, 5);
    await waiting;
    expect(done).toBe(true);
    expect(await live(world)).toEqual(['mine-00000']);
  });
});

describe('group commit', () => {
  async function buildWhileCommitsArrive(every: number, commits: number) {
    const clock = new ManualClock();
    const world = memoryWorld({ clock });
    const deps = world.deps();
    await append(deps, 'a');
    const open = world.builder.open.bind(world.builder);
    let arriving: Promise<void> | undefined;
    world.builder.open = async (base) => {
      const opened = await open(base);
      await append(deps, 'b'); // committed while the copy opened
      arriving = (async () => {
        for (let index = 0; index < commits; index++) {
          await clock.sleep(every);
          await append(deps, `c${index}`);
        }
      })();
      return opened;
    };
    const folded: number[] = []; // entries of each fold, as it starts
    const building = buildUnderLease(
      {
        ...deps,
        onPhase: (phase, detail) => {
          if (phase === 'build' && detail?.applied === 0) folded.push(detail.entries!);
        },
      },
      always,
      'words',
    );
    await clock.advance(GROUP_COMMIT_MAX_MS + commits * every + 100, 1);
    await arriving;
    return { report: await building, folded };
  }

  it('the first fold waits for a pause in arriving commits, so they share one snapshot', async () => {
    const { report, folded } = await buildWhileCommitsArrive(30, 3);
    expect(report).toMatchObject({ folds: 1, entries: 5 });
    expect(folded).toEqual([5]);
  });

  it('commits that never pause hold the first fold back by GROUP_COMMIT_MAX_MS at most', async () => {
    const { report, folded } = await buildWhileCommitsArrive(20, 40);
    expect(report.folds).toBeGreaterThan(1);
    // the first fold took what had arrived within the bound: a and b, and one commit per 20 ms
    expect(folded[0]).toBeLessThanOrEqual(2 + GROUP_COMMIT_MAX_MS / 20 + 1);
    expect(folded[0]).toBeGreaterThan(2);
  });

  it('a fold whose log did not grow while the copy opened does not wait', async () => {
    const clock = new ManualClock();
    const world = memoryWorld({ clock });
    const deps = world.deps();
    await append(deps, 'only');
    // time never moves: a wait would hang this test
    expect(await buildUnderLease(deps, always, 'words')).toMatchObject({ folds: 1, entries: 1 });
    expect(COMMITS_PAUSE_MS).toBeLessThan(GROUP_COMMIT_MAX_MS);
  });
});
