import { defineConfig } from 'vitest/config';

/**
 * The chaos suite (`npm run test:chaos`, see test/chaos/run.mjs): launchers as separate processes
 * killed with real signals, each file on a PostgreSQL server of its own. One file at a time: each
 * one saturates the 2-core machine by itself. Waits are on rows and events, with limits on
 * progress rather than on time, so the limits here are only a backstop.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
