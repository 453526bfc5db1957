import { writeFile } from 'node:fs/promises';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { ScenarioResult } from './harness.ts';

/** Renders a Vega-Lite chart to PNG (vega → SVG → resvg): no browser, no network. */
async function renderPng(spec: vegaLite.TopLevelSpec, path: string): Promise<void> {
  const compiled = vegaLite.compile(spec).spec;
  const svg = await new vega.View(vega.parse(compiled), { renderer: 'none' }).toSVG();
  await writeFile(
    path,
    new Resvg(svg, { fitTo: { mode: 'width', value: 900 }, background: 'white' }).render().asPng(),
  );
}

const rowsOf = (scenarios: ScenarioResult[], name: string) =>
  scenarios.filter((s) => s.name === name).map((s) => ({ variant: s.variant, ...s.params, ...s.metrics }));

/** One PNG per scenario; returns the file names written under `dir`. */
export async function renderCharts(
  scenarios: ScenarioResult[],
  dir: string,
): Promise<Record<string, string>> {
  const charts: Record<string, string> = {};
  const bar = (
    name: string,
    file: string,
    x: string,
    y: string,
    title: string,
    xType: 'ordinal' | 'nominal' = 'ordinal',
  ) =>
    renderPng(
      {
        title,
        data: { values: rowsOf(scenarios, name) },
        mark: 'bar',
        encoding: {
          // Variant names are long: the legend names them, the axis would overlap them.
          x: { field: x, type: xType, axis: x === 'variant' ? { labels: false } : { labelAngle: 0 } },
          // Bars side by side per x value; when x is the variant itself there is one bar per x.
          ...(x !== 'variant' && { xOffset: { field: 'variant' } }),
          y: { field: y, type: 'quantitative' },
          color: { field: 'variant', type: 'nominal', legend: { labelLimit: 300 } },
        },
        width: 360,
        height: 220,
      } as vegaLite.TopLevelSpec,
      `${dir}/${file}`,
    ).then(() => {
      charts[name] = file;
    });
  await bar(
    'lock-hold',
    'bench-lock-hold.png',
    'snapshotRecords',
    'lockHoldP50Ms',
    'Lock held per publish (p50 ms) by snapshot size',
  );
  await bar(
    'contention',
    'bench-contention.png',
    'writers',
    'recordsPerSecond',
    'Records/s with N concurrent runs',
  );
  await bar(
    'merge-pipeline',
    'bench-merge-pipeline.png',
    'deltas',
    'wallMs',
    'Merge pipeline wall time (ms) by deltas',
  );
  await bar(
    'chunk-sweep',
    'bench-chunk-sweep.png',
    'variant',
    'totalMs',
    'Run time (ms) by chunk / group size',
    'nominal',
  );
  await bar(
    'stream',
    'bench-stream.png',
    'variant',
    'streamLockHoldP99Ms',
    'Stream publish lock hold (p99 ms), alone and under batch runs',
    'nominal',
  );
  return charts;
}
