import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SFNClient,
  type HistoryEvent as SfnHistoryEvent,
} from '@aws-sdk/client-sfn';
import { causeMessage } from '../../lambdas/core/errors.ts';
import type { ExecutionStatus, HistoryEvent } from '../execution-history.ts';
import { IterationTracker } from '../history-event.ts';

/**
 * A deployed state machine's executions read through @aws-sdk/client-sfn, in the same shapes as
 * the local execution store, so the CLI and the console render both alike. `executionId` is the
 * execution ARN: it is what `getAwsExecution` takes back.
 */
export interface AwsExecution {
  executionId: string;
  name: string;
  status: ExecutionStatus;
  startDate: string;
  stopDate?: string;
  input: unknown;
  output?: unknown;
  error?: { name: string; message: string };
  events: AwsHistoryEvent[];
}

export const regionOf = (arn: string) => arn.split(':')[3] || undefined;
export const sfnClientFor = (arn: string) => new SFNClient({ region: regionOf(arn) });

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
        status: item.status as ExecutionStatus,
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
  const status = described.status as ExecutionStatus;
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
