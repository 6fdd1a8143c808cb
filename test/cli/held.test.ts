/**
 * Held rows (claimed by a launcher, `pid` its own, `started_at` NULL: not started) are shown as
 * held, not running: in `status`, `list --state`, `show`, and the API the dashboard reads.
 */
import { describe, expect, it } from 'vitest';
import { startDashboard } from '../../dist/index.js';
import { parseTableName } from '../../dist/config/identifiers.js';
import { Inspector } from '../../dist/store/inspector.js';
import { insertRequest } from '../helpers/db.js';
import { insertRunning, testHost, testLauncher } from '../helpers/store.js';
import { cli, cliOnTestDatabase } from './cli-process.js';

const s = cliOnTestDatabase();

describe('held rows', () => {
  it('are counted, listed, shown and served as held, apart from the running ones', async () => {
    // One launcher with one slot: one try running, three rows held in its local queue.
    const running = await insertRunning(s.t.pool, { task_class_name: 'Sleep' });
    const held: string[] = [];
    for (let n = 0; n < 3; n += 1) {
      held.push(
        await insertRunning(s.t.pool, {
          task_class_name: 'Sleep',
          pid: 4242,
          started_at: null,
          process_identity: null,
        }),
      );
    }
    await insertRequest(s.t.pool, { task_class_name: 'Sleep' });
    await s.t.pool.query(
      `INSERT INTO task_runner_requests_launchers (launcher_id, host, pid, concurrency) VALUES ($1, $2, 4242, 1)`,
      [testLauncher, testHost],
    );

    const status = await cli(['status'], s.at);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('1 waiting, 0 delayed, 1 running, 3 held, 0 finished');
    expect(status.stdout).toContain(
      'open requests by queue and task (waiting / delayed / running / held):\n  default  Sleep  1 / 0 / 1 / 3\n',
    );
    expect(status.stdout).toMatch(new RegExp(`  ${testHost} pid 4242: 1 of 1 running, 3 held, heartbeat`));
    const json = JSON.parse((await cli(['status', '--json'], s.at)).stdout);
    expect(json.counts).toMatchObject({ waiting: 1, running: 1, held: 3 });
    expect(json.launchers).toEqual([
      expect.objectContaining({ launcherId: testLauncher, running: 1, held: 3, concurrency: 1 }),
    ]);

    const listed = async (state: string): Promise<string[]> =>
      JSON.parse((await cli(['list', '--state', state, '--json'], s.at)).stdout).requests.map(
        (r: { id: string }) => r.id,
      );
    expect(await listed('running')).toEqual([running]);
    expect(await listed('held')).toEqual([...held].reverse());
    const lines = (await cli(['list'], s.at)).stdout;
    expect(lines).toMatch(new RegExp(`^ *${held[0]}  held +Sleep`, 'm'));
    expect(lines).toMatch(new RegExp(`^ *${running}  running +Sleep`, 'm'));

    const shown = await cli(['show', held[0]!], s.at);
    expect(shown.stdout).toMatch(/state: +held\n/);
    expect(shown.stdout).toMatch(
      new RegExp(`held: +by launcher ${testLauncher} \\(pid 4242\\) on ${testHost}, not started`),
    );
    expect(shown.stdout).not.toMatch(/running: /);

    // What the dashboard's overview and running page read.
    const inspector = new Inspector({ db: s.t.db, table: parseTableName('task_runner_requests') });
    const tries = await inspector.running();
    expect(tries.map((t) => [t.id, t.held])).toEqual([[running, false], ...held.map((id) => [id, true])]);
    const dashboard = await startDashboard({ db: s.t.db, port: 0 });
    try {
      const overview = (await (await fetch(`${dashboard.url}api/overview`)).json()) as Record<string, any>;
      expect(overview.counts).toMatchObject({ running: 1, held: 3 });
      expect(overview.open.depth).toEqual([
        { queue: 'default', taskClassName: 'Sleep', waiting: 1, delayed: 0, running: 1, held: 3 },
      ]);
      expect(overview.launchers[0]).toMatchObject({ running: 1, held: 3 });
      const page = (await (await fetch(`${dashboard.url}api/requests?state=held`)).json()) as {
        requests: { id: string; state: string }[];
      };
      expect(page.requests.map((r) => r.state)).toEqual(['held', 'held', 'held']);
    } finally {
      await dashboard.close();
    }
  });
});
