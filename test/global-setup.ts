import { buildDist } from '../scripts/build.ts';

/** The CLI under test is dist/embedflow.js, built once per test run from the sources under test. */
export default async function setup(): Promise<void> {
  await buildDist();
}
