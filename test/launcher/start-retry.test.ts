import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRunnerError } from '../../dist/index.js';
import { waitFor, waitForCompleted } from '../helpers/db.js';
import { startPrivateServer, type PrivateServer } from '../helpers/private-server.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * `runner.start()` with `startRetry`: it waits for a database that is down, and `stop()` ends the
 * wait; without it (the library's default) it fails at once (test/launcher/database-loss.test.ts).
 */
const runners = useTestRunners();
let server: PrivateServer;
beforeAll(async () => {
  server = await startPrivateServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

function recordingLogger() {
  const warnings: string[] = [];
  const ignore = (): void => undefined;
  return {
    warnings,
    logger: { debug: ignore, info: ignore, error: ignore, warn: (message: string) => void warnings.push(message) },
  };
}

describe('runner.start() with startRetry', () => {
  it(
    'waits for a database that is down, logging each try, and starts once it is up',
    { timeout: 120_000 },
    async () => {
      const { rows } = await server.pool.query<{ id: string }>(
        `INSERT INTO task_runner_requests (task_class_name, options) VALUES ('Echo', '--- {text: later}') RETURNING id::text AS id`,
      );
      await server.pause();
      let resumed = false;
      try {
        const { warnings, logger } = recordingLogger();
        const runner = runners.create({ url: server.url() }, { startRetry: { baseMs: 50, maxMs: 200 }, logger });
        const started = runner.start();
        // The logger's lines are what there is to wait on: no event exists for a failed try at start.
        await waitFor(() => warnings.length >= 2, { timeoutMs: 30_000, what: 'two logged retries' });
        expect(warnings[0]).toMatch(/the database cannot be used yet \(migrating the request table\): retrying/);
        await server.resume();
        resumed = true;
        await started;
        const row = await waitForCompleted(server.pool, rows[0]!.id, 30_000);
        expect(row).toMatchObject({ result: 'FINISHED', result_text: 'later' });
        await runner.stop();
      } finally {
        if (!resumed) await server.resume();
      }
    },
  );

  it('gives up when stop() is called while it waits, and after giveUpAfterMs', { timeout: 60_000 }, async () => {
    const waiting = runners.create({ url: 'postgres://root@127.0.0.1:1/x' }, { startRetry: { baseMs: 60_000 } });
    const started = waiting.start().then(
      () => null,
      (error: unknown) => error,
    );
    const begunAt = Date.now();
    await waiting.stop();
    const error = await started;
    expect(error).toBeInstanceOf(TaskRunnerError);
    expect((error as TaskRunnerError).code).toBe('DATABASE_UNAVAILABLE');
    expect(Date.now() - begunAt).toBeLessThan(10_000);

    const bounded = runners.create(
      { url: 'postgres://root@127.0.0.1:1/x' },
      { startRetry: { baseMs: 20, maxMs: 50, giveUpAfterMs: 300 } },
    );
    const gaveUp = await bounded.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect((gaveUp as TaskRunnerError).code).toBe('DATABASE_UNAVAILABLE');
    expect((gaveUp as Error).message).toMatch(
      /gave up migrating the request table after \d+ tries in \d+ ms \(startRetry\.giveUpAfterMs 300\): .*ECONNREFUSED/,
    );
    await bounded.stop();
  });
});
