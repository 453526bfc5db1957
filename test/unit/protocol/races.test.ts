import { describe, expect, it } from 'vitest';
import { type PublishDeps, type PublishResult, publish } from '../../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../../lambdas/core/records/changes.ts';
import { FastClock } from '../../helpers/memory/clocks.ts';
import { randomFaults } from '../../helpers/memory/memory-item-store.ts';
import { memoryWorld } from '../../helpers/memory/memory-runtime.ts';
import { seededRandom } from '../../helpers/memory/random.ts';
import { makeUpserts } from '../../helpers/records.ts';

/**
 * The race suite: many concurrent publishers on one collection, each interleaving chosen by a seed
 * (every store call yields the event loop a random number of times), with lost responses,
 * throttling and clock skew (some publishers 10 minutes fast or slow). After each race the stored
 * state must show no lost update: every run's records in the live snapshot, one version per run,
 * every retained object present. The negative control runs the same races against a pointer
 * whose swap has no condition, and the suite must catch it.
 */
const RETRYABLE = new Set([
  'LockBusyError',
  'CasConflictError',
  'LeaseLostError',
  'StoreUnavailableError',
  'PublicationPendingError',
]);
const DIM = 4;

/** What Step Functions does with a retryable failure: run the task again. */
async function withRetries(run: () => Promise<PublishResult>): Promise<PublishResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!RETRYABLE.has((error as Error).name) || attempt >= 20) throw error;
    }
  }
}

interface Race {
  seed: number;
  writers?: number;
  strategy?: PublishDeps['config']['lockStrategy'];
  /** Keys whose writes lose their condition: the negative controls. */
  unconditional?: RegExp;
}

async function race({ seed, writers = 6, strategy = 'two-phase', unconditional }: Race) {
  const random = seededRandom(seed);
  const clock = new FastClock(1000);
  const world = memoryWorld({ random, clock });
  world.items.faults = randomFaults(random, { lost: 0.08, 'lost-retried': 0.08, throttled: 0.05 });
  if (unconditional) world.items.unconditionalKeys = unconditional;
  const skews = [0, 600_000, -600_000];
  const deps = (index: number) =>
    world.deps({ clock: clock.skewed(skews[index % skews.length]!), config: { lockStrategy: strategy } });
  // Every run writes its own ids and the shared id "last": a later log entry wins it.
  const runs = Array.from({ length: writers }, (_, index) => ({
    runId: `run-${index}`,
    ops: [...makeUpserts(`w${index}`, 2, DIM, seed * 100 + index), ...makeUpserts('shared', 1, DIM, index)],
  }));
  const settled = await Promise.allSettled(
    runs.map((run, index) => withRetries(() => publish(deps(index), 'words', opsChange(run.runId, run.ops)))),
  );
  const violations: string[] = [];
  const results: PublishResult[] = [];
  settled.forEach((outcome, index) => {
    if (outcome.status === 'fulfilled') results.push(outcome.value);
    else violations.push(`seed ${seed}: ${runs[index]!.runId} failed: ${(outcome.reason as Error).message}`);
  });
  const pointer = await world.deps().pointers.read('words');
  if (pointer.snapshotKey && !world.snapshots.objects.has(pointer.snapshotKey)) {
    violations.push(`seed ${seed}: the pointer names ${pointer.snapshotKey}, which was lost`);
    return { violations, faults: world.items.stats.faults };
  }
  const live = pointer.snapshotKey ? world.snapshots.read(pointer.snapshotKey) : new Map();
  for (const run of runs) {
    const missing = run.ops
      .filter((op) => !op.id.startsWith('shared') && !live.has(op.id))
      .map((op) => op.id);
    if (missing.length > 0)
      violations.push(`seed ${seed}: ${run.runId} lost (${missing.join(', ')} missing)`);
  }
  const pending = await world.deps().log.pending('words', pointer.publishedSeq);
  if (pending.length > 0)
    violations.push(`seed ${seed}: ${pending.length} committed entries never published`);
  if (pointer.recordCount !== live.size) {
    violations.push(`seed ${seed}: pointer says ${pointer.recordCount}, snapshot holds ${live.size}`);
  }
  for (const entry of pointer.history) {
    if (!world.snapshots.objects.has(entry.key))
      violations.push(`seed ${seed}: retained ${entry.key} was deleted`);
  }
  // The shared id holds the record of the run whose first entry came last in the log (a retry may
  // have appended a duplicate later: a run applies at the first entry that carries it).
  const firstEntry = new Map<string, number>();
  for (const entry of await world.deps().log.pending('words', 0)) {
    if (entry.runId && !firstEntry.has(entry.runId)) firstEntry.set(entry.runId, entry.seq);
  }
  const lastRun = [...firstEntry].sort((a, b) => b[1] - a[1])[0]?.[0];
  const shared = runs.find((run) => run.runId === lastRun)?.ops.find((op) => op.id.startsWith('shared'));
  const stored = shared ? live.get(shared.id) : undefined;
  if (shared?.op === 'upsert' && stored && stored.embedding[0] !== shared.embedding[0]) {
    violations.push(`seed ${seed}: the shared id does not hold the last entry's record (${lastRun})`);
  }
  // Exactly once: every run re-driven changes nothing.
  for (const [index, run] of runs.entries()) {
    const again = await withRetries(() =>
      publish(deps(index), 'words', opsChange(run.runId, makeUpserts('zz', 1, DIM))),
    );
    if (again.status !== 'already-applied') violations.push(`seed ${seed}: ${run.runId} applied twice`);
  }
  return { violations, faults: world.items.stats.faults };
}

const SEEDS = Array.from({ length: 60 }, (_, index) => index + 1);

describe.each(['two-phase', 'single-phase'] as const)('races: %s', (strategy) => {
  it(`${SEEDS.length} seeded races of 6 publishers with lost responses, throttling and skewed clocks lose nothing`, async () => {
    const outcomes = await Promise.all(SEEDS.map((seed) => race({ seed, strategy })));
    expect(outcomes.flatMap((outcome) => outcome.violations)).toEqual([]);
    const faults = outcomes.reduce(
      (sum, outcome) => sum + outcome.faults.lost + outcome.faults['lost-retried'],
      0,
    );
    expect(faults).toBeGreaterThan(SEEDS.length);
  });
});

describe('the lease only saves work', () => {
  it('with every builder let in at once (no lease at all), the pointer condition alone loses nothing', async () => {
    const outcomes = await Promise.all(
      SEEDS.slice(0, 20).map((seed) => race({ seed, unconditional: /^build-/ })),
    );
    expect(outcomes.flatMap((outcome) => outcome.violations)).toEqual([]);
  });
});

describe('negative controls: the suite catches a protocol without its safety conditions', () => {
  it.each([
    ['log appends without attribute_not_exists (two commits share a sequence number)', /^log#/],
    [
      'pointer swaps without their revision check, with every builder let in (no lease)',
      /^(pointer#|build-)/,
    ],
  ])('%s', async (_name, keys) => {
    const outcomes = await Promise.all(SEEDS.slice(0, 20).map((seed) => race({ seed, unconditional: keys })));
    const caught = outcomes.filter((outcome) => outcome.violations.length > 0);
    expect(caught.length).toBeGreaterThanOrEqual(5);
  });
});
