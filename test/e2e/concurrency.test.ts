import { describe, expect, it } from 'vitest';
import { useCliDataDir } from '../helpers/cli.ts';
import { deltaFiles, writeInputDir } from '../helpers/input-dir.ts';

const { cli } = useCliDataDir('conc');
const DIM = 8;

describe('runs that race and runs that are large', () => {
  it('two concurrent run --input processes on one collection both succeed with no lost id', async () => {
    const [first, second] = await Promise.all([
      writeInputDir(deltaFiles('lines', 'left', 4, 10, DIM)),
      writeInputDir(deltaFiles('lines', 'right', 4, 10, DIM)),
    ]);
    const results = await Promise.all([
      cli(['run', '--input', first, '--json']),
      cli(['run', '--input', second, '--json']),
    ]);
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    // both commit to the log; one publication may fold both
    const entries = results.map((result) => result.json.collections.lines.logSeq).sort();
    expect(entries).toEqual([1, 2]);
    const snapshots = await cli(['snapshots', 'list', '--collection', 'lines', '--json']);
    expect(snapshots.json.snapshots[0]).toMatchObject({ recordCount: 80 });
    expect(snapshots.json.current).toBe(
      Math.max(...results.map((result) => result.json.collections.lines.snapshotVersion)),
    );
    for (const id of ['left-d0003-00009', 'right-d0003-00009', 'left-d0000-00000', 'right-d0000-00000']) {
      const found = await cli(['query', '--collection', 'lines', '--vector-of', id, '-k', '1', '--json']);
      expect(found.json.results[0].id).toBe(id);
    }
  });

  it('two concurrent runs of one --run-id with different inputs: one runs, the other is refused', async () => {
    const [first, second] = await Promise.all([
      writeInputDir(deltaFiles('contested', 'first', 40, 5, DIM)),
      writeInputDir(deltaFiles('contested', 'second', 40, 5, DIM)),
    ]);
    const results = await Promise.all([
      cli(['run', '--input', first, '--run-id', 'contested', '--json']),
      cli(['run', '--input', second, '--run-id', 'contested', '--json']),
    ]);
    const ran = results.filter((r) => r.json.status === 'SUCCEEDED' && !r.json.alreadyApplied);
    expect(ran, results.map((r) => r.stderr).join('\n')).toHaveLength(1);
    const refused = results.find((r) => r !== ran[0])!;
    // Refused while the other ran (exit 2), or found it applied if it came late (exit 0): never run.
    if (refused.json.status === 'ALREADY_RUNNING') {
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/run contested is already running as execution contested/);
    } else expect(refused.json).toMatchObject({ status: 'SUCCEEDED', alreadyApplied: true });
    const snapshots = await cli(['snapshots', 'list', '--collection', 'contested', '--json']);
    expect(snapshots.json.snapshots.filter((s: { runId: string }) => s.runId === 'contested')).toHaveLength(
      1,
    );
    // Only the winner's input was applied: the two inputs were not merged.
    const winner = ran[0] === results[0] ? 'first' : 'second';
    const loser = winner === 'first' ? 'second' : 'first';
    for (const [prefix, found] of [
      [winner, true],
      [loser, false],
    ] as const) {
      const id = `${prefix}-d0039-00004`;
      const hit = await cli(['query', '--collection', 'contested', '--vector-of', id, '-k', '1', '--json']);
      expect(hit.json.results?.[0]?.id === id, `${id} in the snapshot`).toBe(found);
    }
  });

  it('no cap drops deltas: a run of 1,000 deltas publishes every record', async () => {
    const input = await writeInputDir(deltaFiles('words', 'bulk', 1000, 2, DIM));
    const result = await cli(['run', '--input', input, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json.collections.words).toMatchObject({
      deltas: 1000,
      records: 2000,
      chunks: 67,
      intermediateMerges: 4,
      recordCount: 2000,
    });
  });
});
