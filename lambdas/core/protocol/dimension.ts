import { BadInputError } from '../errors.ts';
import { putVerified } from './conditional-write.ts';
import { type Clock, type ItemStore, when } from './ports.ts';

/**
 * A collection has one dimension, fixed by its first commit: `dimension#{collection}`, written
 * once with a conditional put. Every commit is checked against it before it is appended, so a
 * change of the wrong dimension fails its own publisher at once and never reaches the log (two
 * new runs of different dimensions racing for a new collection: the second is refused).
 */
export const dimensionKey = (collection: string) => `dimension#${collection}`;

export async function claimDimension(
  items: ItemStore,
  clock: Clock,
  collection: string,
  dimension: number | null,
  what: string,
  /** The dimension the live pointer already has, if any: then no write is needed. */
  known: number | null = null,
): Promise<void> {
  if (dimension === null) return;
  if (known !== null) {
    if (known !== dimension) throw mismatch(what, dimension, collection, known);
    return;
  }
  const outcome = await putVerified(items, clock, {
    key: dimensionKey(collection),
    item: { dimension },
    condition: when.absent(),
    isOurs: (stored) => stored?.dimension === dimension,
    what: `dimension of "${collection}"`,
  });
  if (!outcome.written) throw mismatch(what, dimension, collection, outcome.stored?.dimension);
}

function mismatch(what: string, dimension: number, collection: string, theirs: unknown): BadInputError {
  return new BadInputError(
    `${what} has dimension ${dimension}, but collection "${collection}" has dimension ${theirs} (drop the collection to start over with another dimension)`,
  );
}

/** The collection's dimension, if anything was ever committed to it. */
export async function collectionDimension(items: ItemStore, collection: string): Promise<number | null> {
  const stored = await items.get(dimensionKey(collection));
  return typeof stored?.dimension === 'number' ? stored.dimension : null;
}
