import { runtime } from '../core/runtime.ts';
import { resolveRunInput } from '../core/workflow/run-input.ts';

/** ReadRunManifest: validates the execution input, or reads it from the S3 manifest that triggered the run. */
export const handler = async (event: unknown) => resolveRunInput(event, runtime().objects);
