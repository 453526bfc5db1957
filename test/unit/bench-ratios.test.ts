import { describe, expect, it } from 'vitest';
import type { ScenarioResult } from '../../bench/harness.ts';
import { SHARED_LABEL } from '../../bench/publish-scenarios.ts';
import { ratios } from '../../bench/run-bench.ts';

const contentionRow = (variant: string, writers: number, totalMs: number): ScenarioResult => ({
  name: 'contention',
  variant,
  params: { writers, recordsPerRun: 500, snapshotRecords: 20_000, dimension: 128 },
  metrics: { recordsPerSecond: (writers * 500) / (totalMs / 1000), totalMs },
});

describe('bench headline ratios', () => {
  it('bounds the 4-run contention ratio by one run plus Chroma inserting the other three', () => {
    const measured = ratios([
      contentionRow('two-phase', 1, 800),
      contentionRow('two-phase', 4, 2000),
      contentionRow('single-phase', 4, 4000),
      contentionRow('chroma-insert', 1, 400),
      contentionRow('chroma-insert', 4, 1400),
    ]);
    expect(measured.throughput4RunsTwoPhaseOverSinglePhase).toBe(2);
    // 4000 / (800 + 1400 - 400)
    expect(measured.throughput4RunsBound).toBe(2.222);
  });

  it('reads the headline from the runs in their own environments, the shared process apart', () => {
    const measured = ratios([
      contentionRow('two-phase', 4, 2000),
      contentionRow('single-phase', 4, 6000),
      contentionRow(`two-phase, ${SHARED_LABEL}`, 4, 1500),
      contentionRow(`single-phase, ${SHARED_LABEL}`, 4, 3000),
    ]);
    expect(measured.throughput4RunsTwoPhaseOverSinglePhase).toBe(3);
    expect(measured.throughput4RunsSharedProcess).toBe(2);
  });
});
