import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../../local/asl-runner.ts';
import { type ConsoleServer, startConsoleServer } from '../../local/console/server.ts';
import { ExecutionStore } from '../../local/execution-store.ts';
import { browserAvailable, launchChromium } from '../helpers/browser.ts';

/**
 * The console's layout in Chromium: the graph fits the window (zoom to fit, the box scrolls for the
 * rest), a Choice's edges never cross and their labels sit clear of other edges, a failed Map counts
 * its aborted iterations apart from the failed one, and the executions list shows each error.
 * Executions are written into the store the way `embedflow run` writes them.
 */
const runBrowser = browserAvailable('console-layout.test.ts');
const FAILED = 'failed-map-0001';
const SUCCEEDED = 'quiet-run-0001';
const CAUSE = 'words/delta-0003.jsonl line 2: malformed JSON (Unexpected end of JSON input)';

let dataDir: string;
let server: ConsoleServer;
const url = (path: string) => new URL(path, server.url).toString();

/** A history event as the tests write it: ids and timestamps are filled in, each event following the one before. */
type DraftEvent = Omit<HistoryEvent, 'id' | 'timestamp' | 'previousEventId'> & { previousEventId?: number };

async function writeExecution(
  store: ExecutionStore,
  executionId: string,
  events: DraftEvent[],
  outcome: { status: 'SUCCEEDED' | 'FAILED'; error?: { name: string; message: string } },
) {
  const input = { runId: executionId, collections: [{ name: 'words', deltaPrefix: 'runs/x/input/words/' }] };
  const startDate = new Date().toISOString();
  await store.createExecution({ executionId, runId: executionId, input, startDate });
  for (const [index, event] of events.entries()) {
    store.appendEvent(executionId, {
      id: index + 1,
      previousEventId: index,
      timestamp: new Date().toISOString(),
      ...event,
    });
  }
  await store.finishExecution(executionId, {
    ...outcome,
    events: [],
    startDate,
    stopDate: new Date().toISOString(),
  });
}

/** A ProcessChunks Map of 4 chunks: chunk 0 done, chunk 1 failed, chunks 2 and 3 aborted by it. */
function failedMapEvents(): DraftEvent[] {
  const chunks = { chunks: [0, 1, 2, 3] };
  const iteration = (type: string, index: number, extra: Partial<HistoryEvent> = {}) => ({
    type,
    stateName: 'ProcessChunks',
    mapIterationIndex: index,
    ...extra,
  });
  const chunk = (type: string, index: number, extra: Partial<HistoryEvent> = {}) => ({
    type,
    stateName: 'ProcessChunk',
    mapIterationIndex: index,
    ...extra,
  });
  return [
    { type: 'ExecutionStarted' },
    { type: 'MapStateEntered', stateName: 'PrepareCollections', input: { collections: ['words'] } },
    { type: 'MapStateEntered', stateName: 'ProcessChunks', input: chunks },
    ...[0, 1, 2, 3].flatMap((index) => [
      iteration('MapIterationStarted', index),
      chunk('TaskStateEntered', index),
    ]),
    chunk('TaskStateExited', 0),
    iteration('MapIterationSucceeded', 0),
    chunk('TaskFailed', 1, { error: 'BadInputError', cause: CAUSE }),
    iteration('MapIterationFailed', 1, { error: 'BadInputError', cause: CAUSE }),
    iteration('MapIterationAborted', 2),
    iteration('MapIterationAborted', 3),
    { type: 'MapStateFailed', stateName: 'ProcessChunks', error: 'BadInputError', cause: CAUSE },
    { type: 'ExecutionFailed', error: 'BadInputError', cause: CAUSE },
  ];
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'embedflow-console-layout-'));
  const store = new ExecutionStore(join(dataDir, 'executions'));
  await writeExecution(store, FAILED, failedMapEvents(), {
    status: 'FAILED',
    error: { name: 'BadInputError', message: CAUSE },
  });
  await writeExecution(store, SUCCEEDED, [{ type: 'ExecutionStarted' }, { type: 'ExecutionSucceeded' }], {
    status: 'SUCCEEDED',
  });
  server = await startConsoleServer({ dataDir, port: 0 });
});

