// Claim rate of the launcher's own statement on a table holding 1,000,000 ended requests, beside
// the rate on an empty one: retention keeps tables small, but a table that keeps every row
// (`retention: false`) must not make claims slower. Rounds alternate between the two tables, so
// a machine's passing load falls on both alike; the medians are compared.
//
// node bench/claim-with-history.mjs   (BENCH_DATABASE_URL or DATABASE_URL; else an embedded server)
// CLAIM_HISTORY_ROWS, CLAIM_ROWS, CLAIM_ROUNDS change the sizes.
//
// Two figures per table: the claim rate seen by a client (round trips included; commits without
// waiting for the WAL flush, which costs both tables the same and only adds noise), with claims
// from the two tables interleaved statement by statement so that other load on the machine falls
// on both alike; and the server's own execution time of one claim (EXPLAIN ANALYZE of the launch
// statement's claim, rolled back), which round trips and scheduling do not blur.
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
const rounds = Number(process.env.CLAIM_ROUNDS ?? 5);

const database = await openBenchDatabase();
const pool = new pg.Pool({ connectionString: database.url, max: 2, options: '-c synchronous_commit=off' });
const db = new Kysely({ dialect: new PostgresDialect({ pool }) });
const tables = { empty: 'claim_bench_empty', history: 'claim_bench_history' };
const stores = {};
for (const [kind, name] of Object.entries(tables)) {
  await pool.query(`DROP TABLE IF EXISTS ${name}, ${name}_attempts, ${name}_recurring`);
  await migrate(db, { tableName: name });
  stores[kind] = new RequestStore({
    db,
    sql: poolClient(pool),
    table: parseTableName(name),
    backoff: { baseMs: 1000, maxMs: 1000 },
    crashLimit: 3,
  });
}
console.log(`filling ${tables.history} with ${historyRows} ended requests ...`);
await pool.query(
  `INSERT INTO ${tables.history} (task_class_name, created_at, started_at, completed_at, result, tries, result_text)
  SELECT 'NoOp', now() - interval '1 day', now() - interval '1 day', now() - (g % 86400) * interval '1 second',
         (ARRAY['FINISHED','FINISHED','FINISHED','FAILED','CANCELLED'])[1 + g % 5], 1, 'NOOP ' || g || ': OK!'
  FROM generate_series(1, $1) AS g`,
  [historyRows],
);
await pool.query(`VACUUM ANALYZE ${tables.empty}`);
await pool.query(`VACUUM ANALYZE ${tables.history}`);

/** Rows to claim in both tables, analysed as autovacuum would, so both plans are the real ones. */
async function refill() {
  for (const table of Object.values(tables)) {
    await pool.query(`DELETE FROM ${table} WHERE completed_at IS NULL`);
    await pool.query(`VACUUM ${table}`);
    await pool.query(`INSERT INTO ${table} (task_class_name) SELECT 'NoOp' FROM generate_series(1, $1)`, [claimRows]);
    await pool.query(`ANALYZE ${table}`);
  }
}

/**
 * One round: claims from the two tables in turn, statement by statement (the order flipping each
 * step), timing each; a burst of load from elsewhere falls on both tables alike.
 */
async function claimRound(batch) {
  await refill();
  const spent = { empty: 0, history: 0 };
  const claimed = { empty: 0, history: 0 };
  const done = new Set();
  for (let step = 0; done.size < 2; step += 1) {
    for (const kind of step % 2 === 0 ? ['empty', 'history'] : ['history', 'empty']) {
      if (done.has(kind)) continue;
      const started = performance.now();
      const { claimed: rows } = await stores[kind].requestsLaunch({
        launcherId: 'bench',
        outcomes: [],
        starts: [],
        claim: {
          limit: batch,
          startNow: batch,
          host: 'bench',
          launcherPid: process.pid,
          launcherIdentity: null,
          queues: null,
          leaseMs: 60_000,
          maxOptionsBytes: 2_147_483_647,
        },
      });
      spent[kind] += performance.now() - started;
      claimed[kind] += rows.length;
      if (rows.length === 0) done.add(kind);
    }
  }
  return { empty: claimed.empty / (spent.empty / 1000), history: claimed.history / (spent.history / 1000) };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const plan =
  await pool.query(`EXPLAIN SELECT id FROM ${tables.history} WHERE completed_at IS NULL AND pid IS NULL AND tries < try_limit
  AND (delay_until IS NULL OR delay_until <= now()) ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED`);
console.log(plan.rows.map((row) => row['QUERY PLAN']).join('\n'));
const results = {};
for (const batch of [1, 50]) {
  await claimRound(batch); // warm-up: prepared statements, caches
  const rates = { empty: [], history: [] };
  for (let round = 0; round < rounds; round += 1) {
    const rate = await claimRound(batch);
    rates.empty.push(rate.empty);
    rates.history.push(rate.history);
  }
  const empty = median(rates.empty);
  const history = median(rates.history);
  results[`batch${batch}`] = {
    empty: Math.round(empty),
    history: Math.round(history),
    ratio: Number((history / empty).toFixed(3)),
  };
  console.log(
    `claim ${batch} per statement, rows/s (median of ${rounds} rounds): empty ${Math.round(empty)}, ` +
      `with ${historyRows} ended rows ${Math.round(history)} (ratio ${(history / empty).toFixed(3)})`,
  );
}

// Server time of one claim of 1 row, with the runnable rows waiting, alternating tables.
async function serverMs(kind) {
  const text = launchStatement(parseTableName(tables[kind]), {
    crashLimit: 3,
    backoff: { baseMs: 1000, maxMs: 1000 },
  }).text;
  const values = launchValues({
    launcherId: 'bench',
    outcomes: [],
    starts: [],
    claim: {
      limit: 1,
      startNow: 1,
      host: 'bench',
      launcherPid: process.pid,
      launcherIdentity: null,
      queues: null,
      leaseMs: 60_000,
      maxOptionsBytes: 1 << 20,
    },
  });
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
await refill();
const times = { empty: [], history: [] };
for (let i = 0; i < 400; i += 1)
  for (const kind of i % 2 === 0 ? ['empty', 'history'] : ['history', 'empty']) times[kind].push(await serverMs(kind));
results.serverMsPerClaim = {
  medianEmpty: Number(median(times.empty).toFixed(4)),
  medianHistory: Number(median(times.history).toFixed(4)),
  ratio: Number((median(times.history) / median(times.empty)).toFixed(3)),
};
console.log(
  `server execution time of one claim (median of 400): empty ${median(times.empty).toFixed(3)} ms, with ${historyRows} ended ${median(times.history).toFixed(3)} ms`,
);
console.log(JSON.stringify({ historyRows, claimRows, rounds, server: database.server, results }));
for (const name of Object.values(tables))
  await pool.query(`DROP TABLE IF EXISTS ${name}, ${name}_attempts, ${name}_recurring`);
await db.destroy();
await database.close();
