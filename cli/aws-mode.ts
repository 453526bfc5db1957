import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import {
  executionArnFor,
  type StartOutcome,
  sfnExecutionStarter,
  startRunExecution,
} from '../lambdas/core/workflow/run-executions.ts';
import {
  type AwsExecution,
  type AwsHistoryEvent,
  followExecution,
  getAwsExecution,
  regionOf,
  sfnClientFor,
} from '../local/console/aws-executions.ts';
import { parseS3Uri } from './aws-arguments.ts';
import { UsageError } from './output.ts';

export { executionArnFor } from '../lambdas/core/workflow/run-executions.ts';

/**
 * AWS mode's run: starts the deployed state machine through @aws-sdk/client-sfn on deltas already
 * in S3 and follows it (local/console/aws-executions.ts reads executions for the CLI and console).
 */
export interface AwsRunInput {
  runId: string;
  collections: { name: string; deltaPrefix: string }[];
}

export interface StartAwsRunOptions {
  stateMachineArn: string;
  /** `s3://bucket/prefix/`: every sub-folder of the prefix is one collection's deltas. */
  inputUri: string;
  runId?: string;
  client?: SFNClient;
  s3Client?: S3Client;
  /** Called once per history event, in order, as the execution progresses. */
  onEvent?: (event: AwsHistoryEvent) => void;
  pollMs?: number;
  signal?: AbortSignal;
}

/** The collection folders right under the prefix: `<prefix><collection>/`. */
export async function listCollections(s3: S3Client, inputUri: string): Promise<AwsRunInput['collections']> {
  const { bucket, prefix } = parseS3Uri(inputUri);
  const collections: AwsRunInput['collections'] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
    );
    for (const { Prefix: folder } of page.CommonPrefixes ?? []) {
      if (folder) collections.push({ name: folder.slice(prefix.length, -1), deltaPrefix: folder });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (collections.length === 0) {
    throw new UsageError(
      `no collection folders under ${inputUri} (expected ${inputUri}<collection>/*.jsonl)`,
    );
  }
  return collections.sort((a, b) => a.name.localeCompare(b.name));
}

export function defaultRunId(now = new Date()): string {
  return `run-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

/**
 * Starts the run's execution, named by its run id (lambdas/core/workflow/run-executions.ts), and
 * follows it. A run id already running or applied starts nothing: the result is that execution as
 * it stands, with `start.outcome` saying which.
 */
export async function startAwsRun(
  options: StartAwsRunOptions,
): Promise<AwsExecution & { start: StartOutcome }> {
  const client = options.client ?? sfnClientFor(options.stateMachineArn);
  const s3 =
    options.s3Client ??
    new S3Client({ region: regionOf(options.stateMachineArn), followRegionRedirects: true });
  const runId = options.runId ?? defaultRunId();
  const input: AwsRunInput = { runId, collections: await listCollections(s3, options.inputUri) };
  const start = await startRunExecution(sfnExecutionStarter(client, options.stateMachineArn, input), runId);
  const executionArn = executionArnFor(options.stateMachineArn, start.name);
  const execution =
    start.outcome === 'started'
      ? await followExecution(executionArn, { ...options, client })
      : await getAwsExecution(executionArn, client);
  return { ...execution, start };
}
