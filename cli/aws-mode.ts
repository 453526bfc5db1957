import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SFNClient,
  type HistoryEvent as SfnHistoryEvent,
} from '@aws-sdk/client-sfn';
import { causeMessage } from '../lambdas/core/errors.ts';
import {
  executionArnFor,
  type StartOutcome,
  sfnExecutionStarter,
  startRunExecution,
} from '../lambdas/core/workflow/run-executions.ts';

export { executionArnFor } from '../lambdas/core/workflow/run-executions.ts';

import type { HistoryEvent } from '../local/asl-runner.ts';
import type { ExecutionStatus } from '../local/console/execution-source.ts';
import { IterationTracker } from '../local/history-event.ts';
import { UsageError } from './output.ts';

/**
 * AWS mode: the deployed state machine driven through @aws-sdk/client-sfn, with executions
 * returned in the same shape as the local execution store so the CLI renders both alike.
 * `executionId` is the execution ARN: it is what `getAwsExecution` takes back.
 */
export type AwsExecutionStatus = ExecutionStatus;

export interface AwsExecution {
  executionId: string;
  name: string;
  status: AwsExecutionStatus;
  startDate: string;
  stopDate?: string;
  input: unknown;
  output?: unknown;
  error?: { name: string; message: string };
  events: AwsHistoryEvent[];
}

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

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$/;

/** Rejects a malformed --state-machine-arn before any AWS call, naming the flag. */
export function checkStateMachineArn(arn: string): string {
  if (!STATE_MACHINE_ARN.test(arn)) {
    throw new UsageError(
      `--state-machine-arn "${arn}" is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)`,
    );
  }
  return arn;
}

const regionOf = (arn: string) => arn.split(':')[3] || undefined;
const sfnClientFor = (arn: string) => new SFNClient({ region: regionOf(arn) });

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match) throw new UsageError(`--input "${uri}" is not an S3 URI: expected s3://bucket/prefix/`);
  const prefix = match[2]!;
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
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

export interface FollowOptions {
  client?: SFNClient;
  onEvent?: (event: AwsHistoryEvent) => void;
  pollMs?: number;
  signal?: AbortSignal;
}

/** Polls until the execution stops, reporting each new history event once, in order. */
export async function followExecution(
  executionArn: string,
  options: FollowOptions = {},
): Promise<AwsExecution> {
  const client = options.client ?? sfnClientFor(executionArn);
  const converter = new HistoryConverter();
  const events: AwsHistoryEvent[] = [];
  for (;;) {
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));
    // Read history after the status: a stopped execution's history is then complete.
    for (const raw of await eventsAfter(client, executionArn, events.at(-1)?.id ?? 0)) {
      const event = converter.convert(raw);
      events.push(event);
      options.onEvent?.(event);
    }
    if (described.status !== 'RUNNING') return toExecution(described, events);
    options.signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
  }
}

/** Events with an id above `lastId`, oldest first; reads newest-first so a long history is not re-read. */
async function eventsAfter(
  client: SFNClient,
  executionArn: string,
  lastId: number,
): Promise<SfnHistoryEvent[]> {
  const fresh: SfnHistoryEvent[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new GetExecutionHistoryCommand({
        executionArn,
        reverseOrder: true,
        maxResults: 1000,
        nextToken: token,
      }),
    );
    for (const event of page.events ?? []) {
      if ((event.id ?? 0) <= lastId) return fresh.reverse();
      fresh.push(event);
    }
    token = page.nextToken;
  } while (token);
  return fresh.reverse();
}

export async function getAwsExecution(executionArn: string, client?: SFNClient): Promise<AwsExecution> {
  const sfn = client ?? sfnClientFor(executionArn);
  const described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  const converter = new HistoryConverter();
  return toExecution(
    described,
    (await eventsAfter(sfn, executionArn, 0)).map((event) => converter.convert(event)),
  );
}

