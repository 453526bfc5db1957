import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldAndSort } from '../../lambdas/core/records/changes.ts';
import type { RecordOp } from '../../lambdas/core/records/records.ts';
import {
  commonDimension,
  mergeSortedStreams,
  openSegment,
  writeSegmentFile,
} from '../../lambdas/core/records/segments.ts';
import { makeUpserts } from '../helpers/records.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'segments-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function roundTrip(name: string, ops: RecordOp[], dimension: number | null) {
  const path = join(dir, name);
  const info = await writeSegmentFile(path, foldAndSort(ops), dimension);
  const segment = await openSegment(createReadStream(path));
  const rows: RecordOp[] = [];
  for await (const row of segment.rows) rows.push(row);
  return { info, segment, rows };
}

describe('segments', () => {
  it('round-trips upserts, tombstones and updates through Arrow IPC, sorted by id', async () => {
    const upserts = makeUpserts('x', 3000, 4);
    const ops: RecordOp[] = [
      ...upserts.reverse(),
      { op: 'delete', id: 'gone' },
      { op: 'update', id: 'meta', metadata: { label: 'total' } },
    ];
    const { info, segment, rows } = await roundTrip('a.arrow', ops, 4);
    expect(info).toMatchObject({ records: 3002, dimension: 4 });
    // presence: upserts present, the tombstone absent, the update changes none
    expect(info.presence.size).toBe(3001);
    expect(info.presence.get('gone')).toBe(false);
    expect(info.presence.get('x-01234')).toBe(true);
    expect(info.presence.has('meta')).toBe(false);
    expect(segment.dimension).toBe(4);
    expect(rows.map((row) => row.id)).toEqual([...rows.map((row) => row.id)].sort());
    const original = upserts.find((op) => op.id === 'x-01234')!;
    const read = rows.find((row) => row.id === 'x-01234')!;
    expect(read).toEqual(original);
    expect(rows.find((row) => row.id === 'gone')).toEqual({ op: 'delete', id: 'gone' });
    expect(rows.find((row) => row.id === 'meta')).toEqual({
      op: 'update',
      id: 'meta',
      metadata: { label: 'total' },
    });
  });

  it('merges segments last-write-wins in segment order, folding metadata updates', async () => {
    const [a1, a2] = makeUpserts('a', 2, 2, 1);
    const [b1] = makeUpserts('a', 1, 2, 2);
    const first = await roundTrip('m1.arrow', [a1!, a2!], 2);
    const second = await roundTrip('m2.arrow', [b1!, { op: 'delete', id: 'a-00001' }], 2);
    const third = await roundTrip(
      'm3.arrow',
      [{ op: 'update', id: 'a-00000', metadata: { tag: 'late' } }],
      null,
    );
    async function* iterate(rows: RecordOp[]) {
      yield* rows;
    }
    const merged: RecordOp[] = [];
    for await (const row of mergeSortedStreams([
      iterate(first.rows),
      iterate(second.rows),
      iterate(third.rows),
    ])) {
      merged.push(row);
    }
    expect(merged).toHaveLength(2);
    expect(merged[0]).toMatchObject({
      op: 'upsert',
      id: 'a-00000',
      metadata: { source: 'a', index: 0, tag: 'late' },
    });
    expect((merged[0] as { embedding: Float32Array }).embedding).toEqual(
      (b1 as { embedding: Float32Array }).embedding,
    );
    expect(merged[1]).toEqual({ op: 'delete', id: 'a-00001' });
  });

  it('names the segment whose dimension disagrees', () => {
    expect(() =>
      commonDimension([
        { key: 's/1', dimension: 4 },
        { key: 's/2', dimension: null },
        { key: 's/3', dimension: 5 },
      ]),
    ).toThrow('segment s/3 has dimension 5, but s/1 has dimension 4');
  });
});
