import { StorageError } from '../errors.ts';
import { decodePresence, encodePresence, type Presence, presenceKeyOf } from '../records/presence.ts';
import type { ObjectStore } from './object-store.ts';

/** A segment file and its presence, uploaded side by side. */
export async function uploadSegment(
  objects: ObjectStore,
  key: string,
  file: string,
  presence: Presence,
): Promise<void> {
  await Promise.all([objects.uploadFile(key, file), writePresence(objects, key, presence)]);
}

/** Stores the presence of the object at `key` beside it. */
export async function writePresence(objects: ObjectStore, key: string, presence: Presence): Promise<void> {
  await objects.uploadStream(presenceKeyOf(key), encodePresence(presence), 'application/gzip');
}

/** The presence stored beside `key`, or null when there is none (an object written before presences were). */
export async function readPresence(objects: ObjectStore, key: string): Promise<Map<string, boolean> | null> {
  try {
    return decodePresence(await objects.getBytes(presenceKeyOf(key)));
  } catch (error) {
    if (error instanceof StorageError) return null;
    throw error;
  }
}
