import { type PublishResult, publish } from '../lambdas/core/protocol/publish.ts';
import { opsChange } from '../lambdas/core/records/changes.ts';
import { publishDeps } from '../lambdas/core/runtime.ts';
import { makeUpserts } from '../local/synthetic-records.ts';
import { type BenchContext, percentile, round, type ScenarioResult, timed } from './harness.ts';

/**
 * Scenarios 1 and 2: the publish protocol under concurrent writers on one collection, two-phase
 * against single-phase, on identical seeded snapshots.
 */
const STRATEGIES = ['two-phase', 'single-phase'] as const;

export async function seed(context: BenchContext, collection: string, records: number, dimension: number) {
  const rt = context.runtime();
  // Seed in slices so a 50k snapshot is built the way a collection grows: run after run.
  const slice = 10_000;
  for (let start = 0; start < records; start += slice) {
    const ops = makeUpserts(`seed${start}`, Math.min(slice, records - start), dimension, start + 1);
    await publish(publishDeps(rt), collection, opsChange(`seed-${start}`, ops));
  }
}

async function concurrentPublishes(
  context: BenchContext,
  collection: string,
  strategy: string,
  writers: number,
  recordsEach: number,
  dimension: number,
  maxCasRetries: string,
) {
  const rt = context.runtime({
    LOCK_STRATEGY: strategy,
    MAX_CAS_RETRIES: maxCasRetries,
    LOCK_WAIT_SECONDS: '600',
  });
  const { value: outcomes, ms } = await timed(() =>
    Promise.allSettled(
      Array.from({ length: writers }, (_, index) =>
        publish(
          publishDeps(rt),
          collection,
          opsChange(
            `w${writers}-${index}-${strategy}`,
            makeUpserts(`${strategy}-${writers}-${index}`, recordsEach, dimension, 1000 + index),
          ),
        ),
      ),
    ),
  );
  const results = outcomes
    .filter((o): o is PromiseFulfilledResult<PublishResult> => o.status === 'fulfilled')
    .map((o) => o.value);
  return { results, failures: outcomes.length - results.length, ms };
}

export async function lockHoldBySnapshotSize(context: BenchContext): Promise<ScenarioResult[]> {
  const sizes = context.quick ? [1_000, 5_000] : [1_000, 10_000, 20_000, 50_000];
  const dimension = context.quick ? 64 : 128;
  const writers = 8;
  const rows: ScenarioResult[] = [];
  for (const size of sizes) {
    for (const strategy of STRATEGIES) {
      const collection = `lockhold-${size}-${strategy}`;
      context.log(`lock hold: seeding ${size} records (${strategy})`);
      await seed(context, collection, size, dimension);
      context.log(`lock hold: ${writers} concurrent publishers on ${size} records, ${strategy}`);
      const { results, failures, ms } = await concurrentPublishes(
        context,
        collection,
        strategy,
        writers,
        50,
        dimension,
        '20',
      );
      const holds = results.map((r) => r.lockHoldMs);
      const longest = results.map((r) => r.maxLockHoldMs);
      rows.push({
        name: 'lock-hold',
        variant: strategy,
        params: { snapshotRecords: size, writers, recordsPerPublish: 50, dimension },
        metrics: {
          lockHoldP50Ms: round(percentile(holds, 50)),
          lockHoldP99Ms: round(percentile(holds, 99)),
          longestSingleHoldP99Ms: round(percentile(longest, 99)),
          lockAcquireP50Ms: round(
            percentile(
              results.map((r) => r.lockAcquireMs),
              50,
            ),
          ),
          lockAcquireP99Ms: round(
            percentile(
              results.map((r) => r.lockAcquireMs),
              99,
            ),
          ),
          publishP50Ms: round(
            percentile(
              results.map((r) => r.publishMs),
              50,
            ),
          ),
          publishP99Ms: round(
            percentile(
              results.map((r) => r.publishMs),
              99,
            ),
          ),
          totalMs: round(ms),
          casRetries: results.reduce((sum, r) => sum + r.casRetries, 0),
          failures,
        },
      });
    }
  }
  return rows;
}

export async function contention(context: BenchContext): Promise<ScenarioResult[]> {
  const dimension = 64;
  const recordsEach = context.quick ? 100 : 500;
  const base = context.quick ? 1_000 : 5_000;
  const rows: ScenarioResult[] = [];
  for (const strategy of STRATEGIES) {
    for (const writers of [1, 2, 4, 8]) {
      const collection = `contention-${strategy}-${writers}`;
      await seed(context, collection, base, dimension);
      context.log(`contention: ${writers} concurrent runs, ${strategy}`);
      // The default MAX_CAS_RETRIES: conflicts beyond it fail (the workflow would retry FinalMerge).
      const { results, failures, ms } = await concurrentPublishes(
        context,
        collection,
        strategy,
        writers,
        recordsEach,
        dimension,
        '3',
      );
      rows.push({
        name: 'contention',
        variant: strategy,
        params: { writers, recordsPerRun: recordsEach, snapshotRecords: base, dimension },
        metrics: {
          recordsPerSecond: round((results.length * recordsEach) / (ms / 1000), 1),
          totalMs: round(ms),
          lockCollisions: results.reduce((sum, r) => sum + r.lockCollisions, 0),
          casRebases: results.reduce((sum, r) => sum + r.casRetries, 0),
          failures,
          lockHoldP99Ms: round(
            percentile(
              results.map((r) => r.maxLockHoldMs),
              99,
            ),
          ),
        },
      });
    }
  }
  return rows;
}