afterAll(async () => {
  await server?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('console API', () => {
  it('counts aborted Map iterations apart from failed ones', async () => {
    const { execution } = (await (await fetch(url(`/api/executions/${FAILED}`))).json()) as any;
    expect(execution.mapIterations.ProcessChunks).toEqual({
      done: 1,
      failed: 1,
      aborted: 2,
      running: 0,
      total: 4,
    });
  });

  it('lists each execution with its error', async () => {
    const listed = (await (await fetch(url('/api/executions'))).json()) as any;
    const byId = new Map(listed.executions.map((e: any) => [e.executionId, e]));
    expect((byId.get(FAILED) as any).error).toEqual({ name: 'BadInputError', message: CAUSE });
    expect((byId.get(SUCCEEDED) as any).error).toBeUndefined();
  });
});

type Box = { left: number; right: number; top: number; bottom: number };
type Drawn = { from: string; to: string; points: { x: number; y: number }[]; label?: Box };

// Functions run in the page: its DOM types are not in this project's (Node) type library.
type Dom = any;

/** Every drawn edge as sampled points in SVG coordinates, with its label's box. */
function drawnEdges(page: Page): Promise<Drawn[]> {
  return page.$$eval('path.edge', (paths) =>
    paths.map((path) => {
      const element = path as Dom;
      const from = element.dataset.from!;
      const to = element.dataset.to!;
      const length = element.getTotalLength();
      const points = Array.from({ length: 81 }, (_, i) => {
        const point = element.getPointAtLength((length * i) / 80);
        return { x: point.x, y: point.y };
      });
      const rect = [...(globalThis as Dom).document.querySelectorAll('rect.edge-label-bg')].find(
        (r: Dom) => r.dataset.from === from && r.dataset.to === to,
      ) as Dom;
      const label = rect && {
        left: rect.x.baseVal.value,
        right: rect.x.baseVal.value + rect.width.baseVal.value,
        top: rect.y.baseVal.value,
        bottom: rect.y.baseVal.value + rect.height.baseVal.value,
      };
      return { from, to, points, ...(label && { label }) };
    }),
  );
}

type Point = { x: number; y: number };
function segmentsCross(a: Point, b: Point, c: Point, d: Point): boolean {
  const side = (p: Point, q: Point, r: Point) =>
    Math.sign((q.x - p.x) * (r.y - p.y) - (q.y - p.y) * (r.x - p.x));
  return side(a, b, c) * side(a, b, d) < 0 && side(c, d, a) * side(c, d, b) < 0;
}
function pathsCross(first: Point[], second: Point[]): boolean {
  for (let i = 1; i < first.length; i++)
    for (let j = 1; j < second.length; j++)
      if (segmentsCross(first[i - 1]!, first[i]!, second[j - 1]!, second[j]!)) return true;
  return false;
}
const inside = (box: Box, p: Point) => p.x > box.left && p.x < box.right && p.y > box.top && p.y < box.bottom;
const overlap = (a: Box, b: Box) =>
  a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

describe.skipIf(!runBrowser)('console layout in Chromium', () => {
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows an error column in the executions list', async () => {
    await page.goto(url('/'));
    await page.waitForSelector(`tr[data-execution-id="${FAILED}"]`);
    expect(
      await page.$$eval('#executions thead th', (cells) => cells.map((cell) => cell.textContent)),
    ).toContain('Error');
    expect(await page.textContent(`tr[data-execution-id="${FAILED}"] td.error-cell`)).toBe(
      `BadInputError: ${CAUSE}`,
    );
    expect(await page.textContent(`tr[data-execution-id="${SUCCEEDED}"] td.error-cell`)).toBe('');
  });

  it('fits the graph to the window and scrolls its box for the rest', async () => {
    await page.goto(url(`/executions/${FAILED}`));
    await page.waitForSelector('#graph-viewport[data-scale]');
    const fitted = await page.$eval('#graph-viewport', (box) => {
      const rect = box.getBoundingClientRect();
      return {
        height: rect.height,
        windowHeight: (globalThis as Dom).innerHeight,
        scale: Number((box as Dom).dataset.scale),
        overflowX: box.scrollWidth - box.clientWidth,
        overflowY: box.scrollHeight - box.clientHeight,
      };
    });
    expect(fitted.height).toBeLessThanOrEqual(fitted.windowHeight);
    expect(fitted.scale).toBeLessThan(1); // the laid-out graph is wider and taller than the box
    expect(fitted.overflowX).toBeLessThanOrEqual(0); // never wider than its box
    expect(fitted.overflowY).toBeGreaterThan(0); // the rest is a scroll away
    // Scrolled to its end, the box shows the graph's last node.
    await page.$eval('#graph-viewport', (box) => box.scrollTo(0, box.scrollHeight));
    const endVisible = await page.$eval('#graph-viewport', (box) => {
      const end = [...box.querySelectorAll('.terminal')].find((node) => node.textContent === 'End')!;
      const [outer, inner] = [box.getBoundingClientRect(), end.getBoundingClientRect()];
      return inner.top >= outer.top && inner.bottom <= outer.bottom;
    });
    expect(endVisible).toBe(true);

    await page.click('#zoom-fit');
    const whole = await page.$eval('#graph-viewport', (box) => ({
      overflowX: box.scrollWidth - box.clientWidth,
      overflowY: box.scrollHeight - box.clientHeight,
    }));
    expect(whole).toEqual({ overflowX: 0, overflowY: 0 });
    const fitScale = Number(await page.getAttribute('#graph-viewport', 'data-scale'));
    await page.click('#zoom-in');
    expect(Number(await page.getAttribute('#graph-viewport', 'data-scale'))).toBeGreaterThan(fitScale);
    await page.click('#zoom-reset');
    expect(await page.textContent('#zoom-level')).toBe('100%');
  });

  it("never crosses a Choice's edges, and keeps every label clear of other edges and labels", async () => {
    await page.goto(url(`/executions/${FAILED}`));
    await page.waitForSelector('#graph-viewport[data-scale]');
    const edges = await drawnEdges(page);
    const choices = await page.$$eval('[data-type="Choice"]', (nodes) =>
      nodes.map((node) => (node as Dom).dataset.state as string),
    );
    expect(choices).toEqual(expect.arrayContaining(['SingleChunk?', 'MoreThanOneGroup?']));
    for (const choice of choices) {
      const out = edges.filter((edge) => edge.from === choice);
      expect(out.length, choice).toBeGreaterThanOrEqual(2);
      for (let i = 0; i < out.length; i++)
        for (let j = i + 1; j < out.length; j++)
          expect(pathsCross(out[i]!.points, out[j]!.points), `${choice}: ${out[i]!.to} × ${out[j]!.to}`).toBe(
            false,
          );
    }
    const labelled = edges.filter((edge) => edge.label);
    for (const edge of labelled) {
      for (const other of edges) {
        if (other === edge) continue;
        const hit = other.points.some((point) => inside(edge.label!, point));
        expect(hit, `label of ${edge.from} → ${edge.to} covers ${other.from} → ${other.to}`).toBe(false);
        if (other.label)
          expect(overlap(edge.label!, other.label), `labels ${edge.to} and ${other.to}`).toBe(false);
      }
    }
  });

  it('counts aborted iterations apart on the failed Map', async () => {
    await page.goto(url(`/executions/${FAILED}`));
    await page.waitForSelector('[data-state="ProcessChunks"][data-status="failed"]');
    expect(await page.textContent('[data-state="ProcessChunks"] .annotation')).toMatch(
      /^1\/4 done · 1 failed · 2 aborted/,
    );
  });

  it('raised no script errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
