import { causeMessage } from '../errors.ts';
import { cleanup as cleanupSnapshots } from '../protocol/publish.ts';
import type { Runtime } from '../runtime.ts';
import { collectionRunPrefix, runPrefix } from './run-layout.ts';

/** After a publish: the run's segments and manifest go, and so do unpublished snapshot uploads. */
export async function cleanupCollectionRun(
  rt: Runtime,
  runId: string,
  collection: string,
): Promise<{ deletedObjects: number }> {
  const keys = await rt.objects.listKeys(collectionRunPrefix(runId, collection));
  const deletedTemporary = await rt.objects.deleteKeys(keys);
  const pointer = await rt.pointers.read(collection);
  const deletedSnapshots = pointer.version > 0 ? await cleanupSnapshots(rt, pointer) : 0;
  return { deletedObjects: deletedTemporary + deletedSnapshots };
}

/**
 * The failure path: removes everything the run wrote under `runs/{runId}/` (except its input)
 * and turns the Step Functions error into a name and a cause a person can read.
 */
export async function recordFailure(
  rt: Runtime,
  runId: string | undefined,
  failure: { Error?: string; Cause?: string } | undefined,
): Promise<{ error: string; cause: string; deletedObjects: number }> {
  let deletedObjects = 0;
  if (runId) {
    const keys = (await rt.objects.listKeys(runPrefix(runId))).filter((key) => !key.includes('/input/'));
    deletedObjects = await rt.objects.deleteKeys(keys);
  }
  const error = failure?.Error ?? 'RunFailed';
  return { error, cause: readableCause(error, failure?.Cause), deletedObjects };
}

/** Lambda puts `{"errorType","errorMessage","trace"}` in Cause; a person wants just the message. */
export function readableCause(error: string, cause: string | undefined): string {
  return cause ? causeMessage(cause) : error;
}
