import { z } from 'zod';
import { BadInputError } from '../errors.ts';
import { validateCollectionName } from '../records/records.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { isValidRunId } from './run-layout.ts';

/**
 * The input of one execution: a run id and the collections it touches, each with its deltas as a
 * key prefix or an explicit key list. It may also arrive as a reference to a manifest object in
 * S3 (the S3-event trigger), which is read and validated the same way.
 */
const collectionInput = z
  .strictObject({
    name: z.string(),
    deltaPrefix: z.string().min(1).optional(),
    deltas: z.array(z.string().min(1)).min(1).optional(),
  })
  .refine((value) => (value.deltaPrefix === undefined) !== (value.deltas === undefined), {
    message: 'give exactly one of "deltaPrefix" or "deltas"',
  });

const runInput = z.strictObject({
  runId: z.string(),
  collections: z.array(collectionInput).min(1, 'a run needs at least one collection'),
});

export type CollectionInput = z.infer<typeof collectionInput>;
export type RunInput = z.infer<typeof runInput>;

const manifestReference = z.object({ manifest: z.strictObject({ bucket: z.string(), key: z.string() }) });

export function parseRunInput(value: unknown, where = 'execution input'): RunInput {
  const parsed = runInput.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadInputError(`${where}: ${issue.path.join('.') || 'input'}: ${issue.message}`);
  }
  if (!isValidRunId(parsed.data.runId)) {
    throw new BadInputError(
      `${where}: runId "${parsed.data.runId}" must be 1-128 characters of letters, digits, ".", "_" or "-"`,
    );
  }
  const seen = new Set<string>();
  for (const collection of parsed.data.collections) {
    validateCollectionName(collection.name, `${where}: collection`);
    if (seen.has(collection.name))
      throw new BadInputError(`${where}: collection "${collection.name}" is listed twice`);
    seen.add(collection.name);
  }
  return parsed.data;
}

/** Resolves a manifest reference (S3 trigger) or validates an inline run input. */
export async function resolveRunInput(event: unknown, objects: ObjectStore): Promise<RunInput> {
  const reference = manifestReference.safeParse(event);
  if (!reference.success) return parseRunInput(event);
  const { bucket, key } = reference.data.manifest;
  if (bucket !== objects.bucket) {
    throw new BadInputError(
      `run manifest s3://${bucket}/${key} is not in the workflow's bucket ${objects.bucket}`,
    );
  }
  const manifest = await objects.getJson<Record<string, unknown>>(key);
  // A manifest may leave the run id out: the folder it sits in names the run.
  const runId = manifest.runId ?? key.split('/').slice(-2, -1)[0];
  return parseRunInput({ ...manifest, runId }, `run manifest s3://${bucket}/${key}`);
}
