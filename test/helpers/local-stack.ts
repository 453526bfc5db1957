import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { idsKeyOf, isSnapshotArchive } from '../../lambdas/core/protocol/ports.ts';
import { createRuntime, type Runtime } from '../../lambdas/core/runtime.ts';
import { type LocalServices, startLocalServices } from '../../local/services.ts';

/**
 * Real local services for one test file: started in a temp dir on ephemeral ports, stopped and
 * removed at the end. `runtime(overrides)` wires core against them with extra env (config).
 */
export interface TestStack {
  services: LocalServices;
  dir: string;
  env(overrides?: Record<string, string>): Record<string, string>;
  runtime(overrides?: Record<string, string>): Runtime;
  stop(): Promise<void>;
}

export async function startTestStack(): Promise<TestStack> {
  const dir = await mkdtemp(join(tmpdir(), 'embedflow-test-'));
  const services = await startLocalServices({ dataDir: dir });
  const env = (overrides: Record<string, string> = {}) => ({
    ...services.env,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...overrides,
  });
  return {
    services,
    dir,
    env,
    runtime: (overrides) => createRuntime(env(overrides)),
    async stop() {
      await services.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let counter = 0;
/** A collection name no other test in the file uses. */
export function uniqueCollection(prefix = 'col'): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}`;
}

/**
 * The snapshot archives stored for a collection, each checked to have its id list beside it and
 * no id list left without its archive (cleanup removes both together).
 */
export async function storedSnapshots(rt: Runtime, collection: string): Promise<string[]> {
  const listed = await rt.snapshots.listKeys(collection);
  const tars = listed.filter(isSnapshotArchive);
  const idLists = listed.filter((key) => key.endsWith('.ids.gz'));
  const expected = tars.map(idsKeyOf);
  if (JSON.stringify(idLists.sort()) !== JSON.stringify(expected.sort()))
    throw new Error(`snapshots and id lists disagree for ${collection}: ${JSON.stringify(listed)}`);
  return tars.sort();
}
