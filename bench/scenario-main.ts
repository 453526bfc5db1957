/**
 * One benchmark scenario in a process of its own, on local services of its own: `embedflow bench`
 * starts one per scenario, so none measures in a heap and a page cache the scenarios before it
 * grew (as the last of the full bench, a whole run measured 1.33-1.36x a plain upsert, against
 * 1.26-1.31x alone, and stream alone 105-117 msg/s against 150-157).
 * Usage: bench-scenario NAME [--quick]. Progress goes to stderr; prints one JSON line, its rows.
 */
import { withBenchContext } from './harness.ts';
import type { ScenarioName } from './scenario-names.ts';
import { SCENARIOS } from './scenarios.ts';

const [name, ...flags] = process.argv.slice(2) as [ScenarioName, ...string[]];
const scenario = SCENARIOS[name];
if (!scenario) {
  process.stderr.write(`bench-scenario: unknown scenario "${name}"\n`);
  process.exit(2);
}
const rows = await withBenchContext(flags.includes('--quick'), scenario);
process.stdout.write(`${JSON.stringify(rows)}\n`, () => process.exit(0));
