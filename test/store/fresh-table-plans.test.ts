/**
 * A table the launcher starts on right after `migrate` has never been analyzed: its statistics say
 * nothing (reltuples -1) while rows pour in, until autovacuum's turn comes, often in the middle of
 * the first run. The runner's hot statements must not depend on those statistics: on such a table
 * with many rows, none of them may read the request table by a sequential scan. The plans are
 * the ones PostgreSQL takes for the statements as the store sends them (auto_explain at NOTICE
 * level on the test's own connections, nested statements included: the foreign-key checks).
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../dist/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { outcomeOf, storeOn, testHost, testLauncher, type TestStore } from '../helpers/store.js';

const table = 'fresh_requests';
const rows = 20_000;
const batch = 64;

let t: TestDatabase;
let explained: pg.Pool;
let store: TestStore;
/** Plans seen while `collecting`, one per statement (nested ones too). */
const plans: { query: string; plan: unknown }[] = [];
let collecting = false;

beforeAll(async () => {
  t = await createTestDatabase();
  await migrate(t.db, { tableName: table });
  await t.pool.query(
    `INSERT INTO ${table} (task_class_name, options) SELECT 'NoOp', '{}' FROM generate_series(1, ${rows})`,
  );
  const settings = [
    'session_preload_libraries=auto_explain',
    'auto_explain.log_min_duration=0',
    'auto_explain.log_level=notice',
    'auto_explain.log_format=json',
    'auto_explain.log_nested_statements=on',
  ];
  explained = new pg.Pool({ connectionString: t.url, max: 1, options: settings.map((s) => `-c ${s}`).join(' ') });
  explained.on('connect', (client) => {
    client.on('notice', (notice) => {
      const text = notice.message ?? '';
      const at = text.indexOf('{');
      if (!collecting || !text.startsWith('duration:') || at === -1) return;
      const parsed = JSON.parse(text.slice(at)) as { 'Query Text': string; Plan: unknown };
      plans.push({ query: parsed['Query Text'], plan: parsed.Plan });
    });
  });
  store = storeOn(new Kysely<any>({ dialect: new PostgresDialect({ pool: explained }) }), { table });
});
afterAll(async () => {
  await explained?.end();
  await t?.drop();
});

/** The tables a plan reads by sequential scan. */
function seqScanned(node: any, into: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan') into.push(node['Relation Name']);
  for (const child of node.Plans ?? []) seqScanned(child, into);
  return into;
}

const claim = {
  host: testHost,
  launcherPid: process.pid,
  launcherIdentity: 'boot:1',
  queues: null,
  leaseMs: 60_000,
  maxOptionsBytes: 1_000_000,
};

describe('the hot statements on a new, never-analyzed table', () => {
  // Skipped: it fails on the code as it stands, and is the check for the fix still to come. On
  // such a table the planner takes `pid IS NOT NULL` as true of nearly every row, so the launch
  // statement's `started` and `done` UPDATEs (even with `t.id = ANY(ids)` added) and the lease
  // renewal's UPDATE read the whole table by a sequential scan.
  it.skip('read the request table by index only: claim, starts, outcomes with their history, renewal', async () => {
    const { rows: stats } = await t.pool.query('SELECT reltuples FROM pg_class WHERE oid = $1::regclass', [table]);
    expect(stats[0].reltuples).toBe(-1);

    collecting = true;
    // The launch loop's cycle: a claim held, then its starts with the next claim, then the
    // first batch's outcomes with the second's starts and a third claim; then a lease renewal.
    const first = await store.requestsLaunch({
      launcherId: testLauncher,
      outcomes: [],
      starts: [],
      claim: { ...claim, limit: batch, startNow: 0 },
    });
    const started = (ids: readonly { id: string; tries: number }[]) =>
      ids.map((row) => ({
        id: row.id,
        tries: row.tries,
        pid: process.pid,
        processIdentity: 'boot:1',
        threadId: 1,
        startedAtMs: performance.timeOrigin + performance.now(),
      }));
    const second = await store.requestsLaunch({
      launcherId: testLauncher,
      outcomes: [],
      starts: started(first.claimed),
      claim: { ...claim, limit: batch, startNow: 0 },
    });
    const third = await store.requestsLaunch({
      launcherId: testLauncher,
      outcomes: first.claimed.map((row) => outcomeOf(row.id, row.tries, { result: 'FINISHED', resultText: null })),
      starts: started(second.claimed),
      claim: { ...claim, limit: batch, startNow: batch },
    });
    await store.requestsRenewLeases({ launcherId: testLauncher, leaseMs: 60_000 });
    collecting = false;

    expect(first.claimed).toHaveLength(batch);
    expect(second.starts.size).toBe(batch);
    expect(third.outcomes).toHaveLength(batch);
    expect(third.claimed).toHaveLength(batch);
    const scans = plans.flatMap((p) =>
      seqScanned(p.plan)
        .filter((name) => name === table)
        .map(() => p.query.trim().slice(0, 120)),
    );
    expect(plans.length).toBeGreaterThanOrEqual(4);
    expect(scans).toEqual([]);
  });
});
