// Claim rate of the launcher's own statement on a table holding 1,000,000 ended requests, beside
// the rate on an empty one: retention keeps tables small, but a table that keeps every row
// (`retention: false`) must not make claims slower. Rounds alternate between the two tables, so
// a machine's passing load falls on both alike; the medians are compared.
//
// node bench/claim-with-history.mjs   (BENCH_DATABASE_URL or DATABASE_URL; else an embedded server)
// CLAIM_HISTORY_ROWS, CLAIM_ROWS, CLAIM_ROUNDS change the sizes.
//
// Two figures per table: the claim rate seen by a client (round trips included; commits without
// waiting for the WAL flush, which costs both tables the same and only adds noise), as the median
// and the best of the rounds (the best is the least disturbed by other load on the machine), and
// the server's own execution time of one claim (EXPLAIN ANALYZE of the launch statement's claim,
// rolled back), which round trips and scheduling do not blur.
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { migrate } from '../dist/index.js';
import { parseTableName } from '../dist/config/identifiers.js';
import { RequestStore } from '../dist/store/request-store.js';
import { poolClient } from '../dist/store/sql-client.js';
import { launchStatement, launchValues } from '../dist/store/launch-statement.js';
import { openBenchDatabase } from './database.mjs';

const historyRows = Number(process.env.CLAIM_HISTORY_ROWS ?? 1_000_000);
const claimRows = Number(process.env.CLAIM_ROWS ?? 2_000);
const rounds = Number(process.env.CLAIM_ROUNDS ?? 10);

const database = await openBenchDatabase();
const pool = new pg.Pool({ connectionString: database.url, max: 2, options: '-c synchronous_commit=off' });
const db = new Kysely({ dialect: new PostgresDialect({ pool }) });
const tables = { empty: 'claim_bench_empty', history: 'claim_bench_history' };
const stores = {};
for (const [kind, name] of Object.entries(tables)) {
  await pool.query(`DROP TABLE IF EXISTS ${name}, ${name}_attempts, ${name}_recurring`);
  await migrate(db, { tableName: name });
  stores[kind] = new RequestStore({ db, sql: poolClient(pool), table: parseTableName(name), backoff: { baseMs: 1000, maxMs: 1000 }, crashLimit: 3 });
}
console.log(`filling ${tables.history} with ${historyRows} ended requests ...`);
await pool.query(`INSERT INTO ${tables.history} (task_class_name, created_at, started_at, completed_at, result, tries, result_text)
  SELECT 'NoOp', now() - interval '1 day', now() - interval '1 day', now() - (g % 86400) * interval '1 second',
         (ARRAY['FINISHED','FINISHED','FINISHED','FAILED','CANCELLED'])[1 + g % 5], 1, 'NOOP ' || g || ': OK!'
  FROM generate_series(1, $1) AS g`, [historyRows]);
await pool.query(`VACUUM ANALYZE ${tables.empty}`);
await pool.query(`VACUUM ANALYZE ${tables.history}`);

async function claimRate(kind, batch) {
  const table = tables[kind];
  await pool.query(`INSERT INTO ${table} (task_class_name) SELECT 'NoOp' FROM generate_series(1, $1)`, [claimRows]);
  const started = performance.now();
  let claimed = 0;
  for (;;) {
    const rows = await stores[kind].requestsClaim({
      limit: batch, launcherId: 'bench', host: 'bench', launcherPid: process.pid, processIdentity: null, queues: null, leaseMs: 60_000,
    });
    if (rows.length === 0) break;
    claimed += rows.length;
  }
  const rate = claimed / ((performance.now() - started) / 1000);
  // Only the rows this round claimed go; the ended ones stay. VACUUM clears their dead index entries.
  await pool.query(`DELETE FROM ${table} WHERE completed_at IS NULL`);
  await pool.query(`VACUUM ${table}`);
  return rate;
}

const best = (values) => Math.max(...values);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const plan = await pool.query(`EXPLAIN SELECT id FROM ${tables.history} WHERE completed_at IS NULL AND pid IS NULL AND tries < try_limit
  AND (delay_until IS NULL OR delay_until <= now()) ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED`);
console.log(plan.rows.map((row) => row['QUERY PLAN']).join('\n'));
const results = {};
for (const batch of [1, 50]) {
  const rates = { empty: [], history: [] };
  await claimRate('empty', batch); // warm-up: prepared statements, caches
  await claimRate('history', batch);
  for (let round = 0; round < rounds; round += 1) {
    for (const kind of round % 2 === 0 ? ['empty', 'history'] : ['history', 'empty']) rates[kind].push(await claimRate(kind, batch));
  }
  const empty = median(rates.empty);
  const history = median(rates.history);
  const bestRatio = best(rates.history) / best(rates.empty);
  results[`batch${batch}`] = {
    medianEmpty: Math.round(empty), medianHistory: Math.round(history), medianRatio: Number((history / empty).toFixed(3)),
    bestEmpty: Math.round(best(rates.empty)), bestHistory: Math.round(best(rates.history)), bestRatio: Number(bestRatio.toFixed(3)),
  };
  console.log(`claim ${batch} per statement, rows/s: median empty ${Math.round(empty)}, with ${historyRows} ended ${Math.round(history)} ` +
    `(ratio ${(history / empty).toFixed(3)}); best ${Math.round(best(rates.empty))} vs ${Math.round(best(rates.history))} (ratio ${bestRatio.toFixed(3)})`);
}

// Server time of one claim of 1 row, with 1,000 runnable rows waiting, alternating tables.
async function serverMs(kind) {
  const text = launchStatement(parseTableName(tables[kind]), { crashLimit: 3, backoff: { baseMs: 1000, maxMs: 1000 } }).text;
  const values = launchValues({ launcherId: 'bench', outcomes: [], starts: [], claim: {
    limit: 1, startNow: 1, host: 'bench', launcherPid: process.pid, launcherIdentity: null, queues: null, leaseMs: 60_000, maxOptionsBytes: 1 << 20,
  } });
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    return rows[0]['QUERY PLAN'][0]['Execution Time'];
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}
for (const table of Object.values(tables)) await pool.query(`INSERT INTO ${table} (task_class_name) SELECT 'NoOp' FROM generate_series(1, 1000)`);
const times = { empty: [], history: [] };
for (let i = 0; i < 400; i += 1) for (const kind of i % 2 === 0 ? ['empty', 'history'] : ['history', 'empty']) times[kind].push(await serverMs(kind));
results.serverMsPerClaim = {
  medianEmpty: Number(median(times.empty).toFixed(4)), medianHistory: Number(median(times.history).toFixed(4)),
  ratio: Number((median(times.history) / median(times.empty)).toFixed(3)),
};
console.log(`server execution time of one claim (median of 400): empty ${median(times.empty).toFixed(3)} ms, with ${historyRows} ended ${median(times.history).toFixed(3)} ms`);
console.log(JSON.stringify({ historyRows, claimRows, rounds, server: database.server, results }));
for (const name of Object.values(tables)) await pool.query(`DROP TABLE IF EXISTS ${name}, ${name}_attempts, ${name}_recurring`);
await db.destroy();
await database.close();
