import { describe, expect, it } from 'vitest';
import { useChaosCluster } from './helpers/cluster.js';
import { insertWork, ledgerFigures, waitAllEnded } from './helpers/ledger.js';
import { report, scale } from './helpers/summary.js';

/**
 * 4 launchers (4 host identities) × concurrency 8 share one table of short tasks, with no fault:
 * every request runs exactly once and nothing is left running. Children are reused (a Node
 * start per task would make this a fork benchmark); the ledger sees every try either way.
 */
const cluster = useChaosCluster();
const tasks = scale(20_000, 2_000);

describe('no fault', () => {
  it(`4 launchers × concurrency 8 run ${tasks} short tasks exactly once`, async () => {
    await cluster.reset();
    await insertWork(cluster.server.pool, tasks, { tryLimit: 1 });
    const launchers = [1, 2, 3, 4].map((n) =>
      cluster.launcher(`steady-${n}`, { maxTasksPerChild: Number.MAX_SAFE_INTEGER }),
    );
    const started = Date.now();
    await Promise.all(launchers.map((l) => l.start()));
    await waitAllEnded(cluster.server.pool);
    const seconds = (Date.now() - started) / 1000;
    expect(await Promise.all(launchers.map((l) => l.stop()))).toEqual([0, 0, 0, 0]);

    const figures = await ledgerFigures(cluster.server.pool);
    const { rows: perHost } = await cluster.server.pool.query(
      `SELECT host, count(*)::int AS n FROM chaos_ledger WHERE event = 'start' GROUP BY host ORDER BY host`,
    );
    const { rows: finishes } = await cluster.server.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS requests FROM chaos_ledger WHERE event = 'finish'`,
    );
    report('steady', {
      launchers: 4,
      concurrency: 8,
      tasks,
      ...figures,
      finishes: finishes[0].n,
      seconds,
      tasksPerSecond: Math.round(tasks / seconds),
      perHost: Object.fromEntries(perHost.map((r) => [r.host, r.n])),
    });

    expect(figures).toMatchObject({
      requests: tasks,
      lost: 0,
      duplicates: 0,
      duplicatesInFlightAtKill: 0,
      leftRunning: 0,
      starts: tasks,
    });
    expect(finishes[0]).toEqual({ n: tasks, requests: tasks });
    expect(perHost).toHaveLength(4);
    for (const l of launchers)
      expect(
        l.events.filter((e) => e.event === 'error'),
        l.host,
      ).toEqual([]);
  });
});
