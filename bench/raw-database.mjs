// Raw limits of PostgreSQL on this machine for the statements the runner depends on: the store's
// real claim statement (RequestStore, an internal of the package: the public API has no bare
// claim), a bare LISTEN/NOTIFY pickup, and bare inserts. The runner's figures are read against them.
import os from 'node:os';
import pg from 'pg';
import { createClient, defaults, parseTableName } from '../dist/index.js';
import { channelFor } from '../dist/config/identifiers.js';
import { openDatabase } from '../dist/store/database.js';
import { RequestStore } from '../dist/store/request-store.js';
import { poolClient } from '../dist/store/sql-client.js';
import { benchTable, resetTable } from './database.mjs';
import { tick } from './progress.mjs';
import { epochMs, summary } from './stats.mjs';

/** The store the runner builds, over a pool of `size` connections (prepared statements, as the runner). */
function openStore(url, size) {
  const pool = new pg.Pool({ connectionString: url, max: size });
  const database = openDatabase(pool);
  const store = new RequestStore({
    db: database.db,
    sql: poolClient(pool),
    table: parseTableName(benchTable),
    backoff: defaults.retryBackoff,
    crashLimit: defaults.crashLimit,
  });
  return { store, close: () => pool.end() };
}

/** A launch with a claim of `limit` rows alone (the launcher's pickup path: the claim statement). */
function claimOrder(limit) {
  return {
    launcherId: `bench-raw-${process.pid}`,
    outcomes: [],
    starts: [],
    claim: {
      limit,
      startNow: limit,
      host: os.hostname(),
      launcherPid: process.pid,
      launcherIdentity: null,
      queues: null,
      leaseMs: 60_000,
      maxOptionsBytes: 2_147_483_647,
    },
  };
}

async function fill(url, rows) {
  const scheduler = createClient({ db: url, tableName: benchTable });
  try {
    for (let done = 0; done < rows; done += 5_000) {
      await scheduler.scheduleMany(
        Array.from({ length: Math.min(5_000, rows - done) }, () => ({ taskClassName: 'NoOp' })),
      );
    }
  } finally {
    await scheduler.close();
  }
}

/**
 * Rows claimed per second by the store's claim statement, `batch` rows per statement, one
 * connection, until `rows` are claimed or `seconds` have passed.
 */
export async function rawClaimRate(db, { rows, batch, seconds }) {
  await resetTable(db.url);
  await fill(db.url, rows);
  const { store, close } = openStore(db.url, 1);
  try {
    await store.requestsLaunch(claimOrder(1)); // prepares the statement on the connection
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let claimed = 1;
    while (claimed < rows && performance.now() < deadline) {
      const got = (await store.requestsLaunch(claimOrder(batch))).claimed.length;
      if (got === 0) break;
      claimed += got;
      tick(`${claimed}/${rows}`);
    }
    return (claimed - 1) / ((performance.now() - started) / 1000);
  } finally {
    await close();
  }
}

/**
 * The floor under pickup latency: a bare LISTEN connection hears the insert trigger's NOTIFY and
 * runs the claim statement for one row. Milliseconds from the INSERT's commit returning to the
 * enqueuer to the claim returning, paced `gapMs` apart on an otherwise idle database.
 */
export async function rawPickupMs(db, { samples, gapMs }) {
  await resetTable(db.url);
  const { store, close } = openStore(db.url, 1);
  const listener = new pg.Client({ connectionString: db.url });
  const scheduler = createClient({ db: db.url, tableName: benchTable });
  const claimedAt = new Map();
  try {
    await listener.connect();
    await store.requestsLaunch(claimOrder(1));
    let claiming = Promise.resolve();
    listener.on('notification', () => {
      claiming = claiming.then(async () => {
        for (const row of (await store.requestsLaunch(claimOrder(1))).claimed) claimedAt.set(row.id, epochMs());
      });
    });
    await listener.query(`LISTEN "${channelFor(parseTableName(benchTable))}"`);
    const commits = new Map();
    for (let i = 0; i < samples; i++) {
      const due = performance.now() + gapMs;
      const id = await scheduler.schedule('NoOp');
      commits.set(id, epochMs());
      tick(`${i + 1}/${samples}`);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    }
    await claiming;
    return summary([...commits].filter(([id]) => claimedAt.has(id)).map(([id, at]) => claimedAt.get(id) - at));
  } finally {
    await scheduler.close();
    await listener.end();
    await close();
  }
}

/**
 * Bare inserts into the request table without the scheduler: one row per statement on one
 * connection, the same on `parallel` connections, and `bulk` rows in one statement.
 */
export async function rawInsertRates(db, { single, concurrent, parallel, bulk }) {
  await resetTable(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: parallel });
  const one = `INSERT INTO ${benchTable} (task_class_name, options) VALUES ('NoOp', $1) RETURNING id`;
  try {
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        for (let i = 0; i < 50; i++) await pool.query(one, ['created_from: bench']);
      }),
    );
    let started = performance.now();
    for (let i = 0; i < single; i++) await pool.query(one, ['created_from: bench']);
    const singlePerSecond = single / ((performance.now() - started) / 1000);
    started = performance.now();
    await Promise.all(
      Array.from({ length: parallel }, async (_, lane) => {
        for (let i = lane; i < concurrent; i += parallel) await pool.query(one, ['created_from: bench']);
      }),
    );
    const concurrentPerSecond = concurrent / ((performance.now() - started) / 1000);
    started = performance.now();
    await pool.query(
      `INSERT INTO ${benchTable} (task_class_name, options) SELECT 'NoOp', $1 FROM generate_series(1, $2) RETURNING id`,
      ['created_from: bench', bulk],
    );
    const bulkMs = performance.now() - started;
    return { singlePerSecond, concurrentPerSecond, bulkMs };
  } finally {
    await pool.end();
  }
}
