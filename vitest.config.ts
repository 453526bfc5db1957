import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real servers (Chroma is a native child process): two cores, keep it to two files at once.
    maxWorkers: 2,
    pool: 'forks',
    // Node 20 is the target; the SDK's notice about its releases after January 2027 is noise in test logs.
    // Every local stack a test starts (the CLI's detached ones too) stops once this runner is gone.
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      EMBEDFLOW_STACK_WATCH_PID: String(process.pid),
    },
  },
});
