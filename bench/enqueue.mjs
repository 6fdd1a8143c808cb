// Enqueue rates through the public scheduler: one call at a time, many calls at once, and
// scheduleMany of a bulk.
import pg from 'pg';
import { createClient } from '../dist/index.js';
import { benchTable, resetTable } from './database.mjs';
import { tick } from './progress.mjs';
import { percentile } from './stats.mjs';

const item = { taskClassName: 'NoOp', options: { created_from: 'bench' } };

export async function enqueueRates(db, { single, concurrent, parallel, bulk, bulkRepeats }) {
  await resetTable(db.url);
  // A pool as large as the callers, so concurrent calls are not queued behind the default four connections.
  const pool = new pg.Pool({ connectionString: db.url, max: parallel });
  const scheduler = createClient({ db: pool, tableName: benchTable });
  try {
    // Warm-up, untimed: the first few hundred calls run cold (lazy imports, the JIT), as in any
    // process that has just started; the figures are for one that has been running.
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        for (let i = 0; i < Math.max(50, single / (4 * parallel)); i++)
          await scheduler.schedule(item.taskClassName, item.options);
      }),
    );
    await scheduler.scheduleMany(Array.from({ length: Math.min(bulk, 2_000) }, () => item));
    let started = performance.now();
    for (let i = 0; i < single; i++) {
      await scheduler.schedule(item.taskClassName, item.options);
      if (i % 100 === 0) tick(`single ${i}/${single}`);
    }
    const singlePerSecond = single / ((performance.now() - started) / 1000);
    started = performance.now();
    await Promise.all(
      Array.from({ length: parallel }, async (_, lane) => {
        for (let i = lane; i < concurrent; i += parallel) await scheduler.schedule(item.taskClassName, item.options);
      }),
    );
    const concurrentPerSecond = concurrent / ((performance.now() - started) / 1000);
    const bulkTimes = [];
    for (let i = 0; i < bulkRepeats; i++) {
      const items = Array.from({ length: bulk }, () => item);
      started = performance.now();
      await scheduler.scheduleMany(items);
      bulkTimes.push(performance.now() - started);
      tick(`bulk ${i + 1}/${bulkRepeats}`);
    }
    return {
      singlePerSecond,
      concurrentPerSecond,
      parallel,
      bulkRows: bulk,
      bulkMs: percentile(bulkTimes, 50),
      bulkMsBest: Math.min(...bulkTimes),
    };
  } finally {
    await scheduler.close();
    await pool.end();
  }
}
