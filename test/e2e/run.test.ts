import { describe, expect, it } from 'vitest';
import { ensureStack } from '../../cli/stack.ts';
import { systemClock } from '../../lambdas/core/protocol/ports.ts';
import { publish } from '../../lambdas/core/protocol/publish.ts';
import { opsChange } from '../../lambdas/core/records/changes.ts';
import { createRuntime, publishDeps } from '../../lambdas/core/runtime.ts';
import { useCliDataDir } from '../helpers/cli.ts';
import { deltaFiles, writeInputDir } from '../helpers/input-dir.ts';
import { makeUpserts } from '../helpers/records.ts';

/** The workflow end to end through the real CLI, on a local stack in a temp data directory. */
const data = useCliDataDir('e2e');
const { cli } = data;
const dataDir = () => data.dataDir;
// Small records keep the demo fast; delta and chunk counts are the defaults of CONTRACT.md.
const SMALL = ['--records-per-delta', '4', '--dim', '16'];

describe('run --demo', () => {
  it('uses the default chunk sizes: 60 words deltas in 4 chunks, 40 lines deltas in 2, and records every state', async () => {
    const result = await cli(['run', '--demo', ...SMALL, '--run-id', 'demo-defaults', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ runId: 'demo-defaults', status: 'SUCCEEDED' });
    expect(result.json.collections.words).toMatchObject({
      deltas: 60,
      records: 240,
      chunkSize: 15,
      chunks: 4,
      groupSize: 20,
      intermediateMerges: 0,
      shortCircuit: false,
      previousVersion: 0,
      snapshotVersion: 1,
      recordCount: 240,
      casRetries: 0,
    });
    expect(result.json.collections.lines).toMatchObject({
      deltas: 40,
      chunkSize: 25,
      chunks: 2,
      recordCount: 160,
    });
    expect(result.json.collections.words.lockHoldMs).toBe(0); // a commit waits behind no lock
    expect(result.json.collections.words.commitMs).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/words: chunks 4\/4|words .*4\/4/);

    const history = await cli(['executions', 'show', result.json.executionId, '--json']);
    expect(history.code).toBe(0);
    const entered = new Set(
      history.json.events
        .filter((e: { type: string }) => e.type.endsWith('Entered'))
        .map((e: { stateName: string }) => e.stateName),
    );
    for (const state of [
      'ReadRunManifest',
      'PrepareCollections',
      'SplitIntoChunks',
      'ProcessChunks',
      'ProcessChunk',
      'SingleChunk?',
      'GroupSegments',
      'MoreThanOneGroup?',
      'PublishCollections',
      'FinalMerge',
      'Cleanup',
    ]) {
      expect(entered, state).toContain(state);
    }
    expect(history.json.events[0].type).toBe('ExecutionStarted');
    expect(history.json.events.at(-1).type).toBe('ExecutionSucceeded');

    const list = await cli(['executions', 'list', '--json']);
    expect(list.json.executions.map((e: { executionId: string }) => e.executionId)).toContain(
      result.json.executionId,
    );
  });

  it('re-running the same --run-id changes nothing', async () => {
    const again = await cli(['run', '--demo', ...SMALL, '--run-id', 'demo-defaults', '--json']);
    expect(again.code, again.stderr).toBe(0);
    // Named by its run id, the execution that applied it is found: nothing runs again.
    expect(again.json).toMatchObject({
      executionId: 'demo-defaults',
      status: 'SUCCEEDED',
      alreadyApplied: true,
    });
    expect(again.json.collections.words).toMatchObject({ status: 'already-applied' });
    expect(again.json.collections.words).toMatchObject({ snapshotVersion: 1, recordCount: 240 });
    const snapshots = await cli(['snapshots', 'list', '--collection', 'words', '--json']);
    expect(snapshots.json).toMatchObject({ collection: 'words', current: 1 });
    expect(snapshots.json.snapshots).toHaveLength(1);
  });

  it('CHUNK_SIZE_WORDS=7 with GROUP_SIZE=3 merges hierarchically and loses nothing', async () => {
    const result = await cli(['run', '--demo', ...SMALL, '--lines-deltas', '0', '--seed', '7', '--json'], {
      CHUNK_SIZE_WORDS: '7',
      GROUP_SIZE: '3',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.json.collections.words).toMatchObject({
      chunks: 9,
      chunkSize: 7,
      groupSize: 3,
      intermediateMerges: 3,
      shortCircuit: false,
      records: 240,
      recordCount: 240,
    });
    expect(result.json.collections.lines).toBeUndefined();
  });

  it('several levels of merges: 30 chunks in groups of 3 take 10 + 4 + 2 merges', async () => {
    // Its own collection, so the published count is this run's alone, whatever ran before.
    const input = await writeInputDir(deltaFiles('levels', 'level', 30, 4, 16));
    const result = await cli(['run', '--input', input, '--json'], { CHUNK_SIZE: '1', GROUP_SIZE: '3' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.json.collections.levels).toMatchObject({
      chunks: 30,
      intermediateMerges: 16,
      records: 120,
      recordCount: 120,
    });
  });

  it('one chunk short-circuits the merge', async () => {
    const result = await cli([
      'run',
      '--demo',
      ...SMALL,
      '--words-deltas',
      '3',
      '--lines-deltas',
      '2',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json.collections.words).toMatchObject({
      chunks: 1,
      shortCircuit: true,
      intermediateMerges: 0,
    });
    expect(result.json.collections.lines).toMatchObject({ chunks: 1, shortCircuit: true });
  });

  it('query finds a demo record by its own vector and by text', async () => {
    const byVector = await cli([
      'query',
      '--collection',
      'lines',
      '--vector-of',
      'receipt-00000#line-01',
      '-k',
      '3',
      '--json',
    ]);
    expect(byVector.code, byVector.stderr).toBe(0);
    expect(byVector.json.results[0].id).toBe('receipt-00000#line-01');
    const byText = await cli(['query', '--collection', 'lines', '--text', 'CORNER MARKET receipt', '--json']);
    expect(byText.code, byText.stderr).toBe(0);
    expect(byText.json.results[0].document).toMatch(/CORNER MARKET/);
  });
});

describe('change sets', () => {
  it("a run's change set is its copied segments and their presence, and they go once published and past the grace", async () => {
    const input = await writeInputDir(deltaFiles('changesets', 'cs', 20, 3, 8));
    const run = await cli(['run', '--input', input, '--run-id', 'cs-1', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json.collections.changesets).toMatchObject({ chunks: 2, recordCount: 60 });
    const { env } = await ensureStack(dataDir());
    const rt = createRuntime({ ...env, POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
    const stored = (await rt.changeSets.list('changesets')).map((object) => object.key);
    expect(stored.filter((key) => key.endsWith('.segments.json'))).toHaveLength(1);
    expect(stored.filter((key) => /\/part-\d+\.arrow$/.test(key))).toHaveLength(2);
    // Its presence (the chunk segments' combined) lets a stream commit check updates against it unread.
    const manifest = stored.find((key) => key.endsWith('.segments.json'))!;
    expect(stored).toContain(`${manifest}.ids.json.gz`);
    const presence = await rt.changeSets.presence(manifest);
    expect(presence?.size).toBe(60);
    expect([...presence!.values()].every((present) => present)).toBe(true);

    // Two hours later (past the hour's grace), the next publication removes the manifest and its parts.
    const later = createRuntime(
      { ...env, POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
      { ...systemClock, now: () => Date.now() + 2 * 3_600_000 },
    );
    const next = await publish(
      publishDeps(later),
      'changesets',
      opsChange('cs-2', makeUpserts('cs-2', 2, 8)),
    );
    expect(next).toMatchObject({ status: 'published', recordCount: 62 });
    expect(await rt.changeSets.list('changesets')).toEqual([]);
  });
});
