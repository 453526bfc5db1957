import { gunzipSync, gzipSync } from 'node:zlib';
import type { RecordOp } from './records.ts';

/**
 * Which ids a change leaves present (it upserts them) or absent (it deletes them); updates change
 * no presence. Written once beside a segment or an ops change set, so a stream commit can check
 * its updateMetadata messages against a pending run's entry without reading the run's records.
 */
export type Presence = ReadonlyMap<string, boolean>;

/** Where a segment's (or an ops change set's) presence is stored: beside it. */
export const presenceKeyOf = (objectKey: string) => `${objectKey}.ids.json.gz`;

/** Collects presence from ops as they stream past (later ops for the same id win). */
export class PresenceRecorder {
  readonly presence = new Map<string, boolean>();

  note(op: RecordOp): void {
    if (op.op === 'upsert') this.presence.set(op.id, true);
    else if (op.op === 'delete') this.presence.set(op.id, false);
  }
}

/** The presence of ops already in hand. */
export function presenceOfOps(ops: Iterable<RecordOp>): Presence {
  const recorder = new PresenceRecorder();
  for (const op of ops) recorder.note(op);
  return recorder.presence;
}

export function encodePresence(presence: Presence): Buffer {
  const present: string[] = [];
  const absent: string[] = [];
  for (const [id, exists] of presence) (exists ? present : absent).push(id);
  return gzipSync(Buffer.from(JSON.stringify({ present, absent })));
}

export function decodePresence(body: Buffer): Map<string, boolean> {
  const { present, absent } = JSON.parse(gunzipSync(body).toString('utf8')) as {
    present: string[];
    absent: string[];
  };
  return new Map([...present.map((id) => [id, true] as const), ...absent.map((id) => [id, false] as const)]);
}

/** Presences in order, a later one winning for the same id (as later segments of a run win). */
export function combinePresence(presences: Presence[]): Map<string, boolean> {
  const combined = new Map<string, boolean>();
  for (const presence of presences) for (const [id, exists] of presence) combined.set(id, exists);
  return combined;
}
