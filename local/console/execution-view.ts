import { causeMessage } from '../../lambdas/core/errors.ts';
import { type AslDocument, statesOf } from '../../statemachines/definition.ts';
import type { HistoryEvent } from '../execution-history.ts';
import type { ExecutionDetail, ExecutionSummary } from './execution-source.ts';

/**
 * What the console page shows for one execution, derived from its history alone (the same way the
 * Step Functions console colours its graph), so a local and an AWS source give the same view.
 */
export type StateStatus = 'not-started' | 'running' | 'succeeded' | 'failed' | 'caught' | 'cancelled';

export interface StateProgress {
  status: StateStatus;
  /** Times the state was entered (more than one inside a Map). */
  visits: number;
  retries: number;
  firstEnteredAt?: string;
  /** When the last visit left the state (exit or final failure). */
  lastLeftAt?: string;
  lastError?: { error?: string; cause?: string };
}

export interface MapIterations {
  done: number;
  failed: number;
  /** Stopped because another iteration failed (MapIterationAborted): not failures of their own. */
  aborted: number;
  running: number;
  /** Items handed to the Map (from ItemsPath of its input), or the iterations started if unknown. */
  total: number;
}

/** One collection's line of the run summary (CollectionSummary of the workflow output). */
export interface CollectionOutcome {
  collection: string;
  status?: 'published' | 'already-applied' | 'failed';
  /** A failed publish's error (or one reported after the publish landed). */
  error?: { name: string; message: string };
  deltas?: number;
  records?: number;
  chunks?: number;
  chunkSize?: number;
  intermediateMerges?: number;
  shortCircuit?: boolean;
  previousVersion?: number;
  snapshotVersion?: number;
  recordCount?: number;
  lockHoldMs?: number;
  lockAcquireMs?: number;
  casRetries?: number;
  alreadyApplied?: boolean;
}

export interface ExecutionListItem extends ExecutionSummary {
  durationMs?: number;
}

export interface ExecutionView extends ExecutionDetail {
  durationMs?: number;
  states: Record<string, StateProgress>;
  mapIterations: Record<string, MapIterations>;
  summary: CollectionOutcome[];
}

interface StateInfo {
  type: string;
  itemsPath?: string;
  canCatch: boolean;
}

/** Every state of the definition, nested ones included (state names are unique machine-wide). */
function describeStates(definition: object): Map<string, StateInfo> {
  const entries = [...statesOf(definition as AslDocument)].map(([name, { state }]): [string, StateInfo] => [
    name,
    {
      type: state.Type,
      ...(typeof state.ItemsPath === 'string' && { itemsPath: state.ItemsPath }),
      canCatch: Array.isArray(state.Catch) && state.Catch.length > 0,
    },
  ]);
  return new Map(entries);
}

export function durationMs(startDate: string, stopDate?: string): number | undefined {
  return stopDate ? Date.parse(stopDate) - Date.parse(startDate) : undefined;
}

export function toListItem(summary: ExecutionSummary): ExecutionListItem {
  return { ...summary, durationMs: durationMs(summary.startDate, summary.stopDate) };
}

// Failures of a state itself; iteration, branch and execution failures are counted elsewhere.
const STATE_FAILURE = /^(?!MapIteration|ParallelBranch|Execution).*(Failed|TimedOut)$/;

/**
 * Step Functions records no retry event: a retry is a new LambdaFunctionScheduled (or
 * TaskScheduled) whose previousEventId is the failure it retries; the local history is the same.
 */
function isRetrySchedule(event: HistoryEvent, failureIds: Set<number>): boolean {
  const previous = (event as { previousEventId?: number }).previousEventId;
  return event.type.endsWith('Scheduled') && previous !== undefined && failureIds.has(previous);
}

interface Counters {
  entered: number;
  exited: number;
  failed: number;
  retried: number;
  caught: number;
  firstEnteredAt?: string;
  lastLeftAt?: string;
  lastError?: { error?: string; cause?: string };
}

function countStateEvents(events: HistoryEvent[]): Map<string, Counters> {
  const counters = new Map<string, Counters>();
  const failureIds = new Set<number>();
  for (const event of events) {
    if (!event.stateName || /^(MapIteration|ParallelBranch)/.test(event.type)) continue;
    let c = counters.get(event.stateName);
    if (!c) {
      c = { entered: 0, exited: 0, failed: 0, retried: 0, caught: 0 };
      counters.set(event.stateName, c);
    }
    if (event.type.endsWith('StateEntered')) {
      c.entered++;
      c.firstEnteredAt ??= event.timestamp;
    } else if (event.type.endsWith('StateExited')) {
      c.exited++;
      c.lastLeftAt = event.timestamp;
    } else if (STATE_FAILURE.test(event.type)) {
      c.failed++;
      failureIds.add(event.id);
      c.lastLeftAt = event.timestamp;
      // A Lambda's Cause is the runtime's JSON of the error; the panel shows its message.
      c.lastError = { error: event.error, cause: event.cause && causeMessage(event.cause) };
    } else if (event.type.endsWith('Retried') || isRetrySchedule(event, failureIds)) c.retried++;
    else if (event.type === 'StateCaught') c.caught++;
  }
  return counters;
}

function statusOf(c: Counters, info: StateInfo | undefined, executionRunning: boolean): StateStatus {
  if (c.entered === 0) return 'not-started';
  // A Fail state ends the execution when entered; it never reports an exit.
  if (info?.type === 'Fail') return 'failed';
  const unrecovered = Math.max(0, c.failed - c.retried);
  if (c.exited >= c.entered) {
    // Every visit left the state: a failure that was not retried away was caught by a Catch.
    // (A source without retry events can only tell a catch when the state has a Catch at all.)
    return unrecovered > 0 && (c.caught > 0 || info?.canCatch) ? 'caught' : 'succeeded';
  }
  if (unrecovered - c.caught > 0) return 'failed';
  return executionRunning ? 'running' : 'cancelled';
}

