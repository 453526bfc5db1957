import { describe, expect, it } from 'vitest';
import {
  advancedPointer,
  emptyPointer,
  nextPointer,
  type Pointer,
} from '../../../lambdas/core/protocol/pointer.ts';
import { holds, when } from '../../../lambdas/core/protocol/ports.ts';
import { isGarbage, retire } from '../../../lambdas/core/protocol/retention.ts';
import { toExpression } from '../../../lambdas/core/storage/dynamo-item-store.ts';
import { snapshotKey } from '../../../lambdas/core/storage/snapshot-store.ts';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const minutes = (n: number) => n * 60_000;
const retention = { versions: 2, minutes: 60 };

/** A pointer after `count` publishes, one every `everyMs`, starting at T0. */
function published(count: number, everyMs = 1000, keep = retention): Pointer {
  let pointer = emptyPointer('words');
  for (let index = 0; index < count; index++) {
    pointer = nextPointer(
      pointer,
      {
        key: snapshotKey('words', pointer.version + 1, `run-${index}`),
        recordCount: index,
        dimension: 4,
        runId: `run-${index}`,
        seq: index + 1,
        entries: 1,
      },
      keep,
      new Date(T0 + index * everyMs),
    );
  }
  return pointer;
}

describe('the next pointer', () => {
  it('counts versions and revisions, keeps the last versions and remembers those that left, with when', () => {
    const pointer = published(4);
    expect(pointer).toMatchObject({ version: 4, revision: 4, recordCount: 3, dimension: 4, publishedSeq: 4 });
    expect(pointer.history.map((entry) => entry.version)).toEqual([4, 3]);
    expect(pointer.history[0]).toMatchObject({ runId: 'run-3', seq: 4 });
    // versions 1 and 2 left within one minute: one range, stamped with the later time
    expect(pointer.retired).toEqual([{ through: 2, at: new Date(T0 + 3000).toISOString() }]);
  });

  it('a fold that changed nothing moves the revision and the log position, not the version or the snapshot', () => {
    const base = published(2);
    const next = advancedPointer(base, 7, new Date(T0 + minutes(1)));
    expect(next).toMatchObject({
      version: 2,
      revision: 3,
      publishedSeq: 7,
      snapshotKey: base.snapshotKey,
      history: base.history,
    });
    expect(next.writeId).not.toBe(base.writeId);
  });

  it('the pointer stays under 4 KB whatever the history: 600 runs an hour apart, then 2,100 a second apart', () => {
    let pointer = published(600, 3_600_000, { versions: 5, minutes: 60 });
    for (let index = 0; index < 2100; index++) {
      pointer = nextPointer(
        pointer,
        {
          key: snapshotKey('words', pointer.version + 1, `stream-${index}`),
          recordCount: index,
          dimension: 4,
          runId: null,
          seq: pointer.publishedSeq + 10,
          entries: 10,
        },
        { versions: 5, minutes: 60 },
        new Date(T0 + 600 * 3_600_000 + index * 1000),
      );
    }
    expect(JSON.stringify(pointer).length).toBeLessThan(4096);
  });

  it('retired ranges stay bounded: ranges past the floor collapse into one', () => {
    let ranges = retire([], [], new Date(T0), 60);
    for (let minute = 0; minute < 200; minute++) {
      ranges = retire(ranges, [{ version: minute + 1 } as never], new Date(T0 + minutes(minute)), 60);
    }
    expect(ranges.length).toBeLessThanOrEqual(62);
    expect(ranges[ranges.length - 1]!.through).toBe(200);
  });
});

describe('garbage selection', () => {
  const now = T0 + 10_000;
  it('never selects what the pointer names or retains, nor an upload above the current version', () => {
    const pointer = published(5);
    for (const entry of pointer.history) expect(isGarbage(entry.key, pointer, now, 60)).toBe(false);
    expect(isGarbage(snapshotKey('words', 6, 'in-flight'), pointer, now, 60)).toBe(false);
  });

  it('an upload that lost its race (at or below the head, never named) goes at once', () => {
    const pointer = published(5);
    expect(isGarbage(snapshotKey('words', 5, 'loser'), pointer, now, 60)).toBe(true);
    expect(isGarbage(snapshotKey('words', 4, 'loser'), pointer, now, 60)).toBe(true);
  });

  it('a version that left the history is kept until it has been gone for the floor', () => {
    const pointer = published(5);
    const left = snapshotKey('words', 2, 'run-1');
    expect(isGarbage(left, pointer, T0 + minutes(59), 60)).toBe(false);
    expect(isGarbage(left, pointer, T0 + minutes(61), 60)).toBe(true);
    expect(isGarbage(left, pointer, T0 + 10_000, 0)).toBe(true);
  });

  it('keys of another collection, and keys that are not snapshots, are never garbage', () => {
    const pointer = published(3);
    expect(isGarbage(snapshotKey('lines', 1, 'x'), pointer, now, 0)).toBe(false);
    expect(isGarbage('snapshots/words/notes.txt', pointer, now, 0)).toBe(false);
  });
});

describe('conditions', () => {
  const lock = { owner: 'a', fence: 3, expiresAt: 100 };
  it('evaluate as DynamoDB evaluates them', () => {
    expect(holds(when.absent(), undefined)).toBe(true);
    expect(holds(when.absent(), lock)).toBe(false);
    expect(holds(when.equals('owner', 'a'), lock)).toBe(true);
    expect(holds(when.equals('owner', 'a'), undefined)).toBe(false);
    expect(holds(when.missing('owner'), { fence: 1 })).toBe(true);
    expect(holds(when.lessThan('expiresAt', 101), lock)).toBe(true);
    expect(holds(when.lessThan('expiresAt', 100), lock)).toBe(false);
    expect(
      holds(
        when.and(when.equals('fence', 3), when.or(when.missing('owner'), when.lessThan('expiresAt', 200))),
        lock,
      ),
    ).toBe(true);
  });

  it('translate into one ConditionExpression with placeholders', () => {
    expect(
      toExpression(
        when.and(when.equals('fence', 3), when.or(when.missing('owner'), when.lessThan('expiresAt', 9))),
      ),
    ).toEqual({
      ConditionExpression: '(#fence = :v0 AND (attribute_not_exists(#owner) OR #expiresAt < :v1))',
      ExpressionAttributeNames: { '#fence': 'fence', '#owner': 'owner', '#expiresAt': 'expiresAt' },
      ExpressionAttributeValues: { ':v0': 3, ':v1': 9 },
    });
    expect(toExpression(when.absent())).toEqual({
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': 'pk' },
    });
  });
});
