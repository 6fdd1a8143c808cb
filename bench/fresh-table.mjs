// Five runs, each on a table created for it and never analyzed (autovacuum as the server has it):
// tasks/s per run, beside what the run cost: the runner's reads of the request and attempts tables
// (pg_stat_user_tables: sequential and index scans), whether autovacuum analyzed or vacuumed them,
// the server's WAL per task and the checkpoints during the run, the launcher's CPU and statements
// per task, and the machine's load. A run slow while its work per task matches the others' was
// slowed from outside (a busy machine, a shared server); a run slow with more work per task points
// at the runner (a plan, a batch size).
//
//   node bench/fresh-table.mjs [--mode thread|reused] [--concurrency N] [--tasks N] [--runs N]
//   [--analyze-after N] [--checkpoint-every ms]
//   FRESH_AUTO_EXPLAIN=ms logs the plan of every statement slower than ms to the server's log.
import os from 'node:os';
import pg from 'pg';
import { benchTable, openBenchDatabase } from './database.mjs';
import { runLoad } from './launchers.mjs';
import { percentile } from './stats.mjs';

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}
const mode = flag('mode', 'thread');
const concurrency = Number(flag('concurrency', mode === 'thread' ? 64 : 8));
const tasks = Number(flag('tasks', 20_000));
const runs = Number(flag('runs', 5));
// --analyze-after N: ANALYZE the table once N rows were updated (pg_stat_user_tables.n_tup_upd),
// as autovacuum does when its turn lands inside a run, to see the plans a mid-run analysis gives.
const analyzeAfter = flag('analyze-after', null);

// --checkpoint-every ms: a CHECKPOINT that often during the run, as other sessions cause on a shared
// server (DROP DATABASE and CREATE DATABASE force one), to see what a checkpoint inside a run costs.
const checkpointEvery = flag('checkpoint-every', null);

/** Sends CHECKPOINT every `everyMs` until stopped; returns a stop function giving how many ran. */
function checkpointsDuringRun(url, everyMs) {
  const client = new pg.Client({ connectionString: url });
  let stopped = false;
  let count = 0;
  const done = (async () => {
    await client.connect();
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, everyMs));
      if (stopped) break;
      await client.query('CHECKPOINT');
      count++;
    }
  })();
  return async () => {
    stopped = true;
    await done.catch(() => undefined);
    await client.end();
    return count;
  };
}

