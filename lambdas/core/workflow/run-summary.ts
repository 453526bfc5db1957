import { causeMessage } from '../errors.ts';
import { type SnapshotVersion, versionWith } from '../protocol/pointer.ts';
import type { Runtime } from '../runtime.ts';
import type { CollectionOutcome, CollectionSummary, FailedCollection } from './workflow-state.ts';

/**
 * The end of a run: each publish iteration returned its own outcome (PublishFailed in the ASL
 * turns a failure into one). The run succeeds only if every collection is published; otherwise it
 * fails with an error and a cause that say which collections published and which did not, and
 * running the same run id again completes the rest (a published collection is not applied twice).
 */
export const PUBLISH_INCOMPLETE = 'PublishIncomplete';

export interface RunOutcome {
  runId: string;
  collections: CollectionOutcome[];
  /** Present when a collection did not publish: the Error and Cause the run fails with. */
  failure?: { Error: string; Cause: string };
}

/** What PublishFailed hands on: the state's counts and Step Functions' Error and Cause. */
interface FailedIteration extends Omit<FailedCollection, 'error'> {
  error: string;
  cause?: string;
}

type IterationResult = CollectionSummary | FailedIteration;

/** The live version that published a run into a collection, if any did. */
export type PublishedVersionOf = (collection: string, runId: string) => Promise<SnapshotVersion | undefined>;

/**
 * Reads where a run stands from stored state: its applied record names its log entry, and the
 * pointer's versions say which one first contained it (newest first, so the last that does).
 */
export function publishedVersionIn(rt: Pick<Runtime, 'applied' | 'pointers'>): PublishedVersionOf {
  return async (collection, runId) => {
    const seq = await rt.applied.runAppliedAt(collection, runId);
    if (seq === undefined) return undefined;
    return versionWith(await rt.pointers.read(collection), seq);
  };
}

export async function summarizeRun(
  publishedVersionOf: PublishedVersionOf,
  runId: string,
  results: IterationResult[],
): Promise<RunOutcome> {
  const collections = await Promise.all(
    results.map((result) =>
      result.status === 'failed' ? checkFailed(publishedVersionOf, runId, result) : result,
    ),
  );
  const failed = collections.filter((outcome): outcome is FailedCollection => outcome.status === 'failed');
  if (failed.length === 0) return { runId, collections };
  return {
    runId,
    collections,
    failure: { Error: PUBLISH_INCOMPLETE, Cause: incompleteCause(runId, collections) },
  };
}

/**
 * A publish can fail after the swap that published its entry (its cleanup, say): then the run is
 * in the live snapshot and the collection is published. Reading it keeps the summary honest.
 */
async function checkFailed(
  publishedVersionOf: PublishedVersionOf,
  runId: string,
  result: FailedIteration,
): Promise<CollectionOutcome> {
  const { error, cause, ...counts } = result;
  const failure = { name: error, message: cause ? causeMessage(cause) : error };
  const applied = await publishedVersionOf(result.collection, runId);
  if (!applied) return { ...counts, error: failure };
  return {
    collection: result.collection,
    status: 'published',
    deltas: result.deltas,
    chunkSize: result.chunkSize,
    chunks: result.chunks,
    intermediateMerges: result.intermediateMerges,
    previousVersion: applied.version - 1,
    snapshotVersion: applied.version,
    recordCount: applied.recordCount,
    error: failure,
  };
}

export function incompleteCause(runId: string, collections: CollectionOutcome[]): string {
  const notPublished = collections
    .filter((outcome): outcome is FailedCollection => outcome.status === 'failed')
    .map((outcome) => `${outcome.collection} (${outcome.error.name}: ${outcome.error.message})`);
  const published = collections
    .filter((outcome) => outcome.status !== 'failed')
    .map(
      (outcome) =>
        `${outcome.collection} (v${outcome.snapshotVersion}${outcome.status === 'already-applied' ? ', already applied' : ''})`,
    );
  return (
    `Not published: ${notPublished.join('; ')}. Published: ${published.join(', ') || 'none'}. ` +
    `Run ${runId} again to publish the rest: what is published is not applied twice.`
  );
}