/** Resolves a plain `$.a.b` ItemsPath; anything fancier returns undefined (the count falls back). */
function itemsAt(input: unknown, path = '$'): unknown[] | undefined {
  if (!/^\$(\.[A-Za-z0-9_]+)*$/.test(path)) return undefined;
  let value = input;
  for (const key of path.split('.').slice(1)) value = (value as Record<string, unknown> | null)?.[key];
  return Array.isArray(value) ? value : undefined;
}

function countMapIterations(events: HistoryEvent[], states: Map<string, StateInfo>) {
  const maps: Record<string, MapIterations & { started: number; itemsKnown: boolean }> = {};
  for (const [name, info] of states) {
    if (info.type === 'Map')
      maps[name] = { done: 0, failed: 0, aborted: 0, running: 0, total: 0, started: 0, itemsKnown: true };
  }
  for (const event of events) {
    const map = event.stateName ? maps[event.stateName] : undefined;
    if (!map) continue;
    if (event.type === 'MapStateEntered') {
      const items = itemsAt(event.input, states.get(event.stateName!)?.itemsPath);
      if (items) map.total += items.length;
      else map.itemsKnown = false;
    } else if (event.type === 'MapIterationStarted') map.started++;
    else if (event.type === 'MapIterationSucceeded') map.done++;
    else if (event.type === 'MapIterationFailed') map.failed++;
    else if (event.type === 'MapIterationAborted') map.aborted++;
  }
  const result: Record<string, MapIterations> = {};
  for (const [name, { started, itemsKnown, ...map }] of Object.entries(maps)) {
    result[name] = {
      ...map,
      total: itemsKnown ? Math.max(map.total, started) : started,
      running: Math.max(0, started - map.done - map.failed - map.aborted),
    };
  }
  return result;
}

const OUTCOME_FIELDS = [
  'deltas',
  'records',
  'chunks',
  'chunkSize',
  'intermediateMerges',
  'shortCircuit',
  'previousVersion',
  'snapshotVersion',
  'recordCount',
  'lockHoldMs',
  'lockAcquireMs',
  'casRetries',
  'alreadyApplied',
  'status',
  'error',
] as const;

function asOutcome(value: unknown): CollectionOutcome | undefined {
  const candidate = value as Record<string, unknown> | null | undefined;
  if (typeof candidate?.collection !== 'string') return undefined;
  if (!('snapshotVersion' in candidate) && candidate.status !== 'failed') return undefined;
  const outcome: Record<string, unknown> = { collection: candidate.collection };
  for (const field of OUTCOME_FIELDS) if (field in candidate) outcome[field] = candidate[field];
  // PublishFailed's own output has Step Functions' Error and Cause, not yet Summarize's error.
  if (typeof candidate.error === 'string') {
    const cause = typeof candidate.cause === 'string' ? causeMessage(candidate.cause) : candidate.error;
    outcome.error = { name: candidate.error, message: cause };
  }
  return outcome as unknown as CollectionOutcome;
}

/**
 * The run summary: the workflow output's `collections`; while the run is in flight (or when it
 * failed after some collections published) the per-collection summaries that states put out so far.
 */
function summarize(output: unknown, events: HistoryEvent[]): CollectionOutcome[] {
  const byCollection = new Map<string, CollectionOutcome>();
  const add = (entries: unknown) => {
    for (const entry of Array.isArray(entries) ? entries : []) {
      const outcome = asOutcome(entry);
      if (outcome) byCollection.set(outcome.collection, outcome);
    }
  };
  for (const event of events) {
    if (!event.type.endsWith('StateExited')) continue;
    // A collection's publish iteration ends with its outcome; Summarize lists them all (with a
    // failed publish's readable error), also when the run then fails.
    add([event.output]);
    if (event.stateName === 'Summarize') add((event.output as { collections?: unknown } | null)?.collections);
  }
  add((output as { collections?: unknown } | null | undefined)?.collections);
  return [...byCollection.values()].sort((a, b) => a.collection.localeCompare(b.collection));
}

export function buildExecutionView(detail: ExecutionDetail, definition: object): ExecutionView {
  const info = describeStates(definition);
  const running = detail.status === 'RUNNING';
  const states: Record<string, StateProgress> = {};
  for (const [name, c] of countStateEvents(detail.events)) {
    states[name] = {
      status: statusOf(c, info.get(name), running),
      visits: c.entered,
      retries: c.retried,
      ...(c.firstEnteredAt && { firstEnteredAt: c.firstEnteredAt }),
      ...(c.lastLeftAt && { lastLeftAt: c.lastLeftAt }),
      ...(c.lastError && { lastError: c.lastError }),
    };
  }
  return {
    ...detail,
    durationMs: durationMs(detail.startDate, detail.stopDate),
    states,
    mapIterations: countMapIterations(detail.events, info),
    summary: summarize(detail.output, detail.events),
  };
}

// Vectors never reach the page (payloads should carry keys and counts only; this is the safety net).
const VECTOR_KEY = /^embeddings?$/i;
const SECRET_KEY = /(secret|password|passwd|credential|authorization|access_?key|session_?token|api_?key)/i;

/** A copy with every `embedding` array and anything named like a secret replaced by a marker. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (VECTOR_KEY.test(key) && Array.isArray(field)) copy[key] = `[${field.length} values hidden]`;
    else if (SECRET_KEY.test(key) && field !== null && field !== undefined) copy[key] = '[redacted]';
    else copy[key] = redact(field);
  }
  return copy;
}