/** Runs ANALYZE once the table has seen `updates` updates; returns a stop function. */
function analyzeMidRun(url, updates) {
  const client = new pg.Client({ connectionString: url });
  let stopped = false;
  const done = (async () => {
    await client.connect();
    // The run drops and recreates the table: count the new one's updates only.
    const before = (await client.query('SELECT to_regclass($1)::oid AS oid', [benchTable])).rows[0].oid;
    while (!stopped) {
      await client.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await client.query(
        `SELECT coalesce(sum(n_tup_upd), 0)::float8 AS n FROM pg_stat_user_tables
         WHERE relid = to_regclass($1) AND relid IS DISTINCT FROM $2::oid`,
        [benchTable, before],
      );
      if (rows[0].n >= updates) {
        await client.query(`ANALYZE ${benchTable}`);
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  })();
  return async () => {
    stopped = true;
    const analyzed = await done.catch(() => false);
    await client.end();
    return analyzed;
  };
}

/**
 * Server-wide counters: the WAL position and the checkpoints so far. Both count every database's
 * sessions, so on a server others use too they tell what the run shared the server with, not
 * what the runner wrote (bench/run.mjs measures that on a server of its own).
 */
async function serverMarks(client) {
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query(
    `SELECT pg_current_wal_lsn()::text AS lsn, (checkpoints_timed + checkpoints_req)::int AS checkpoints
     FROM pg_stat_bgwriter`,
  );
  return rows[0];
}

async function tableStats(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await client.query(
      `SELECT relname, seq_scan::int, seq_tup_read::float8, coalesce(idx_scan, 0)::int AS idx_scan,
              last_autoanalyze IS NOT NULL AS autoanalyzed, last_autovacuum IS NOT NULL AS autovacuumed
       FROM pg_stat_user_tables WHERE relname IN ($1, $2) ORDER BY relname`,
      [benchTable, `${benchTable}_attempts`],
    );
    return rows;
  } finally {
    await client.end();
  }
}

const db = await openBenchDatabase();
const admin = new pg.Client({ connectionString: db.adminUrl });
await admin.connect();
// FRESH_AUTO_EXPLAIN=ms: every statement of this database slower than that logs its plan to the
// server's log (auto_explain), to see which plan a slow run took.
if (process.env.FRESH_AUTO_EXPLAIN) {
  await admin.query(`ALTER DATABASE "${db.name}" SET session_preload_libraries = 'auto_explain'`);
  await admin.query(
    `ALTER DATABASE "${db.name}" SET auto_explain.log_min_duration = ${Number(process.env.FRESH_AUTO_EXPLAIN)}`,
  );
  // With FRESH_AUTO_EXPLAIN_ANALYZE=1 the plans carry row counts and buffers (timing left off: cheaper).
  if (process.env.FRESH_AUTO_EXPLAIN_ANALYZE === '1') {
    for (const setting of ['log_analyze = on', 'log_buffers = on', 'log_timing = off'])
      await admin.query(`ALTER DATABASE "${db.name}" SET auto_explain.${setting}`);
  }
}
const rates = [];
try {
  for (let run = 1; run <= runs; run++) {
    const stopAnalyze = analyzeAfter === null ? null : analyzeMidRun(db.url, Number(analyzeAfter));
    const before = await serverMarks(admin);
    const stopCheckpoints = checkpointEvery === null ? null : checkpointsDuringRun(db.url, Number(checkpointEvery));
    const result = await runLoad(db, admin, { mode, concurrency, tasks, maxSeconds: 120 });
    await stopCheckpoints?.();
    const after = await serverMarks(admin);
    const { rows: wal } = await admin.query('SELECT pg_wal_lsn_diff($1, $2)::float8 AS bytes', [after.lsn, before.lsn]);
    // The machine's own load (other processes included): a run slowed by a busy machine shows here.
    const load = os.loadavg()[0].toFixed(1);
    const analyzed = stopAnalyze === null ? false : await stopAnalyze();
    // Statistics reach pg_stat_user_tables once the backends report them (they have exited by now).
    await new Promise((resolve) => setTimeout(resolve, 700));
    const stats = await tableStats(db.url);
    rates.push(result.tasksPerSecond);
    const parts = stats.map(
      (s) =>
        `${s.relname === benchTable ? 'requests' : 'attempts'}: seq ${s.seq_scan} (${s.seq_tup_read} tuples) ` +
        `idx ${s.idx_scan}${s.autoanalyzed ? ' autoanalyzed' : ''}${s.autovacuumed ? ' autovacuumed' : ''}`,
    );
    const line = [
      `${mode} c=${concurrency} run ${run}: ${Math.round(result.tasksPerSecond)}/s${analyzed ? ' (analyzed)' : ''}`,
      ...parts,
      `WAL ${Math.round(wal[0].bytes / result.completed)} B/task`,
      `${after.checkpoints - before.checkpoints} checkpoints`,
      `launcher ${Math.round(result.cpuUsPerTask)} µs CPU, ${result.statementsPerTask.toFixed(3)} statements per task`,
      `load ${load}`,
    ];
    process.stdout.write(`${line.join('; ')}\n`);
  }
  const median = percentile(rates, 50);
  const worst = Math.min(...rates);
  const range = `${Math.round(worst)}-${Math.round(Math.max(...rates))}/s`;
  const share = ((worst / median) * 100).toFixed(0);
  process.stdout.write(`${mode} c=${concurrency}: ${range}, median ${Math.round(median)}, worst ${share}% of median\n`);
} finally {
  await admin.end();
  await db.close();
}
