import type { Clock } from '../../../lambdas/core/protocol/ports.ts';

/**
 * Clocks for protocol tests. ManualClock: time moves only when the test says so, and sleepers
 * wake when it passes their deadline. FastClock: real scheduling with time running `scale` times
 * faster (a 60 s lease lasts 60 ms), plus an optional skew; for races, where the interleaving
 * should come from real concurrency.
 */
export class ManualClock implements Clock {
  private sleepers: { until: number; wake: () => void }[] = [];

  constructor(private time = 1_800_000_000_000) {}

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const sleeper = { until: this.time + Math.max(0, ms), wake: resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((other) => other !== sleeper);
          resolve();
        },
        { once: true },
      );
    });
  }

  /** Moves time forward in steps, waking each sleeper at its deadline and letting it run. */
  async advance(ms: number, stepMs = Math.max(1, ms / 100)): Promise<void> {
    const end = this.time + ms;
    while (this.time < end) {
      this.time = Math.min(end, this.time + stepMs);
      await this.wakeDue();
    }
  }

  /** Wakes sleepers due now and waits for the work they start (a few event-loop turns). */
  async wakeDue(): Promise<void> {
    for (let turn = 0; turn < 20; turn++) {
      const due = this.sleepers.filter((sleeper) => sleeper.until <= this.time);
      this.sleepers = this.sleepers.filter((sleeper) => sleeper.until > this.time);
      for (const sleeper of due) sleeper.wake();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

export class FastClock implements Clock {
  private readonly origin = performance.now();

  constructor(
    private readonly scale = 1000,
    private readonly skewMs = 0,
    private readonly epoch = 1_800_000_000_000,
  ) {}

  now(): number {
    return this.epoch + (performance.now() - this.origin) * this.scale + this.skewMs;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms / this.scale));
      signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** The same time source seen from a machine whose clock is `skewMs` off. */
  skewed(skewMs: number): FastClock {
    const clock = new FastClock(this.scale, this.skewMs + skewMs, this.epoch);
    (clock as unknown as { origin: number }).origin = this.origin;
    return clock;
  }
}
