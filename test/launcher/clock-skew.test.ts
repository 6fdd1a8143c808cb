/**
 * Every stored time comes from the database's clock, so a launcher whose own clock is wrong still
 * writes a try's start before its end. The launcher runs as a process under libfaketime (Debian's
 * `faketime` package), ten minutes ahead of the database: the one honest way to give a real
 * launcher a wrong wall clock (its start times come from `performance.timeOrigin`, which no
 * option replaces).
 */
import { access } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { cleanEnv, cliProcess, launcherProcesses, startLauncher, workDir } from '../cli/cli-process.js';
import { getRow, insertRequest, waitForCompleted } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';

const libfaketime = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const files = launcherProcesses();

describe('a launcher whose clock is ten minutes ahead', () => {
  it('writes started_at from the database clock: never after completed_at', async () => {
    await access(libfaketime).catch(() => {
      throw new Error(`${libfaketime} is missing: apt-get install faketime`);
    });
    const work = await workDir();
    files.cleanups.push(work.remove);
    const launcher = await startLauncher([], {
      cwd: work.dir,
      env: cleanEnv({
        DATABASE_URL: files.t.url,
        CW_TASKS_DIR: fixturesDir,
        LD_PRELOAD: libfaketime,
        FAKETIME: '+10m',
      }),
    });
    files.launchers.push(launcher);
    // A try whose start is written on its own while it runs, and tries whose start goes with their outcome.
    const ids = [
      await insertRequest(files.t.pool, { task_class_name: 'Sleep', options: { ms: 1_500 } }),
      await insertRequest(files.t.pool, { options: { text: 'a' } }),
      await insertRequest(files.t.pool, { options: { text: 'b' } }),
      // Thread mode: the start time is taken in the worker thread.
      await insertRequest(files.t.pool, { task_class_name: 'ThreadEcho', options: { text: 'c' } }),
    ];
    for (const id of ids) {
      const row = await waitForCompleted(files.t.pool, id);
      expect(row.result, row.result_text).toBe('FINISHED');
      const ranMs = row.completed_at.getTime() - row.started_at.getTime();
      expect(
        ranMs,
        `request ${id}: started ${row.started_at.toISOString()}, completed ${row.completed_at.toISOString()}`,
      ).toBeGreaterThanOrEqual(0);
      expect(ranMs).toBeLessThan(30_000);
      expect(row.started_at.getTime()).toBeGreaterThanOrEqual(row.created_at.getTime());
      const { rows } = await files.t.pool.query(
        'SELECT started_at, ended_at FROM task_runner_requests_attempts WHERE request_id = $1',
        [id],
      );
      expect(rows[0].ended_at.getTime() - rows[0].started_at.getTime()).toBeGreaterThanOrEqual(0);
    }
    const sleep = await waitForCompleted(files.t.pool, ids[0]!);
    expect(sleep.completed_at.getTime() - sleep.started_at.getTime()).toBeGreaterThanOrEqual(1_400);
    await launcher.stop();
  });

  it("a relative --delay counts from the database's now, not the scheduler's clock", async () => {
    const work = await workDir();
    files.cleanups.push(work.remove);
    const env = cleanEnv({
      DATABASE_URL: files.t.url,
      CW_TASKS_DIR: fixturesDir,
      LD_PRELOAD: libfaketime,
      FAKETIME: '+10m',
    });
    const scheduled = await cliProcess(['schedule', 'Echo', '--delay', '1h'], { cwd: work.dir, env });
    expect(scheduled.code, scheduled.stderr).toBe(0);
    const row = await getRow(files.t.pool, scheduled.stdout.trim());
    const aheadMs = row.delay_until.getTime() - row.created_at.getTime();
    expect(
      aheadMs,
      `delay_until ${row.delay_until.toISOString()}, created ${row.created_at.toISOString()}`,
    ).toBeGreaterThanOrEqual(3_600_000);
    expect(aheadMs).toBeLessThan(3_600_000 + 30_000);
  });
});
