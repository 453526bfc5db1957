import { parseSnapshotKey } from '../storage/snapshot-store.ts';
import type { Pointer, SnapshotVersion } from './pointer.ts';

/**
 * Which snapshot objects may be deleted. A superseded version is kept while it is among the last
 * SNAPSHOT_RETENTION versions AND for SNAPSHOT_RETENTION_MINUTES after it left them, because a
 * reader (query, export, a downstream Lambda) may be downloading the object the pointer named a
 * moment ago. Versions that left the history are remembered as ranges stamped with the time they
 * left, merged per minute, so the pointer stays small on a busy stream.
 */
export interface RetiredRange {
  /** Every version at or below this one has left the history… */
  through: number;
  /** …at this time or before. */
  at: string;
}

const MERGE_MS = 60_000;

/** The retired ranges after `left` leave the history at `now`; ranges past the floor collapse into one. */
export function retire(
  retired: RetiredRange[],
  left: SnapshotVersion[],
  now: Date,
  floorMinutes: number,
): RetiredRange[] {
  let ranges = [...retired];
  if (left.length > 0) {
    const through = Math.max(...left.map((entry) => entry.version));
    const last = ranges[ranges.length - 1];
    if (last && now.getTime() - Date.parse(last.at) < MERGE_MS) {
      ranges[ranges.length - 1] = { through: Math.max(last.through, through), at: now.toISOString() };
    } else {
      ranges.push({ through, at: now.toISOString() });
    }
  }
  // Ranges already past the floor collapse into the newest of them: it alone says "deletable through".
  const cutoff = now.getTime() - floorMinutes * 60_000;
  const expired = ranges.filter((range) => Date.parse(range.at) <= cutoff);
  if (expired.length > 1) {
    const newest = expired[expired.length - 1]!;
    ranges = [newest, ...ranges.filter((range) => Date.parse(range.at) > cutoff)];
  }
  return ranges;
}

/**
 * Whether the object at `key` is garbage for `pointer` at time `now`. Never true for an object the
 * pointer names or retains. An upload above the current version may still be published, so it is
 * kept. An upload at or below the current version that the history does not hold either lost its
 * race (never named by any pointer: deletable at once) or left the history (deletable once its
 * retired range is older than the floor).
 */
export function isGarbage(key: string, pointer: Pointer, now: number, floorMinutes: number): boolean {
  const parsed = parseSnapshotKey(key);
  if (!parsed || parsed.collection !== pointer.collection) return false;
  if (parsed.version > pointer.version) return false;
  if (pointer.history.some((entry) => entry.key === key)) return false;
  const oldestRetained = Math.min(pointer.version, ...pointer.history.map((entry) => entry.version));
  // History holds every version from the oldest retained one up: this key was never published.
  if (parsed.version >= oldestRetained) return true;
  const range = pointer.retired.find((candidate) => candidate.through >= parsed.version);
  if (!range) return false; // left the history before ranges were recorded: keep it, to be safe
  return Date.parse(range.at) <= now - floorMinutes * 60_000;
}
