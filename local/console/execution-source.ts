import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionStatus, HistoryEvent } from '../execution-history.ts';
import { ExecutionStore } from '../execution-store.ts';

/**
 * Where the console reads executions from. Kept to two required calls so that an AWS implementation
 * (ListExecutions, DescribeExecution + GetExecutionHistory) plugs in beside the local store.
 */
export interface ExecutionSummary {
  executionId: string;
  /** A shorter display name when the id is long (AWS: the execution name; the id is its ARN). */
  name?: string;
  runId?: string;
  status: ExecutionStatus;
  startDate: string;
  stopDate?: string;
  /** Collection names of the run, from the execution input. */
  collections: string[];
  /** Why it failed, when the source knows it without reading the history (the executions list shows it). */
  error?: { name: string; message: string };
}

export interface ExecutionDetail extends ExecutionSummary {
  input: unknown;
  output?: unknown;
  /** History events named as GetExecutionHistory names them, with `stateName` on state events. */
  events: HistoryEvent[];
}

export interface ExecutionSource {
  /** One line for the page header: where these executions live. */
  readonly description: string;
  /** Newest first. */
  list(): Promise<ExecutionSummary[]>;
  /** null for an unknown id (never throws for one). */
  get(executionId: string): Promise<ExecutionDetail | null>;
  /**
   * Optional: a cheap marker that changes whenever the execution does. The live stream then re-reads
   * an execution only when it moved; without it the stream re-reads on every poll.
   */
  changeToken?(executionId: string): Promise<string | null>;
  /** Optional: the newest execution of a run id, when the list cannot tell (AWS lists no inputs). */
  findRun?(runId: string): Promise<ExecutionDetail | null>;
  /** Optional: how often the live stream may poll a running execution (default 2000 ms). */
  readonly pollIntervalMs?: number;
  /** Optional: the definition the executions ran (AWS: DescribeStateMachine). Default: the local ASL file. */
  definition?(): Promise<object>;
}

/** The run's collection names: the input lists them as names or as `{ name }` objects. */
export function collectionsOf(input: unknown): string[] {
  const listed = (input as { collections?: unknown } | null | undefined)?.collections;
  if (!Array.isArray(listed)) return [];
  return listed
    .map((entry) =>
      typeof entry === 'string' ? entry : (entry as { name?: unknown } | null | undefined)?.name,
    )
    .filter((name): name is string => typeof name === 'string');
}

function runIdOf(execution: { runId?: string; input?: unknown }): string | undefined {
  const fromInput = (execution.input as { runId?: unknown } | null | undefined)?.runId;
  return execution.runId ?? (typeof fromInput === 'string' ? fromInput : undefined);
}

/** What both stores hold of an execution (local store record, or DescribeExecution + history). */
type StoredExecution = Omit<ExecutionSummary, 'collections'> &
  Partial<Pick<ExecutionDetail, 'input' | 'output' | 'error'>>;

export function summaryOf(execution: StoredExecution): ExecutionSummary {
  const runId = runIdOf(execution);
  return {
    executionId: execution.executionId,
    ...(execution.name && { name: execution.name }),
    ...(runId !== undefined && { runId }),
    status: execution.status,
    startDate: execution.startDate,
    ...(execution.stopDate && { stopDate: execution.stopDate }),
    collections: collectionsOf(execution.input),
    ...(execution.error && { error: execution.error }),
  };
}

export function detailOf(execution: StoredExecution & { events: HistoryEvent[] }): ExecutionDetail {
  return {
    ...summaryOf(execution),
    input: execution.input,
    ...(execution.output !== undefined && { output: execution.output }),
    events: execution.events,
  };
}

// Ids the store accepts: never "." or "..", so a URL can't name a directory outside `executions/`.
const EXECUTION_ID = /^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,255}$/;
const isSafeId = (id: string) => EXECUTION_ID.test(id);

/** Executions written by `embedflow run` under `<dataDir>/executions/`. */
export class LocalExecutionSource implements ExecutionSource {
  readonly description: string;
  // Two stat() calls per poll: cheap enough to follow a run closely.
  readonly pollIntervalMs = 300;
  private readonly store: ExecutionStore;

  constructor(readonly dataDir: string) {
    const dir = join(dataDir, 'executions');
    this.store = new ExecutionStore(dir);
    this.description = `local executions in ${dir}`;
  }

  async list(): Promise<ExecutionSummary[]> {
    const executions = await this.store.listExecutions();
    return Promise.all(executions.map(async (execution) => summaryOf(await this.withAbortTime(execution))));
  }

  async get(executionId: string): Promise<ExecutionDetail | null> {
    if (!isSafeId(executionId)) return null;
    // The store leaves out a last line still being written, so a run in flight reads cleanly.
    const execution = await this.store.getExecution(executionId);
    if (!execution) return null;
    return detailOf(await this.withAbortTime(execution));
  }

  /**
   * An execution whose process died (Ctrl-C, SIGKILL) never wrote its stop date: it stopped when
   * its history last grew, so its duration ends there instead of growing for ever.
   */
  private async withAbortTime<T extends { executionId: string; status: ExecutionStatus; stopDate?: string }>(
    execution: T,
  ): Promise<T> {
    if (execution.status !== 'ABORTED' || execution.stopDate) return execution;
    const events = await stat(join(this.store.dir, execution.executionId, 'events.jsonl')).catch(() => null);
    return events ? { ...execution, stopDate: events.mtime.toISOString() } : execution;
  }

  /** events.jsonl only grows and execution.json is replaced atomically: size + mtime tell a change. */
  async changeToken(executionId: string): Promise<string | null> {
    if (!isSafeId(executionId)) return null;
    const dir = join(this.store.dir, executionId);
    try {
      const [meta, events] = await Promise.all([
        stat(join(dir, 'execution.json')),
        stat(join(dir, 'events.jsonl')),
      ]);
      return `${meta.mtimeMs}:${events.size}`;
    } catch {
      return null;
    }
  }
}
