import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ExecutionStarter } from '../lambdas/core/workflow/run-executions.ts';
import type { ExecutionResult } from './asl-runner.ts';
import type { ExecutionStatus, HistoryEvent } from './execution-history.ts';
import { alive } from './process-alive.ts';

/**
 * Executions on disk, one directory each: `<dir>/<executionId>/execution.json` (replaced
 * atomically) and `events.jsonl` (appended as events happen, so another process can follow a run
 * live). Several processes can write different executions at once; no database.
 */
export interface ExecutionMeta {
  executionId: string;
  name?: string;
  runId?: string;
  input: unknown;
  startDate: string;
}

export interface ExecutionSummary extends ExecutionMeta {
  status: ExecutionStatus;
  stopDate?: string;
  output?: unknown;
  error?: { name: string; message: string };
}

export interface StoredExecution extends ExecutionSummary {
  events: HistoryEvent[];
}

/** Who runs the execution: a RUNNING execution whose process is gone was aborted. */
type ExecutionFile = ExecutionSummary & { owner?: { host: string; pid: number } };

export class ExecutionExistsError extends Error {
  constructor(id: string) {
    super(`execution "${id}" already exists`);
    this.name = 'ExecutionExistsError';
  }
}

const ID = /^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,255}$/;

export class ExecutionStore {
  constructor(readonly dir: string) {}

  private path(id: string, file?: string): string {
    if (!ID.test(id)) throw new Error(`invalid execution id "${id}": letters, digits, "._:-", at most 256`);
    return file ? join(this.dir, id, file) : join(this.dir, id);
  }

  private async writeMeta(meta: ExecutionFile): Promise<void> {
    const target = this.path(meta.executionId, 'execution.json');
    const temp = `${target}.${randomUUID()}.tmp`;
    try {
      await writeFile(temp, JSON.stringify(meta, null, 2));
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  /** Fails if the id is taken: two runs never share a history. */
  async createExecution(meta: ExecutionMeta): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await mkdir(this.path(meta.executionId)).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EEXIST' ? new ExecutionExistsError(meta.executionId) : error;
    });
    await writeFile(this.path(meta.executionId, 'events.jsonl'), '');
    await this.writeMeta({ ...meta, status: 'RUNNING', owner: { host: hostname(), pid: process.pid } });
  }

  /** Replaces the input an execution was created with (the run's input, once uploaded). */
  async setInput(id: string, input: unknown): Promise<void> {
    const meta = await this.readOwned(id);
    await this.writeMeta({ ...meta, input });
  }

  /**
   * Claims executions for `startRunExecution`: a name is taken once its directory exists (mkdir
   * is atomic, so of two processes claiming one name, one wins), whatever became of it.
   */
  starter(meta: (name: string) => Omit<ExecutionMeta, 'executionId'>): ExecutionStarter {
    return {
      start: async (name) => {
        try {
          await this.createExecution({ ...meta(name), executionId: name });
          return true;
        } catch (error) {
          if (error instanceof ExecutionExistsError) return false;
          throw error;
        }
      },
      status: async (name) => (await this.readMeta(name))?.status ?? null,
    };
  }

  /** Synchronous on purpose: events stay in order without a queue, each line lands in one write. */
  appendEvent(id: string, event: HistoryEvent): void {
    appendFileSync(this.path(id, 'events.jsonl'), `${JSON.stringify(event)}\n`);
  }

  /** Also appends any event of the result not appended live, so a run without onEvent keeps its history. */
  async finishExecution(id: string, result: ExecutionResult): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no execution "${id}" in ${this.dir}`);
    const stored = await this.readEvents(id);
    const lastId = stored.at(-1)?.id ?? 0;
    for (const event of result.events) if (event.id > lastId) this.appendEvent(id, event);
    await this.writeMeta({
      ...meta,
      // The execution started at its ExecutionStarted event, not when its record was created.
      ...(result.startDate && { startDate: result.startDate }),
      status: result.status,
      stopDate: result.stopDate,
      ...(result.output !== undefined && { output: result.output }),
      ...(result.error && { error: result.error }),
    });
  }

  async getExecution(id: string): Promise<StoredExecution | null> {
    const meta = await this.readMeta(id);
    return meta && { ...meta, events: await this.readEvents(id) };
  }

  /** Newest first, without events. */
  async listExecutions(): Promise<ExecutionSummary[]> {
    const ids = await readdir(this.dir).catch(() => [] as string[]);
    const metas = await Promise.all(
      ids.filter((id) => ID.test(id)).map((id) => this.readMeta(id).catch(() => null)),
    );
    return metas
      .filter((meta): meta is ExecutionSummary => meta !== null)
      .sort((a, b) => b.startDate.localeCompare(a.startDate) || b.executionId.localeCompare(a.executionId));
  }

  /** The stored record with its owner, for rewriting it. */
  private async readOwned(id: string): Promise<ExecutionFile> {
    return JSON.parse(await readFile(this.path(id, 'execution.json'), 'utf8')) as ExecutionFile;
  }

  private async readMeta(id: string): Promise<ExecutionSummary | null> {
    let meta: ExecutionFile;
    try {
      meta = JSON.parse(await readFile(this.path(id, 'execution.json'), 'utf8')) as ExecutionFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const { owner, ...summary } = meta;
    if (summary.status === 'RUNNING' && owner?.host === hostname() && !alive(owner.pid)) {
      return { ...summary, status: 'ABORTED' };
    }
    return summary;
  }

  /** A line still being written by the running process has no newline yet: it is left out. */
  private async readEvents(id: string): Promise<HistoryEvent[]> {
    const text = await readFile(this.path(id, 'events.jsonl'), 'utf8').catch(() => '');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    return complete
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as HistoryEvent);
  }
}
