import { appendFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionResult, HistoryEvent } from './asl-runner.ts';

/**
 * Executions on disk: `<dir>/<executionId>/execution.json` (written atomically) and
 * `events.jsonl` (appended as events happen, so another process can follow a run live).
 */
export interface ExecutionMeta {
  executionId: string;
  runId?: string;
  input: unknown;
  startDate: string;
}

export interface StoredExecution extends ExecutionMeta {
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  stopDate?: string;
  output?: unknown;
  error?: { name: string; message: string };
  events: HistoryEvent[];
}

type ExecutionFile = Omit<StoredExecution, 'events'>;

export class ExecutionStore {
  constructor(readonly dir: string) {}

  private path(id: string, file: string): string {
    if (!/^[A-Za-z0-9._:-]+$/.test(id)) throw new Error(`invalid execution id "${id}"`);
    return join(this.dir, id, file);
  }

  private async writeMeta(meta: ExecutionFile): Promise<void> {
    const target = this.path(meta.executionId, 'execution.json');
    const temp = `${target}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(meta, null, 2));
    await rename(temp, target);
  }

  async createExecution(meta: ExecutionMeta): Promise<void> {
    await mkdir(join(this.dir, meta.executionId), { recursive: true });
    await writeFile(this.path(meta.executionId, 'events.jsonl'), '');
    await this.writeMeta({ ...meta, status: 'RUNNING' });
  }

  /** Synchronous on purpose: events stay in order without a queue, and each is one small line. */
  appendEvent(id: string, event: HistoryEvent): void {
    appendFileSync(this.path(id, 'events.jsonl'), `${JSON.stringify(event)}\n`);
  }

  async finishExecution(id: string, result: ExecutionResult): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no execution ${id}`);
    await this.writeMeta({
      ...meta,
      status: result.status,
      stopDate: result.stopDate,
      ...(result.output !== undefined && { output: result.output }),
      ...(result.error && { error: result.error }),
    });
  }

  private async readMeta(id: string): Promise<ExecutionFile | null> {
    try {
      return JSON.parse(await readFile(this.path(id, 'execution.json'), 'utf8')) as ExecutionFile;
    } catch {
      return null;
    }
  }

  async getExecution(id: string): Promise<StoredExecution | null> {
    const meta = await this.readMeta(id);
    if (!meta) return null;
    const text = await readFile(this.path(id, 'events.jsonl'), 'utf8').catch(() => '');
    const events = text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as HistoryEvent);
    return { ...meta, events };
  }

  /** Newest first. */
  async listExecutions(): Promise<ExecutionFile[]> {
    const ids = await readdir(this.dir).catch(() => [] as string[]);
    const metas = await Promise.all(ids.map((id) => this.readMeta(id).catch(() => null)));
    return metas
      .filter((meta): meta is ExecutionFile => meta !== null)
      .sort((a, b) => b.startDate.localeCompare(a.startDate));
  }
}
