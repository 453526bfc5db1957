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
const RETRYABLE = new Set(['LockBusyError', 'CasConflictError', 'LeaseLostError', 'StoreUnavailableError']);
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
  finalRebaseLocked?: boolean;
  unconditional?: boolean;
}

async function race({
  seed,
  writers = 6,
  strategy = 'two-phase',
  finalRebaseLocked = true,
  unconditional = false,
}: Race) {
  const random = seededRandom(seed);
  const clock = new FastClock(1000);
  const world = memoryWorld({ random, clock });
  world.items.faults = randomFaults(random, { lost: 0.08, 'lost-retried': 0.08, throttled: 0.05 });
  if (unconditional) world.items.unconditionalKeys = /^pointer#/;
  const skews = [0, 600_000, -600_000];
  const runs = Array.from({ length: writers }, (_, index) => ({
    runId: `run-${index}`,
    ops: makeUpserts(`w${index}`, 2, DIM, seed * 100 + index),
  }));
  const settled = await Promise.allSettled(
    runs.map((run, index) =>
      withRetries(() =>
        publish(
          world.deps({
            clock: clock.skewed(skews[index % skews.length]!),
            config: { lockStrategy: strategy, finalRebaseLocked, maxCasRetries: 2 },
          }),
          'words',
          opsChange(run.runId, run.ops),
        ),
      ),
    ),
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
    const missing = run.ops.filter((op) => !live.has(op.id)).map((op) => op.id);
    if (missing.length > 0)
      violations.push(`seed ${seed}: ${run.runId} lost (${missing.join(', ')} missing)`);
  }
  if (pointer.version !== writers)
    violations.push(`seed ${seed}: ${writers} runs but version ${pointer.version}`);
  if (pointer.recordCount !== live.size)
    violations.push(`seed ${seed}: pointer says ${pointer.recordCount}, snapshot holds ${live.size}`);
  for (const entry of pointer.history) {
    if (!world.snapshots.objects.has(entry.key))
      violations.push(`seed ${seed}: retained ${entry.key} was deleted`);
  }
  const versions = results
    .filter((result) => result.status === 'published')
    .map((result) => result.snapshotVersion);
  if (new Set(versions).size !== versions.length)
    violations.push(`seed ${seed}: two publishes claim one version`);
  return { violations, faults: world.items.stats.faults };
}

const SEEDS = Array.from({ length: 60 }, (_, index) => index + 1);

describe.each([
  { strategy: 'two-phase' as const, finalRebaseLocked: true },
  { strategy: 'two-phase' as const, finalRebaseLocked: false },
  { strategy: 'single-phase' as const, finalRebaseLocked: true },
])('races: $strategy (final rebase locked: $finalRebaseLocked)', (options) => {
  it(`${SEEDS.length} seeded races of 6 publishers with lost responses, throttling and skewed clocks lose nothing`, async () => {
    const outcomes = await Promise.all(SEEDS.map((seed) => race({ seed, ...options })));
    expect(outcomes.flatMap((outcome) => outcome.violations)).toEqual([]);
    const faults = outcomes.reduce(
      (sum, outcome) => sum + outcome.faults.lost + outcome.faults['lost-retried'],
      0,
    );
    expect(faults).toBeGreaterThan(SEEDS.length);
  });
});

describe('negative control', () => {
  it('the same races against a pointer swap without its condition are caught losing updates', async () => {
    const outcomes = await Promise.all(SEEDS.slice(0, 20).map((seed) => race({ seed, unconditional: true })));
    const caught = outcomes.filter((outcome) =>
      outcome.violations.some((violation) => violation.includes('lost')),
    );
    expect(caught.length).toBeGreaterThan(0);
  });
});