/** Newest first, without events (one GetExecutionHistory per execution would be slow): use getAwsExecution. */
export async function listAwsExecutions(
  stateMachineArn: string,
  client?: SFNClient,
  limit = 100,
): Promise<Omit<AwsExecution, 'events' | 'input'>[]> {
  const sfn = client ?? sfnClientFor(stateMachineArn);
  const executions: Omit<AwsExecution, 'events' | 'input'>[] = [];
  let token: string | undefined;
  do {
    const page = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn, nextToken: token, maxResults: 100 }),
    );
    for (const item of page.executions ?? []) {
      executions.push({
        executionId: item.executionArn!,
        name: item.name!,
        status: item.status as AwsExecutionStatus,
        startDate: item.startDate!.toISOString(),
        ...(item.stopDate && { stopDate: item.stopDate.toISOString() }),
      });
    }
    token = page.nextToken;
  } while (token && executions.length < limit);
  return executions.slice(0, limit);
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toExecution(described: DescribeExecutionCommandOutput, events: AwsHistoryEvent[]): AwsExecution {
  const status = described.status as AwsExecutionStatus;
  const failed = status === 'FAILED' || status === 'TIMED_OUT' || status === 'ABORTED';
  return {
    executionId: described.executionArn!,
    name: described.name!,
    status,
    startDate: described.startDate!.toISOString(),
    ...(described.stopDate && { stopDate: described.stopDate.toISOString() }),
    input: parseJson(described.input),
    ...(described.output !== undefined && { output: parseJson(described.output) }),
    ...(failed && {
      error: {
        name: described.error ?? status,
        message: described.cause ? causeMessage(described.cause) : (described.error ?? status),
      },
    }),
    events,
  };
}

interface EventDetails {
  name?: string;
  input?: string;
  output?: string;
  error?: string;
  cause?: string;
  index?: number;
}

/** AWS events in the local shape: the two sources are rendered alike (local/history-event.ts). */
export type AwsHistoryEvent = HistoryEvent;

/**
 * SDK history events → the local HistoryEvent shape. Task and Lambda events carry no state name:
 * they inherit it from the event they follow (previousEventId), as the console shows them; the
 * Map iteration of each event is found the same way (AWS puts an index on MapIteration* only).
 */
export class HistoryConverter {
  private readonly stateNames = new Map<number, string>();
  private readonly iterations = new IterationTracker();
  private readonly mapStarts = new Set<number>();

  convert(raw: SfnHistoryEvent): AwsHistoryEvent {
    const details = (Object.entries(raw).find(([key, value]) => key.endsWith('EventDetails') && value)?.[1] ??
      {}) as EventDetails;
    const id = raw.id ?? 0;
    const type = raw.type ?? 'Unknown';
    const previousEventId = raw.previousEventId ?? 0;
    // A Map's end follows the last event of one of its iterations (a Map without items: its start):
    // the event is the Map's, not that iteration's state's.
    const mapEnd = /^MapState(Succeeded|Failed|Aborted)$/.test(type) && !this.mapStarts.has(previousEventId);
    const inherited = type.startsWith('Execution')
      ? undefined
      : mapEnd
        ? (this.iterations.mapOf(previousEventId) ?? this.stateNames.get(previousEventId))
        : this.stateNames.get(previousEventId);
    if (type === 'MapStateStarted') this.mapStarts.add(id);
    const stateName = details.name ?? inherited;
    if (stateName !== undefined) this.stateNames.set(id, stateName);
    return this.iterations.place({
      id,
      type,
      timestamp: (raw.timestamp ?? new Date(0)).toISOString(),
      previousEventId,
      ...(stateName !== undefined && { stateName }),
      ...(details.input !== undefined && { input: parseJson(details.input) }),
      ...(details.output !== undefined && { output: parseJson(details.output) }),
      ...(details.error !== undefined && { error: details.error }),
      ...(details.cause !== undefined && { cause: details.cause }),
      ...(details.index !== undefined && { mapIterationIndex: details.index }),
    });
  }
}
