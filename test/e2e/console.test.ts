import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsExecutionSource } from '../../local/console/aws-source.ts';
import { type ConsoleServer, startConsoleServer } from '../../local/console/server.ts';
import { ExecutionStore } from '../../local/execution-store.ts';
import { CLI, useCliDataDir } from '../helpers/cli.ts';
import { writeInputDir } from '../helpers/input-dir.ts';

/**
 * The execution console end to end: real runs through the CLI (one that succeeds, one that fails on
 * a malformed delta line), the console server in-process, and the page driven in headless Chromium.
 * UPDATE_CONSOLE_SCREENSHOTS=1 writes the screenshots to docs/; otherwise they go to the temp data
 * directory, so a test run leaves the working tree alone.
 */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// In CI the browser part must run (CI installs chromium); elsewhere a missing browser only skips it.
const runBrowser = existsSync(CHROMIUM) || Boolean(process.env.CI);
if (!runBrowser) {
  console.warn(`console.test.ts: browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);
}

const data = useCliDataDir('console');
const runs = { succeeded: '', failed: '' };
let server: ConsoleServer;
const url = (path: string) => new URL(path, server.url).toString();
const getJson = async (path: string): Promise<any> => (await fetch(url(path))).json();
const screenshotPath = (name: string) =>
  process.env.UPDATE_CONSOLE_SCREENSHOTS
    ? join(import.meta.dirname, '..', '..', 'docs', name)
    : join(data.dataDir, name);

beforeAll(async () => {
  const demo = await data.cli([
    'run',
    '--demo',
    ...['--records-per-delta', '4', '--dim', '16', '--words-deltas', '20', '--lines-deltas', '10'],
    '--json',
  ]);
  expect(demo.code, demo.stderr).toBe(0);
  runs.succeeded = demo.json.executionId;

  const good = JSON.stringify({ id: 'ok', embedding: Array.from({ length: 16 }, (_, i) => i / 16) });
  const badInput = await writeInputDir({
    'words/delta-0000.jsonl': `${good}\n{"id": "b", "embedding": [1,\n`,
  });
  const failed = await data.cli(['run', '--input', badInput, '--json']);
  expect(failed.code, failed.stderr).toBe(1);
  runs.failed = failed.json.executionId;

  server = await startConsoleServer({ dataDir: data.dataDir, port: 0 });
});

afterAll(async () => {
  await server?.close();
});

const AWS_STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:EmbeddingMerge';
const AWS_EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:EmbeddingMerge:run-7-abc';
const AWS_INPUT = {
  runId: 'run-7',
  collections: [{ name: 'words', deltaPrefix: 'runs/run-7/input/words/' }],
};
const at = (second: number) => new Date(Date.UTC(2026, 10, 22, 12, 0, second));

/** GetExecutionHistory of a run in PrepareCollections whose first Lambda call was retried once. */
function awsHistory(): HistoryEvent[] {
  const input = JSON.stringify(AWS_INPUT);
  const failure = { error: 'ThrottlingException', cause: 'rate exceeded' };
  const events: Omit<HistoryEvent, 'id' | 'timestamp'>[] = [
    { type: 'ExecutionStarted', executionStartedEventDetails: { input } },
    { type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'ReadRunManifest', input } },
    { type: 'LambdaFunctionScheduled' },
    { type: 'LambdaFunctionFailed', lambdaFunctionFailedEventDetails: failure },
    { type: 'LambdaFunctionScheduled' },
    { type: 'LambdaFunctionSucceeded', lambdaFunctionSucceededEventDetails: { output: input } },
    { type: 'TaskStateExited', stateExitedEventDetails: { name: 'ReadRunManifest', output: input } },
    { type: 'MapStateEntered', stateEnteredEventDetails: { name: 'PrepareCollections', input } },
  ];
  // One linear chain: each event follows the one before it, as in a history without branches.
  return events.map((event, i) => ({
    id: i + 1,
    ...(i > 0 && { previousEventId: i }),
    timestamp: at(i),
    ...event,
  }));
}

describe('console API', () => {
  it('lists both runs with status, duration and collections', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const listed = await getJson('/api/executions');
    const byId = new Map(listed.executions.map((e: any) => [e.executionId, e]));
    expect(byId.get(runs.succeeded)).toMatchObject({ status: 'SUCCEEDED', collections: ['lines', 'words'] });
    expect(byId.get(runs.failed)).toMatchObject({ status: 'FAILED', collections: ['words'] });
    expect((byId.get(runs.succeeded) as any).durationMs).toBeGreaterThan(0);
  });

  it('derives state statuses, Map iterations and the run summary', async () => {
    const { execution } = await getJson(`/api/executions/${runs.succeeded}`);
    expect(execution.states.FinalMerge).toMatchObject({ status: 'succeeded', visits: 2 });
    expect(execution.states.IntermediateMerges).toBeUndefined();
    // 20 words deltas in chunks of 15 and 10 lines deltas in one chunk: 3 chunk iterations.
    expect(execution.mapIterations.ProcessChunks).toEqual({
      done: 3,
      failed: 0,
      aborted: 0,
      running: 0,
      total: 3,
    });
    expect(execution.summary.find((c: { collection: string }) => c.collection === 'words')).toMatchObject({
      chunks: 2,
      intermediateMerges: 0,
      shortCircuit: false,
      previousVersion: 0,
      snapshotVersion: 1,
      casRetries: 0,
    });
    const failed = (await getJson(`/api/executions/${runs.failed}`)).execution;
    expect(failed.states.ProcessChunk.status).toBe('failed');
    expect(failed.states.PrepareCollections.status).toBe('caught');
    expect(failed.states.ProcessChunk.lastError.cause).toContain('words/delta-0000.jsonl line 2');
  });

  it('answers an unknown execution with a 404, as JSON and as a page', async () => {
    const api = await fetch(url('/api/executions/no-such-execution'));
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ error: 'ExecutionNotFound' });
    const page = await fetch(url('/executions/no-such-execution'));
    expect(page.status).toBe(404);
    expect(await page.text()).toContain('Execution not found');
    expect((await fetch(url('/api/executions/..'))).status).toBe(404);
  });

  it('never sends a vector to the page', async () => {
    const store = new ExecutionStore(join(data.dataDir, 'executions'));
    const input = { runId: 'vectors', probe: { id: 'x', embedding: [0.25, 0.5, 0.75] } };
    await store.createExecution({ executionId: 'vectors-0001', input, startDate: new Date().toISOString() });
    store.appendEvent('vectors-0001', {
      id: 1,
      type: 'ExecutionStarted',
      timestamp: new Date().toISOString(),
      previousEventId: 0,
      input,
    });
    const text = await (await fetch(url('/api/executions/vectors-0001'))).text();
    expect(text).toContain('[3 values hidden]');
    expect(text).not.toContain('0.75');
  });

  it('shows a deployed state machine through the AWS source', async () => {
    const sfn = mockClient(SFNClient);
    const history = awsHistory();
    sfn.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: AWS_EXECUTION,
          stateMachineArn: AWS_STATE_MACHINE,
          name: 'run-7-abc',
          status: 'RUNNING',
          startDate: at(0),
        },
      ],
    });
    sfn.on(DescribeExecutionCommand).resolves({
      executionArn: AWS_EXECUTION,
      name: 'run-7-abc',
      status: 'RUNNING',
      startDate: at(0),
      input: JSON.stringify(AWS_INPUT),
    });
    sfn.on(GetExecutionHistoryCommand).callsFake((request) => ({
      events: request.reverseOrder ? [...history].reverse().slice(0, request.maxResults) : history,
    }));
    sfn.on(DescribeStateMachineCommand).resolves({
      definition: readFileSync(
        join(import.meta.dirname, '..', '..', 'statemachines', 'embedding-merge.asl.json'),
        'utf8',
      ),
    });
    const source = new AwsExecutionSource(AWS_STATE_MACHINE, new SFNClient({ region: 'eu-west-1' }));
    const aws = await startConsoleServer({ dataDir: data.dataDir, port: 0, source });
    try {
      const listed: any = await (await fetch(new URL('/api/executions', aws.url))).json();
      expect(listed.executions).toEqual([expect.objectContaining({ name: 'run-7-abc', status: 'RUNNING' })]);
      const shown: any = await (
        await fetch(new URL(`/api/executions/${encodeURIComponent(AWS_EXECUTION)}`, aws.url))
      ).json();
      expect(shown.execution).toMatchObject({ runId: 'run-7', collections: ['words'] });
      // The Lambda failed once and was retried: the state still succeeded.
      expect(shown.execution.states.ReadRunManifest.status).toBe('succeeded');
      expect(shown.execution.states.PrepareCollections.status).toBe('running');
      expect(shown.execution.mapIterations.PrepareCollections.total).toBe(1);
      const otherMachine = AWS_EXECUTION.replace('EmbeddingMerge', 'Other');
      expect(
        (await fetch(new URL(`/api/executions/${encodeURIComponent(otherMachine)}`, aws.url))).status,
      ).toBe(404);
    } finally {
      await aws.close();
      sfn.restore();
    }
  });
});

describe.skipIf(!runBrowser)('console page in Chromium', () => {
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('lists the succeeded and the failed execution', async () => {
    await page.goto(url('/'));
    await page.waitForSelector(`tr[data-execution-id="${runs.succeeded}"][data-status="SUCCEEDED"]`);
    await page.waitForSelector(`tr[data-execution-id="${runs.failed}"][data-status="FAILED"]`);
  });

  it('shows a succeeded run: every state on its path green, iterations, summary, expandable events', async () => {
    await page.goto(url(`/executions/${runs.succeeded}`));
    await page.waitForSelector('[data-state="FinalMerge"][data-status="succeeded"]');
    for (const name of ['ReadRunManifest', 'PrepareCollections', 'ProcessChunk', 'Cleanup', 'Summarize']) {
      expect(await page.getAttribute(`[data-state="${name}"]`, 'data-status'), name).toBe('succeeded');
    }
    expect(await page.getAttribute('[data-state="MergeGroup"]', 'data-status')).toBe('not-started');
    expect(await page.textContent('[data-state="ProcessChunks"] .annotation')).toMatch(/^3\/3 done · /);
    expect(await page.textContent('#run-summary tr[data-collection="words"]')).toContain('v0 → v1');
    // Selecting a state narrows the history to it; a row expands to its input and output.
    await page.click('[data-state="FinalMerge"]');
    await page.waitForSelector('[data-selected-state="FinalMerge"]');
    const shownSteps = await page.$$eval('#event-history tr.event-row:not([hidden])', (rows) =>
      rows.map((row) => row.getAttribute('data-state')),
    );
    expect(new Set(shownSteps)).toEqual(new Set(['FinalMerge']));
    await page.click('#event-history tr[data-type="LambdaFunctionSucceeded"][data-state="FinalMerge"]');
    expect(await page.textContent('#event-history .event-details')).toContain('snapshotVersion');
    await page.evaluate('window.scrollTo(0, 0)'); // the sticky side panel then sits at the top
    await page.screenshot({ path: screenshotPath('console.png'), fullPage: true });
  });

  it('shows a failed run: ProcessChunk red and the cause naming the file and line', async () => {
    await page.goto(url(`/executions/${runs.failed}`));
    await page.waitForSelector('[data-state="ProcessChunk"][data-status="failed"]');
    expect(await page.getAttribute('[data-state="PrepareCollections"]', 'data-status')).toBe('caught');
    expect(await page.getAttribute('[data-state="FinalMerge"]', 'data-status')).toBe('not-started');
    expect(await page.textContent('#execution-error')).toContain('words/delta-0000.jsonl line 2');
    expect(await page.textContent('[data-failed-state="ProcessChunk"]')).toContain('malformed JSON');
    await page.click('[data-state="ProcessChunk"]');
    await page.click('#event-history tr[data-type="LambdaFunctionFailed"]');
    expect(await page.textContent('#event-history .event-details')).toContain('BadInputError');
    await page.evaluate('window.scrollTo(0, 0)'); // the sticky side panel then sits at the top
    await page.screenshot({ path: screenshotPath('console-failed.png'), fullPage: true });
  });

  it('says plainly when an execution does not exist', async () => {
    const response = await page.goto(url('/executions/no-such-execution'));
    expect(response?.status()).toBe(404);
    expect(await page.textContent('[data-view="not-found"]')).toContain('Execution not found');
  });

  it('follows a run in flight without a reload', async () => {
    // A run written the way `embedflow run` writes one, advanced step by step by the test.
    const store = new ExecutionStore(join(data.dataDir, 'executions'));
    const executionId = 'live-run-0001';
    const input = {
      runId: 'live-run',
      collections: [{ name: 'words', deltaPrefix: 'runs/live-run/input/words/' }],
    };
    const startDate = new Date().toISOString();
    await store.createExecution({ executionId, runId: 'live-run', input, startDate });
    let id = 0;
    const append = (event: Record<string, unknown>) =>
      store.appendEvent(executionId, { id: ++id, timestamp: new Date().toISOString(), ...event } as never);
    append({ type: 'ExecutionStarted', input });
    append({ type: 'TaskStateEntered', stateName: 'ReadRunManifest', input });

    await page.goto(url(`/executions/${executionId}`));
    await page.waitForSelector('[data-state="ReadRunManifest"][data-status="running"]');

    append({ type: 'TaskStateExited', stateName: 'ReadRunManifest', output: input });
    append({ type: 'MapStateEntered', stateName: 'PrepareCollections', input });
    await page.waitForSelector('[data-state="ReadRunManifest"][data-status="succeeded"]');
    await page.waitForSelector('[data-state="PrepareCollections"][data-status="running"]');
    await page.waitForSelector('#event-history tr[data-event-id="4"]');
    expect(await page.textContent('[data-state="PrepareCollections"] .annotation')).toMatch(/^0\/1 done/);

    append({ type: 'MapStateExited', stateName: 'PrepareCollections', output: input });
    append({ type: 'ExecutionSucceeded', output: { runId: 'live-run', collections: [] } });
    await store.finishExecution(executionId, {
      status: 'SUCCEEDED',
      output: { runId: 'live-run', collections: [] },
      events: [],
      startDate,
      stopDate: new Date().toISOString(),
    });
    await page.waitForSelector('.execution-header[data-status="SUCCEEDED"]');
    expect(await page.getAttribute('[data-state="PrepareCollections"]', 'data-status')).toBe('succeeded');
    expect(await page.$$eval('#event-history tr.event-row', (rows) => rows.length)).toBe(6);
  });

  it('raised no script errors', () => {
    expect(pageErrors).toEqual([]);
  });
});

describe('embedflow console (the command)', () => {
  it('prints its loopback URL, serves the executions, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'console', '--port', '0', '--data-dir', data.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const printed = new Promise<string>((resolveUrl, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /http:\/\/127\.0\.0\.1:\d+\//.exec(stderr);
        if (match) resolveUrl(match[0]);
      });
      child.on('exit', () => reject(new Error(`console exited early: ${stderr}`)));
    });
    const consoleUrl = await printed;
    const listed: any = await (await fetch(new URL('/api/executions', consoleUrl))).json();
    expect(listed.executions.map((e: { executionId: string }) => e.executionId)).toContain(runs.succeeded);
    const exited = new Promise<number | null>((resolveCode) => child.on('exit', resolveCode));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('rejects a malformed --state-machine-arn with exit code 2, naming the flag', async () => {
    const result = await data.cli(['console', '--port', '0', '--state-machine-arn', 'not-an-arn']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--state-machine-arn "not-an-arn"');
  });
});
