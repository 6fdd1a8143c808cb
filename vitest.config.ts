import { defineConfig } from 'vitest/config';

/**
 * Tests run against the BUILT package (`dist/`), because the children they fork load compiled
 * JavaScript; `npm test` builds first. Each project's global setup (test/global-setup.ts) finds
 * a PostgreSQL server and migrates a template database that test files clone.
 *
 * Two projects: `main` holds every ordinary test; `load` (launchers sharing a table over
 * thousands of tasks) saturates the machine, so it runs alone, after `main`.
 */
const loadTests = ['test/launcher/multi-launcher.test.ts'];
// The chaos suite has a config of its own (vitest.chaos.config.ts, `npm run test:chaos`).
const chaosTests = ['test/chaos/**'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    // Real PostgreSQL and real forked processes: generous limits, never relied on for waiting.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    pool: 'forks',
    // Two cores, and tests fork many processes of their own: two files at a time at most.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default', 'json'],
    outputFile: { json: 'tmp/vitest-report.json' },
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: [...loadTests, ...chaosTests],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'load', include: loadTests, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
