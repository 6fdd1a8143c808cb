import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { resolveRunnerConfig } from '../../dist/index.js';
import { loadStandaloneConfig } from '../../dist/config/config-file.js';
import { resolveRecurringEntry } from '../../dist/config/recurring-config.js';
import { dueTimesAt, nextDueAfter } from '../../dist/launcher/recurring-times.js';
import { cli, workDir } from '../cli/cli-process.js';
import { useTestDatabase, waitFor } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Recurring tasks: several launchers declare one entry and each due time becomes one request;
 * missed due times are skipped or backfilled as the entry says; cron times follow the time zone.
 */
const t = useTestDatabase();
// Due times the 3-launcher test waits for (one a second); CWTR_RECURRING_SECONDS=60 for a minute.
const dueCount = Number(process.env.CWTR_RECURRING_SECONDS ?? 20);
const runners = useTestRunners();

async function dueRows(name = 'Echo'): Promise<{ id: string; due: Date }[]> {
  const { rows } = await t.pool.query(
    `SELECT id::text, delay_until AS due FROM task_runner_requests WHERE task_class_name = $1 ORDER BY delay_until, id`,
    [name],
  );
  return rows;
}

describe('recurring tasks across launchers', () => {
  it(
    '3 launchers over a per-second schedule enqueue each due time exactly once',
    { timeout: (dueCount + 90) * 1000 },
    async () => {
      await t.pool.query('TRUNCATE task_runner_requests_recurring');
      // The requests go to a queue no launcher claims from, so the test measures enqueueing only.
      const entry = { name: 'every-second', task: 'Echo', cron: '* * * * * *', queue: 'recurring_only' };
      const launchers = [0, 1, 2].map(() => runners.create(t, { queues: ['elsewhere'], recurring: [entry] }));
      // Listening before start: a launcher's first tick runs inside its start().
      const enqueuedBy = launchers.map(() => 0);
      launchers.forEach((runner, index) =>
        runner.events.on('recurring:enqueued', ({ ids }) => {
          enqueuedBy[index]! += ids.length;
        }),
      );
      await Promise.all(launchers.map((runner) => runner.start()));
      const rows = await waitFor(
        async () => {
          const found = await dueRows();
          return found.length >= dueCount ? found : null;
        },
        { timeoutMs: (dueCount + 60) * 1000, what: `${dueCount} due times enqueued` },
      );
      await Promise.all(launchers.map((runner) => runner.stop()));
      const all = await dueRows();
      expect(all.length).toBeGreaterThanOrEqual(rows.length);
      const seconds = all.map((row) => row.due.getTime());
      // One request per due time: no second appears twice ...
      expect(new Set(seconds).size).toBe(seconds.length);
      // ... and none is skipped between the first and the last (whole seconds, one apart).
      for (const [index, ms] of seconds.entries()) {
        expect(ms % 1000).toBe(0);
        if (index > 0) expect(ms - seconds[index - 1]!).toBe(1000);
      }
      const { rows: entries } = await t.pool.query(
        'SELECT last_due_at, last_request_id::text FROM task_runner_requests_recurring',
      );
      expect(entries).toHaveLength(1);
      expect(entries[0].last_due_at.getTime()).toBe(seconds.at(-1));
      expect(entries[0].last_request_id).toBe(all.at(-1)!.id);
      // Events tell the same story: every request was enqueued by exactly one launcher.
      expect(enqueuedBy.reduce((a, b) => a + b, 0)).toBe(all.length);
      expect(launchers.flatMap((runner) => runners.errors(runner))).toEqual([]);
    },
  );

  it(
    'declared through runner.recurring() after start, listed by the CLI with its last and next run',
    { timeout: 60_000 },
    async () => {
      await t.pool.query('TRUNCATE task_runner_requests_recurring');
      const runner = await runners.start(t, { queues: ['elsewhere'] });
      const enqueued = runner.events.waitFor('recurring:enqueued', (e) => e.name === 'api-entry', 10_000);
      await runner.recurring({
        name: 'api-entry',
        task: 'Echo',
        cron: '*/1 * * * * *',
        options: { from: 'api' },
        queue: 'recurring_only',
      });
      const { ids } = await enqueued;
      await runner.stop();
      const { rows } = await t.pool.query('SELECT options, queue FROM task_runner_requests WHERE id = $1', [ids[0]]);
      expect(rows[0].queue).toBe('recurring_only');
      expect(rows[0].options).toContain('from: api');
      const dir = await workDir();
      try {
        const listed = await cli(['recurring', '--database-url', t.url], { cwd: dir.dir });
        expect(listed.code).toBe(0);
        expect(listed.stdout).toMatch(/^NAME\s+TASK\s+CRON\s+TIMEZONE\s+MISSED\s+LAST DUE\s+LAST REQUEST\s+NEXT DUE/);
        expect(listed.stdout).toMatch(/api-entry\s+Echo\s+\*\/1 \* \* \* \* \*\s+UTC\s+skip\s+\S+Z/);
        const json = await cli(['recurring', '--json', '--database-url', t.url], { cwd: dir.dir });
        const [entry] = JSON.parse(json.stdout);
        expect(entry.name).toBe('api-entry');
        expect(Number(entry.lastRequestId)).toBeGreaterThanOrEqual(Number(ids.at(-1)));
        expect(new Date(entry.nextDueAt).getTime()).toBeGreaterThan(new Date(entry.lastDueAt).getTime());
      } finally {
        await dir.remove();
      }
    },
  );

  it(
    'missed due times are skipped by default and backfilled up to the limit when asked',
    { timeout: 60_000 },
    async () => {
      await t.pool.query('TRUNCATE task_runner_requests_recurring');
      const skip = { name: 'skipper', task: 'Echo', cron: '* * * * *', queue: 'recurring_only' };
      const fill = { name: 'filler', task: 'Late', cron: '* * * * *', queue: 'recurring_only', backfill: 3 };
      // Every launcher was down for the last 10 minutes: the entries stand where they stood then.
      await t.pool
        .query(`INSERT INTO task_runner_requests_recurring (name, task_class_name, cron, timezone, options, queue, priority, try_limit, backfill, last_due_at)
      VALUES ('skipper', 'Echo', '* * * * *', 'UTC', '{}', 'recurring_only', 0, 5, 0, date_trunc('minute', now()) - interval '10 minutes'),
             ('filler', 'Late', '* * * * *', 'UTC', '{}', 'recurring_only', 0, 5, 3, date_trunc('minute', now()) - interval '10 minutes')`);
      const startedAt = Date.now();
      const runner = await runners.start(t, { queues: ['elsewhere'], recurring: [skip, fill] });
      await runner.stop();
      const late = (rows: { due: Date }[]) => rows.filter((row) => row.due.getTime() <= startedAt - 60_000);
      const skipped = await dueRows('Echo');
      expect(late(skipped)).toEqual([]);
      expect(skipped.length).toBeLessThanOrEqual(1); // the current minute, when it began less than a minute ago
      const filled = await dueRows('Late');
      // The 3 most recent missed minutes, and the current one when it began less than a minute ago.
      expect([3, 4]).toContain(filled.length);
      const minutes = filled.map((row) => row.due.getTime());
      for (let i = 1; i < minutes.length; i += 1) expect(minutes[i]! - minutes[i - 1]!).toBe(60_000);
      // The most recent missed ones, not the oldest (10 minutes back).
      expect(startedAt - minutes[0]!).toBeLessThan(5 * 60_000);
      expect(startedAt - minutes.at(-1)!).toBeLessThan(120_000);
    },
  );
});

