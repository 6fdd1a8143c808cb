import { defineConfig } from 'vitest/config';

/**
 * `npm run test:install`: the package as users get it, slow because it runs npm itself. The
 * quick start from a clone in a mode-700 directory (as root and as another user), and a
 * pack-and-install into a new project. These tests run against the built package and start
 * their own servers: no global setup. One file at a time: each runs npm and a whole build.
 */
export default defineConfig({
  test: {
    include: ['test/install/**/*.install.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
