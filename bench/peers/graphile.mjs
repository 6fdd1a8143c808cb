// A peer on the same load: graphile-worker (in-process PostgreSQL job queue) runs no-op jobs on a
// fresh database of the same server, for a side-by-side line beside `npm run bench`. Not in CI
// and not a dependency of the package: `cd bench/peers && npm install && npm run graphile`.
//
//   npm run graphile -- [--concurrency 8] [--jobs 20000] [--local-queue 100] [--batch-ms 10] [--pickup-jobs 200]
//
// --local-queue and --batch-ms are graphile-worker's own batching (its best-tuned settings in
// issue 8's comparison); 0 turns them off.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import { openBenchDatabase } from '../database.mjs';
import { epochMs, round, summary, withTimeout } from '../stats.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const settings = { concurrency: 8, jobs: 20_000, localQueue: 100, batchMs: 10, pickupJobs: 200, gapMs: 50 };
const flags = {
  '--concurrency': 'concurrency',
  '--jobs': 'jobs',
  '--local-queue': 'localQueue',
  '--batch-ms': 'batchMs',
  '--pickup-jobs': 'pickupJobs',
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = flags[argv[i]];
  const value = Number(argv[i + 1]);
  if (key === undefined || !Number.isInteger(value) || value < 0) {
    process.stderr.write(
      `unknown or bad argument ${argv[i]} ${argv[i + 1] ?? ''}; known: ${Object.keys(flags).join(', ')} (non-negative integers)\n`,
    );
    process.exit(2);
  }
  settings[key] = value;
}

const db = await openBenchDatabase();
// Its per-job INFO lines would cost it a write per job; the runner's bench logs nothing either.
const silent = new Logger(() => () => undefined);
// One pool of ours for both, ended before the database is dropped.
const pgPool = new pg.Pool({ connectionString: db.url, max: settings.concurrency + 4 });
pgPool.on('error', () => undefined);
pgPool.on('connect', (client) => client.on('error', () => undefined));
const utils = await makeWorkerUtils({ pgPool, logger: silent });
await utils.migrate();
const counts = { started: new Map(), succeeded: 0, lastSuccessMs: 0 };
let waiter = null;
const runner = await run({
  pgPool,
  concurrency: settings.concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  logger: silent,
  preset: {
    worker: {
      ...(settings.localQueue > 1 ? { localQueue: { size: settings.localQueue } } : {}),
      completeJobBatchDelay: settings.batchMs > 0 ? settings.batchMs : -1,
      failJobBatchDelay: settings.batchMs > 0 ? settings.batchMs : -1,
    },
  },
  taskList: { noop: async () => undefined },
});
runner.events.on('job:start', ({ job }) => counts.started.set(String(job.id), epochMs()));
runner.events.on('job:success', () => {
  counts.succeeded++;
  counts.lastSuccessMs = epochMs();
  waiter?.();
});
const succeeded = (n, what) =>
  withTimeout(
    new Promise((resolve) => {
      waiter = () => {
        if (counts.succeeded >= n) resolve();
      };
      waiter();
    }),
    300_000,
    what,
  );

const report = { peer: 'graphile-worker 0.18.0', at: new Date().toISOString(), settings, server: db.server };
try {
  // Warm-up, then the bulk: from the first insert's commit to the last success.
  await utils.addJobs(Array.from({ length: 200 }, () => ({ identifier: 'noop', payload: {} })));
  await succeeded(200, 'the warm-up');
  const before = counts.succeeded;
  let firstCommitMs = null;
  for (let done = 0; done < settings.jobs; done += 5_000) {
    await utils.addJobs(
      Array.from({ length: Math.min(5_000, settings.jobs - done) }, () => ({ identifier: 'noop', payload: {} })),
    );
    firstCommitMs ??= epochMs();
  }
  await succeeded(before + settings.jobs, 'the bulk');
  report.jobsPerSecond = settings.jobs / ((counts.lastSuccessMs - firstCommitMs) / 1000);
  // Pickup on an idle worker: INSERT commit to job start, paced.
  const commits = new Map();
  for (let i = 0; i < settings.pickupJobs; i++) {
    const due = performance.now() + settings.gapMs;
    const job = await utils.addJob('noop', {});
    commits.set(String(job.id), epochMs());
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
  }
  await succeeded(before + settings.jobs + settings.pickupJobs, 'the pickup jobs');
  report.pickupMs = summary(
    [...commits].filter(([id]) => counts.started.has(id)).map(([id, at]) => counts.started.get(id) - at),
  );
} finally {
  await runner.stop();
  await utils.release();
  await pgPool.end();
  await db.close();
}

const p = report.pickupMs;
process.stdout.write(
  `| graphile-worker c=${settings.concurrency}, local queue ${settings.localQueue}, batch ${settings.batchMs} ms | ` +
    `${Math.round(report.jobsPerSecond).toLocaleString('en-US')}/s | pickup p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms |\n`,
);
const dir = path.join(here, '..', 'results');
await mkdir(dir, { recursive: true });
const file = path.join(dir, `peer-graphile-${report.at.replace(/[:.]/g, '-')}.json`);
await writeFile(file, `${JSON.stringify(report, (_, v) => round(v), 2)}\n`);
process.stdout.write(`written: ${path.relative(process.cwd(), file)}\n`);