describe('cron times', () => {
  const entry = (cron: string, timezone = 'UTC', backfill = 0) =>
    resolveRecurringEntry('test', { task: 'Echo', cron, timezone, backfill });

  it('reads fields in the entry time zone, through DST changes as croner documents', () => {
    // Europe/Berlin springs forward on 2025-03-30 at 02:00: 02:30 does not exist that day, and a
    // fixed-time job runs at the first valid time after the gap (03:00 CEST = 01:00Z).
    expect(nextDueAfter(entry('30 2 * * *', 'Europe/Berlin'), new Date('2025-03-29T12:00:00Z'))?.toISOString()).toBe(
      '2025-03-30T01:00:00.000Z',
    );
    // It falls back on 2025-10-26 at 03:00: 02:30 happens twice; the job runs once, at the first.
    const after = new Date('2025-10-25T12:00:00Z');
    const next = nextDueAfter(entry('30 2 * * *', 'Europe/Berlin'), after)!;
    expect(next.toISOString()).toBe('2025-10-26T00:30:00.000Z');
    expect(nextDueAfter(entry('30 2 * * *', 'Europe/Berlin'), next)!.toISOString()).toBe('2025-10-27T01:30:00.000Z');
    // Five fields: minute precision; 9:00 New York in winter is 14:00Z.
    expect(
      nextDueAfter(entry('0 9 * * 1-5', 'America/New_York'), new Date('2025-01-06T00:00:00Z'))?.toISOString(),
    ).toBe('2025-01-06T14:00:00.000Z');
  });

  it('enqueues on-time due times, and only the most recent missed ones up to backfill', () => {
    const now = new Date('2025-01-01T12:00:30Z');
    const last = new Date('2025-01-01T11:00:00Z');
    expect(dueTimesAt(entry('* * * * *'), last, now).map((d) => d.toISOString())).toEqual(['2025-01-01T12:00:00.000Z']);
    expect(dueTimesAt(entry('* * * * *', 'UTC', 2), last, now).map((d) => d.toISOString())).toEqual([
      '2025-01-01T11:58:00.000Z',
      '2025-01-01T11:59:00.000Z',
      '2025-01-01T12:00:00.000Z',
    ]);
    // Nothing at or before the last enqueued due time comes back.
    expect(dueTimesAt(entry('* * * * *', 'UTC', 5), new Date('2025-01-01T12:00:00Z'), now)).toEqual([]);
  });

  it('reads recurring entries and retention from the config file, and refuses bad ones before starting', async () => {
    const dir = await workDir();
    try {
      const file = `${dir.dir}/cw-task-runner.yml`;
      await writeFile(
        file,
        'recurring:\n  - task: Echo\n    cron: "0 7 * * 1-5"\n    timezone: Europe/Paris\n    backfill: 2\nretention:\n  keep: { FINISHED: 1d }\n',
      );
      const config = await loadStandaloneConfig({ cwd: dir.dir, env: {} });
      expect(config.runner.recurring).toEqual([
        { task: 'Echo', cron: '0 7 * * 1-5', timezone: 'Europe/Paris', backfill: 2 },
      ]);
      const resolved = resolveRunnerConfig({ db: 'postgres://x/y', tasksDir: '.', ...config.runner });
      expect(resolved.recurring[0]).toMatchObject({
        name: 'Echo',
        task: 'Echo',
        timezone: 'Europe/Paris',
        backfill: 2,
      });
      expect(resolved.retention?.rules[0]).toEqual({ keepMs: 86_400_000, results: ['FINISHED'] });
      await writeFile(file, 'recurring:\n  - task: Echo\n    cron: "every monday"\n');
      await expect(loadStandaloneConfig({ cwd: dir.dir, env: {} })).rejects.toThrow(/recurring\[0\]\.cron/);
    } finally {
      await dir.remove();
    }
  });

  it('refuses bad entries by field', () => {
    const config = (recurring: unknown) => () =>
      resolveRunnerConfig({ db: 'postgres://x/y', tasksDir: '.', recurring: recurring as never });
    expect(config([{ task: 'Echo', cron: '61 * * * *' }])).toThrow(/recurring\[0\]\.cron.*not a valid cron/);
    expect(config([{ task: 'Echo', cron: '* * *' }])).toThrow(/recurring\[0\]\.cron.*5 fields/);
    expect(config([{ task: 'Echo', cron: '* * * * *', timezone: 'Mars/Olympus' }])).toThrow(
      /recurring\[0\]\.timezone.*unknown time zone/,
    );
    expect(
      config([
        { task: 'Echo', cron: '* * * * *' },
        { task: 'Echo', cron: '0 * * * *' },
      ]),
    ).toThrow(/two entries are named "Echo"/);
    expect(config([{ task: 'Echo', cron: '* * * * *', fill: 3 }])).toThrow(/unknown key "fill"/);
    expect(config([{ task: 'Echo', cron: '* * * * *', backfill: -1 }])).toThrow(/recurring\[0\]\.backfill/);
  });
});
