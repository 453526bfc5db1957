import { validateCollectionName } from '../lambdas/core/records/records.ts';
import { UsageError } from './output.ts';

/** A collection name given on the command line: an invalid one is a usage error naming the flag. */
export function checkCollectionName(name: string, flag = '--collection'): string {
  try {
    return validateCollectionName(name, flag);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
