import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real servers (Chroma is a native child process): two cores, keep it to two files at once.
    maxWorkers: 2,
    pool: 'forks',
    // Every local stack a test starts (the CLI's detached ones too) stops once this runner is gone.
    env: { EMBEDFLOW_STACK_WATCH_PID: String(process.pid) },
  },
});
