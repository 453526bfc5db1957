export { seededRandom } from '../../../local/synthetic-records.ts';

/** Yields the event loop 0..max times, so concurrent tasks interleave differently per seed. */
export async function jitter(random: () => number, max = 3): Promise<void> {
  const turns = Math.floor(random() * (max + 1));
  for (let turn = 0; turn < turns; turn++) await new Promise((resolve) => setImmediate(resolve));
}
