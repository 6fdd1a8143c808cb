/**
 * The dashboard end to end: a real launcher, the dashboard server, and Debian's Chromium driven
 * by playwright-core. Skipped only where /usr/bin/chromium is missing outside CI (.ci/run
 * installs it, and on CI a missing browser fails the test).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard, type Runner } from '../../dist/index.js';
import { getRow, insertRequest, useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

const browserPath = '/usr/bin/chromium';
const haveBrowser = existsSync(browserPath) || process.env.CI === 'true';
const t = useTestDatabase({ truncate: false });
const runners = useTestRunners();

describe.skipIf(!haveBrowser)('dashboard in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: browserPath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function open(runner: Runner): Promise<{ dashboard: Dashboard; page: Page }> {
    const dashboard = await startDashboard({ db: runner.db, port: 0 });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (dialog) => void dialog.accept());
    return { dashboard, page };
  }

  it('shows tasks appear and finish, retries a failed one, cancels a running one, and shows markup as text', async () => {
    const runner = await runners.start(t, { concurrency: 2 });
    const { dashboard, page } = await open(runner);
    try {
      await page.goto(dashboard.url);
      await page.waitForSelector('[data-count="finished"]');

      const hostile = '<script>window.__owned = 1</script><img src=x onerror="window.__owned = 2">';
      const echoes = await Promise.all(
        [1, 2, 3].map((n) => runner.schedule('Echo', { text: n === 2 ? hostile : `echo ${n}` })),
      );
      const failing = await runner.schedule('FailTimes', { succeedOnTry: 2 }, { tryLimit: 1 });
      await page.goto(`${dashboard.url}#/requests`);
      for (const id of echoes) {
        await page.waitForSelector(`#request-list tr[data-id="${id}"] [data-state="finished"]`, { timeout: 20_000 });
      }
      await page.waitForSelector(`#request-list tr[data-id="${failing}"] [data-state="failed"]`, { timeout: 20_000 });
      await page.screenshot({ path: 'tmp/dashboard-requests.png' });

      // The failed request: its error and its try, then Retry, and it finishes.
      await page.click(`#request-list tr[data-id="${failing}"] a`);
      await page.waitForSelector('#attempts');
      expect(await page.textContent('#result-text')).toContain('FailTimes failed on try 1');
      await page.click('#retry');
      await page.waitForSelector('[data-state="finished"]', { timeout: 20_000 });
      expect(await page.textContent('#result-text')).toBe('FailTimes succeeded on try 2');
      expect((await getRow(t.pool, failing)).result).toBe('FINISHED');

      // A running one: cancelled from the running page; its row ends CANCELLED.
      const sleeper = await runner.schedule('Sleep', { ms: 60_000 });
      await runners.started(runner, sleeper);
      await page.goto(`${dashboard.url}#/running`);
      await page.waitForSelector(`#running tr[data-id="${sleeper}"] .elapsed`);
      await page.click(`#running tr[data-id="${sleeper}"] button`);
      expect((await waitForCompleted(t.pool, sleeper)).result).toBe('CANCELLED');
      await page.goto(`${dashboard.url}#/request/${sleeper}`);
      await page.waitForSelector('[data-state="cancelled"]');

      // Markup in a result is text: shown verbatim, never run.
      await page.goto(`${dashboard.url}#/request/${echoes[1]}`);
      await page.waitForSelector('#result-text');
      await waitFor(async () => (await page.textContent('#result-text')) === hostile, { what: 'the result as text' });
      expect(await page.evaluate(() => (window as unknown as { __owned?: number }).__owned)).toBeUndefined();
      expect(await page.locator('#view script, #view img').count()).toBe(0);

      await page.goto(dashboard.url);
      await page.waitForSelector('#launchers');
      // The pickup chart marks each minute with data, so the first minute alone is seen too.
      const dots = await page.locator('svg circle.dot').count();
      expect(dots).toBeGreaterThanOrEqual(1);
      expect(dots).toBeLessThanOrEqual(60);
      await mkdir('docs', { recursive: true });
      await page.screenshot({ path: process.env.CWTR_DASHBOARD_SCREENSHOT ?? 'tmp/dashboard.png', fullPage: true });
    } finally {
      await page.close();
      await dashboard.close();
      await runner.stop();
    }
  });

  it('lists recurring entries read-only, with their last and next run, a name holding markup as text', async () => {
    const hostile = '<img src=x onerror="window.__owned = 3">nightly';
    const weekly = {
      name: 'weekly-report',
      task: 'Echo',
      cron: '0 7 * * 1',
      timezone: 'Europe/Paris',
      queue: 'recurring_only',
    };
    const runner = await runners.start(t, { queues: ['elsewhere'], recurring: [weekly] });
    const enqueued = runner.events.waitFor('recurring:enqueued', (e) => e.name === hostile, 10_000);
    await runner.recurring({ name: hostile, task: 'Echo', cron: '* * * * * *', queue: 'recurring_only' });
    await enqueued;
    await runner.stop();
    const { rows } = await t.pool.query(
      'SELECT last_request_id::text AS id FROM task_runner_requests_recurring WHERE name = $1',
      [hostile],
    );
    const lastId: string = rows[0].id;
    // Served with no launcher, over the test's own connection, as `cw-task-runner dashboard` does.
    const dashboard = await startDashboard({ db: t.db, port: 0 });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      const api = (await (await fetch(`${dashboard.url}api/recurring`)).json()) as {
        recurring: Record<string, unknown>[];
      };
      expect(api.recurring.map((e) => e.name)).toEqual([hostile, 'weekly-report']);
      expect(api.recurring[0]).toMatchObject({
        taskClassName: 'Echo',
        cron: '* * * * * *',
        timezone: 'UTC',
        lastRequestId: lastId,
      });
      expect(api.recurring[1]).toMatchObject({ cron: '0 7 * * 1', timezone: 'Europe/Paris', lastRequestId: null });
      expect(new Date(api.recurring[1]!.nextDueAt as string).getUTCDay()).toBe(1);

      await page.goto(`${dashboard.url}#/recurring`);
      const weeklyRow = '#recurring tr[data-name="weekly-report"]';
      await page.waitForSelector(weeklyRow);
      expect(await page.textContent(`${weeklyRow} td.cron`)).toBe('0 7 * * 1');
      expect(await page.textContent(`${weeklyRow} td.last-due`)).toBe('-');
      expect(await page.textContent(`${weeklyRow} td.next-due`)).toMatch(/^\d{4}-\d\d-\d\dT0[56]:00:00Z \(in .+\)$/);
      // The markup in a name is shown as text and never becomes an element.
      const names = await page.locator('#recurring td.name').allTextContents();
      expect(names).toEqual([hostile, 'weekly-report']);
      expect(await page.locator('#view img').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __owned?: number }).__owned)).toBeUndefined();
      // Its last run links to the request; the page offers no action.
      const link = page.locator('#recurring tr').nth(1).locator('td.last-request a');
      expect(await link.textContent()).toBe(lastId);
      expect(await page.locator('#view button').count()).toBe(0);
      await link.click();
      await page.waitForSelector('#result-text');
      expect(page.url()).toMatch(new RegExp(`#/request/${lastId}$`));
    } finally {
      await page.close();
      await dashboard.close();
    }
  });

  it('shows held rows as held: counts, launchers, the requests filter, the running page and a request', async () => {
    // A table of its own, so the rows of a launcher that does not exist disturb no other test.
    for (const suffix of ['', '_attempts', '_launchers']) {
      await t.pool.query(`CREATE TABLE held_jobs${suffix} (LIKE task_runner_requests${suffix} INCLUDING ALL)`);
    }
    const claimed = {
      pid: 4242,
      host: 'h1',
      launcher_id: 'L1',
      tries: 1,
      lease_expires_at: new Date(Date.now() + 600_000),
    };
    const running = await insertRequest(
      t.pool,
      { ...claimed, task_class_name: 'Sleep', started_at: new Date() },
      'held_jobs',
    );
    const held = [];
    for (let n = 0; n < 4; n += 1)
      held.push(await insertRequest(t.pool, { ...claimed, task_class_name: 'Sleep' }, 'held_jobs'));
    await t.pool.query(
      `INSERT INTO held_jobs_launchers (launcher_id, host, pid, concurrency) VALUES ('L1', 'h1', 4242, 1)`,
    );
    const dashboard = await startDashboard({ db: t.db, port: 0, tableName: 'held_jobs' });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await page.goto(dashboard.url);
      await page.waitForSelector('#launchers');
      expect(await page.textContent('[data-count="running"] .n')).toBe('1');
      expect(await page.textContent('[data-count="held"] .n')).toBe('4');
      expect(await page.textContent('#launchers td.running')).toBe('1 / 1');
      expect(await page.textContent('#launchers td.held')).toBe('4');

      await page.goto(`${dashboard.url}#/requests?state=running`);
      await page.waitForSelector('#request-list');
      expect(
        await page.locator('#request-list tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id'))),
      ).toEqual([running]);
      await page.goto(`${dashboard.url}#/requests?state=held`);
      await waitFor(async () => (await page.locator('#request-list [data-state="held"]').count()) === 4, {
        what: 'four held rows listed',
      });

      await page.goto(`${dashboard.url}#/running`);
      await page.waitForSelector(`#running tr[data-id="${held[0]}"]`);
      expect(await page.textContent('#view h2')).toBe('Running tries (1) and held rows (4)');
      expect(await page.getAttribute(`#running tr[data-id="${held[0]}"]`, 'data-state')).toBe('held');
      expect(await page.getAttribute(`#running tr[data-id="${running}"]`, 'data-state')).toBe('running');

      await page.goto(`${dashboard.url}#/request/${held[0]}`);
      // The running page's rows carry data-state too: wait for the request page itself first.
      await page.waitForSelector('#view #result-text');
      await page.waitForSelector('#view [data-state="held"]');
      expect(await page.locator('#retry').count()).toBe(0);
      expect(await page.locator('#cancel').count()).toBe(1);
      await page.screenshot({ path: 'tmp/dashboard-held.png', fullPage: true });
    } finally {
      await page.close();
      await dashboard.close();
    }
  });

  it('refuses actions without the CSRF token or from another origin, and binds off loopback only with a token', async () => {
    const runner = runners.create(t);
    const dashboard = await startDashboard({ db: runner.db, port: 0 });
    try {
      const base = dashboard.url.replace(/\/$/, '');
      const id = await runner.schedule('Echo', { text: 'x' });
      const bare = await fetch(`${base}/api/requests/${id}/cancel`, { method: 'POST' });
      expect(bare.status).toBe(403);
      const page = await (await fetch(`${base}/`)).text();
      const csrf = /name="cw-csrf" content="([^"]+)"/.exec(page)![1]!;
      const foreign = await fetch(`${base}/api/requests/${id}/cancel`, {
        method: 'POST',
        headers: { 'x-cw-csrf': csrf, origin: 'http://evil.example' },
      });
      expect(foreign.status).toBe(403);
      // fetch() cannot forge Host; node:http can, as a rebinding DNS name would make a browser send it.
      const rebound = await new Promise<number>((resolve, reject) => {
        request(
          {
            host: '127.0.0.1',
            port: dashboard.port,
            path: '/api/overview',
            headers: { host: `evil.example:${dashboard.port}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
          .on('error', reject)
          .end();
      });
      expect(rebound).toBe(421);
      expect((await getRow(t.pool, id)).completed_at).toBeNull();
      const ok = await fetch(`${base}/api/requests/${id}/cancel`, { method: 'POST', headers: { 'x-cw-csrf': csrf } });
      expect(ok.status).toBe(200);
      expect((await getRow(t.pool, id)).result).toBe('CANCELLED');
      await expect(startDashboard({ db: runner.db, port: 0, host: '0.0.0.0' })).rejects.toThrow(/token.*required/);
      const guarded = await startDashboard({
        db: runner.db,
        port: 0,
        host: '127.0.0.1',
        token: 'a-long-enough-token',
        readOnly: true,
      });
      try {
        const plain = guarded.url.replace(/\?token=.*$/, '');
        expect((await fetch(`${plain}api/overview`)).status).toBe(401);
        const overview = await fetch(`${plain}api/overview`, {
          headers: { authorization: 'Bearer a-long-enough-token' },
        });
        expect(await overview.json()).toMatchObject({ readOnly: true });
      } finally {
        await guarded.close();
      }
    } finally {
      await dashboard.close();
      await runner.stop();
    }
  });
});
