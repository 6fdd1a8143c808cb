import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, serveMetrics, type MetricsServer, type TaskRunnerMetrics } from '../../dist/index.js';
import { insertRequest, useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';
import { insertRunning } from '../helpers/store.js';

const t = useTestDatabase();
const runners = useTestRunners();
let server: MetricsServer | null = null;
let metrics: TaskRunnerMetrics | null = null;
afterEach(async () => {
  await server?.close();
  metrics?.close();
  server = null;
  metrics = null;
});

/** Samples of one scrape: `name{labels}` → value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

describe('Prometheus metrics', () => {
  it("reports tries from events and the table's requests by state, over a real HTTP scrape", async () => {
    const runner = runners.create(t, { concurrency: 2, queues: ['default'] });
    metrics = createMetrics({ runner });
    server = await serveMetrics({ registry: metrics.registry, port: 0 });
    await runner.start();
    const echo = await runner.schedule('Echo', { text: 'hi' });
    const fail = await runner.schedule('Fail', { reason: 'metrics' }, { tryLimit: 1 });
    const sleeper = await runner.schedule('Sleep', { ms: 60_000 });
    await finalCompletion(runner, echo);
    await finalCompletion(runner, fail);
    await runners.started(runner, sleeper);
    // Rows the runner leaves alone: two waiting in another queue, one delayed.
    await insertRequest(t.pool, { queue: 'elsewhere', created_at: new Date(Date.now() - 5_000) });
    await insertRequest(t.pool, { queue: 'elsewhere' });
    await insertRequest(t.pool, { queue: 'elsewhere', delay_until: new Date(Date.now() + 3_600_000) });

    const samples = await scrape(server.url);
    const { rows } = await t.pool.query(`SELECT
        count(*) FILTER (WHERE pid IS NOT NULL AND completed_at IS NULL AND queue = 'default')::int AS running,
        count(*) FILTER (WHERE completed_at IS NULL AND pid IS NULL AND queue = 'elsewhere' AND delay_until IS NULL)::int AS waiting,
        count(*) FILTER (WHERE result = 'FINISHED' AND completed_at IS NOT NULL)::int AS finished,
        count(*) FILTER (WHERE result = 'FAILED' AND completed_at IS NOT NULL)::int AS failed
      FROM task_runner_requests`);
    const table = rows[0];
    expect(table).toEqual({ running: 1, waiting: 2, finished: 1, failed: 1 });
    expect(samples.get('cw_task_runner_requests{state="running",queue="default"}')).toBe(table.running);
    expect(samples.get('cw_task_runner_requests{state="waiting",queue="elsewhere"}')).toBe(table.waiting);
    expect(samples.get('cw_task_runner_requests{state="delayed",queue="elsewhere"}')).toBe(1);
    expect(samples.get('cw_task_runner_requests_ended{result="FINISHED"}')).toBe(table.finished);
    expect(samples.get('cw_task_runner_requests_ended{result="FAILED"}')).toBe(table.failed);
    expect(samples.get('cw_task_runner_oldest_waiting_seconds')).toBeGreaterThanOrEqual(5);
    expect(
      samples.get('cw_task_runner_tries_started_total{task="Echo",mode="spare"}') ??
        samples.get('cw_task_runner_tries_started_total{task="Echo",mode="fresh"}'),
    ).toBe(1);
    expect(samples.get('cw_task_runner_tries_ended_total{task="Echo",result="FINISHED"}')).toBe(1);
    expect(samples.get('cw_task_runner_tries_ended_total{task="Fail",result="FAILED"}')).toBe(1);
    expect(samples.get('cw_task_runner_tries_running')).toBe(1);
    expect(samples.get('cw_task_runner_children')).toBeGreaterThanOrEqual(1);
    const pickupCount = [...samples]
      .filter(([k]) => k.startsWith('cw_task_runner_pickup_latency_seconds_count'))
      .reduce((n, [, v]) => n + v, 0);
    expect(pickupCount).toBe(3);
    const durationCount = [...samples]
      .filter(([k]) => k.startsWith('cw_task_runner_run_duration_seconds_count'))
      .reduce((n, [, v]) => n + v, 0);
    expect(durationCount).toBe(2);
    // Pickup is measured from when the row became runnable: well under the test's own length.
    const pickupSum = [...samples]
      .filter(([k]) => k.startsWith('cw_task_runner_pickup_latency_seconds_sum'))
      .reduce((n, [, v]) => n + v, 0);
    expect(pickupSum).toBeGreaterThan(0);
    expect(pickupSum).toBeLessThan(30);
    // Each statement that claimed was timed; one child per try by default, so each ended try
    // recycled its child.
    expect(samples.get('cw_task_runner_launch_statement_seconds_count{claim="true"}')).toBeGreaterThanOrEqual(1);
    expect(samples.get('cw_task_runner_launch_statement_seconds_count{claim="false"}')).toBeGreaterThanOrEqual(1);
    expect(samples.get('cw_task_runner_child_recycles_total{reason="tasks"}')).toBe(2);
    expect(samples.get('cw_task_runner_child_recycles_total{reason="ended"}')).toBe(0);
    expect(samples.has('cw_task_runner_batch_write_failures_total{reason="connection"}')).toBe(false);

    await runner.cancel(sleeper);
    await waitForCompleted(t.pool, sleeper);
    // A cancelled try's child is killed: not reused.
    await waitFor(
      async () => (await scrape(server!.url)).get('cw_task_runner_child_recycles_total{reason="ended"}') === 1,
      {
        what: 'the killed child counted as recycled',
      },
    );
    // A launch statement whose batch failed (the launch loop's own test makes PostgreSQL refuse
    // one) is counted by how it failed; one carrying only a claim is no write.
    runner.events.emit('launch:statement', {
      durationMs: 3,
      claim: true,
      outcomes: 2,
      starts: 0,
      failure: 'connection',
    });
    runner.events.emit('launch:statement', {
      durationMs: 3,
      claim: true,
      outcomes: 0,
      starts: 0,
      failure: 'connection',
    });
    const after = await scrape(server.url);
    expect(after.get('cw_task_runner_batch_write_failures_total{reason="connection"}')).toBe(1);
    await runner.stop();
  });

  it('exports the table once across launchers, each launcher its own figures and process metrics', async () => {
    const a = runners.create(t, { concurrency: 1, queues: ['default'] });
    const b = runners.create(t, { concurrency: 1, queues: ['default'] });
    const metricsA = createMetrics({ runner: a });
    const metricsB = createMetrics({ runner: b });
    const serverA = await serveMetrics({ registry: metricsA.registry, port: 0 });
    const serverB = await serveMetrics({ registry: metricsB.registry, port: 0 });
    try {
      await a.start();
      await b.start();
      const sleepers = [await a.schedule('Sleep', { ms: 60_000 }), await a.schedule('Sleep', { ms: 60_000 })];
      await waitFor(
        async () =>
          (await t.pool.query(`SELECT 1 FROM task_runner_requests WHERE started_at IS NOT NULL AND pid IS NOT NULL`))
            .rowCount === 2,
        { what: 'both sleepers started' },
      );
      await insertRequest(t.pool, { queue: 'elsewhere' });
      await insertRequest(t.pool, { queue: 'elsewhere' });
      await insertRequest(t.pool, { queue: 'elsewhere' });
      // Two rows another launcher (on another host) claimed ahead and holds, not started.
      await insertRunning(t.pool, { queue: 'elsewhere', started_at: null });
      await insertRunning(t.pool, { queue: 'elsewhere', started_at: null });
      const sum = (scrapes: Map<string, number>[], key: string) => scrapes.reduce((n, m) => n + (m.get(key) ?? 0), 0);
      const both = await Promise.all([scrape(serverA.url), scrape(serverB.url)]);
      // What `sum(cw_task_runner_requests{...})` over the two launchers gives: the table's own figures.
      expect(sum(both, 'cw_task_runner_requests{state="waiting",queue="elsewhere"}')).toBe(3);
      expect(sum(both, 'cw_task_runner_requests{state="running",queue="default"}')).toBe(2);
      expect(sum(both, 'cw_task_runner_requests{state="held",queue="elsewhere"}')).toBe(2);
      expect(sum(both, 'cw_task_runner_requests{state="running",queue="elsewhere"}')).toBe(0);
      expect(sum(both, 'cw_task_runner_requests_ended{result="FINISHED"}')).toBe(0);
      expect(both.filter((m) => m.has('cw_task_runner_oldest_waiting_seconds'))).toHaveLength(1);
      expect(sum(both, 'cw_task_runner_table_exporter')).toBe(1);
      // Each launcher's own gauges stay its own: one try each.
      expect(both.map((m) => m.get('cw_task_runner_tries_running'))).toEqual([1, 1]);
      // prom-client's default process metrics, on the runner's own registry.
      for (const m of both) {
        expect(m.get('process_cpu_user_seconds_total')).toBeGreaterThan(0);
        expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
        expect(m.has('nodejs_eventloop_lag_seconds')).toBe(true);
      }
      // The exporter stops: the other takes the table over, still counted once.
      const [exporter, other, otherUrl] =
        both[0]!.get('cw_task_runner_table_exporter') === 1 ? [a, b, serverB.url] : [b, a, serverA.url];
      for (const id of sleepers) {
        await a.cancel(id);
        await waitForCompleted(t.pool, id);
      }
      await exporter.stop();
      await waitFor(async () => (await scrape(otherUrl)).get('cw_task_runner_table_exporter') === 1, {
        what: 'the other launcher exporting the table',
      });
      expect((await scrape(otherUrl)).get('cw_task_runner_requests{state="waiting",queue="elsewhere"}')).toBe(3);
      await other.stop();
    } finally {
      await serverA.close();
      await serverB.close();
      metricsA.close();
      metricsB.close();
    }
  });

  it('answers 404 off /metrics', async () => {
    const runner = runners.create(t);
    metrics = createMetrics({ runner });
    server = await serveMetrics({ registry: metrics.registry, port: 0 });
    const response = await fetch(server.url.replace('/metrics', '/other'));
    expect(response.status).toBe(404);
    await runner.stop();
  });
});
