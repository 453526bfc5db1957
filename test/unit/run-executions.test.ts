import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ExecutionState,
  executionBaseName,
  executionName,
  startRunExecution,
} from '../../lambdas/core/workflow/run-executions.ts';
import { ExecutionStore } from '../../local/execution-store.ts';

/** Executions named by run id: one execution of a run id at a time, re-runs only after a failure. */
describe('execution names', () => {
  it('are the run id when Step Functions (and its log delivery) accept it, attempts after `_`', () => {
    expect(executionName('run-20261201T000000Z-abc123', 1)).toBe('run-20261201T000000Z-abc123');
    expect(executionName('nightly', 3)).toBe('nightly_3');
  });

  it('never share a name between run ids, and fit 80 characters of [A-Za-z0-9_-]', () => {
    const names = ['a.b', 'a-b', 'a_b', 'x'.repeat(128), `${'x'.repeat(127)}y`].map(executionBaseName);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) {
      expect(executionName(name, 999).length).toBeLessThanOrEqual(80);
      expect(name).toMatch(/^[A-Za-z0-9-]+$/); // `_` is left to the attempt
    }
  });
});

/** A state machine that refuses taken names, as Step Functions does. */
function fakeService(initial: Record<string, ExecutionState> = {}) {
  const executions = new Map(Object.entries(initial));
  return {
    executions,
    starter: {
      start: async (name: string) => {
        if (executions.has(name)) return false;
        executions.set(name, 'RUNNING');
        return true;
      },
      status: async (name: string) => executions.get(name) ?? null,
    },
  };
}

describe('startRunExecution', () => {
  it('starts the first execution of a run id', async () => {
    const { starter, executions } = fakeService();
    expect(await startRunExecution(starter, 'r')).toEqual({ outcome: 'started', name: 'r', attempt: 1 });
    expect([...executions.keys()]).toEqual(['r']);
  });

  it('reports a running or applied run id instead of starting it again', async () => {
    const running = fakeService({ r: 'FAILED', r_2: 'RUNNING' });
    expect(await startRunExecution(running.starter, 'r')).toMatchObject({
      outcome: 'already-running',
      name: 'r_2',
    });
    const applied = fakeService({ r: 'SUCCEEDED' });
    expect(await startRunExecution(applied.starter, 'r')).toMatchObject({
      outcome: 'already-applied',
      name: 'r',
    });
    expect(running.executions.size + applied.executions.size).toBe(3); // nothing started
  });

  it('starts the next attempt once every earlier one failed, timed out or was aborted', async () => {
    const { starter } = fakeService({ r: 'FAILED', r_2: 'TIMED_OUT', r_3: 'ABORTED' });
    expect(await startRunExecution(starter, 'r')).toEqual({ outcome: 'started', name: 'r_4', attempt: 4 });
  });
});

describe('the local execution store as a starter', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'run-executions-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lets one of two simultaneous starts of a run id through', async () => {
    const store = new ExecutionStore(dir);
    const starter = store.starter(() => ({ runId: 'twice', input: {}, startDate: new Date().toISOString() }));
    const outcomes = await Promise.all([
      startRunExecution(starter, 'twice'),
      startRunExecution(starter, 'twice'),
    ]);
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['already-running', 'started']);
    expect((await store.listExecutions()).map((e) => e.executionId)).toEqual(['twice']);
  });
});
