import { InvalidArgumentError } from 'commander';

/**
 * The benchmark's scenario names as `--only` takes them (the `name` of the rows each produces).
 * Apart from the scenarios themselves, so the CLI checks `--only` without loading the benchmark.
 */
export const SCENARIO_NAMES = [
  'lock-hold',
  'contention',
  'merge-pipeline',
  'overhead',
  'chunk-sweep',
  'stream',
] as const;

export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** `--only a,b`: scenario names, each checked against the known ones. */
export function parseScenarioNames(value: string): ScenarioName[] {
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(SCENARIO_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new InvalidArgumentError(
      `unknown scenario "${unknown.join(', ')}": choose from ${SCENARIO_NAMES.join(', ')}`,
    );
  }
  return names as ScenarioName[];
}
