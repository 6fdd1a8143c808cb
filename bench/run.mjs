// The capacity-planning bench: what one machine sustains, each figure beside the raw limit it is
// bounded by. Progress on stderr, a Markdown table on stdout, the whole run as JSON and an SVG
// chart in bench/results/. Nothing here judges a speed: `--quick` is a smoke test for CI.
//
//   npm run bench                 # the full run (about 10-15 minutes on a 2-core machine)
//   npm run bench -- --quick      # about one minute; checks the bench works, figures are noise
//   npm run bench -- --only throughput,pickup --modes reused,thread
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { defaultPrefetch, resolveRunnerConfig } from '../dist/index.js';
import { renderChart } from './chart.mjs';
import { openBenchDatabase } from './database.mjs';
import { enqueueRates } from './enqueue.mjs';
import { runLoad, tasksDir } from './launchers.mjs';
import { forksPerTask, parsePlan } from './plan.mjs';
import { done, step } from './progress.mjs';
import { bareChildRoundTrip, bareForkRate, bareThreadRoundTrip, childRuntimeBootMs } from './raw-processes.mjs';
import { rawClaimRate, rawInsertRates, rawPickupMs } from './raw-database.mjs';
import { renderTables } from './report.mjs';
import { summary } from './stats.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

let plan;
try {
  plan = parsePlan(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}
if (plan.help !== undefined) {
  process.stdout.write(`${plan.help}\n`);
  process.exit(0);
}
const runs = (section) => plan.sections.includes(section);

/**
 * One measurement; a failure is recorded in the report and the run goes on (a long run is not
 * lost to one broken part), and the bench exits non-zero at the end.
 */
const failures = [];
async function measure(label, body) {
  step(label);
  try {
    return await body();
  } catch (error) {
    failures.push({ label, error: error.message });
    process.stderr.write(`\nbench: ${label} failed: ${error.message}\n`);
    return null;
  }
}

// The child environment and Node arguments the launcher processes' runners resolve to, so the
// bare forks run with exactly the same.
const childConfig = resolveRunnerConfig({ db: 'postgres://unused', tasksDir, childExecArgv: [] });
const childSpawn = { env: { ...childConfig.childEnv }, execArgv: [...childConfig.childExecArgv] };
const maxThreads = childConfig.threads.maxThreads;

const db = await openBenchDatabase();
// The driver reads statistics from the server's default database, so its own reads are not counted.
const admin = new pg.Client({ connectionString: db.adminUrl });
await admin.connect();
const report = {
  at: new Date().toISOString(),
  quick: plan.quick,
  machine: {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg()[0],
  },
  server: { version: db.server, dedicatedDatabase: db.dedicated },
  config: { maxThreads, childEnvNames: Object.keys(childSpawn.env).sort(), modes: plan.modes, plan },
  raw: {},
  throughput: [],
  pickup: {},
  enqueue: null,
  launchers: [],
  memory: null,
  failures,
};

try {
  if (runs('raw')) {
    const r = plan.raw;
    const forkConcurrencies = new Set(plan.modes.filter(forksPerTask).flatMap((m) => plan.throughput[m].concurrencies));
    const childConcurrencies = new Set([
      ...(plan.modes.includes('reused') ? plan.throughput.reused.concurrencies : []),
      ...(runs('launchers') && plan.launchers.mode === 'reused' ? [plan.launchers.concurrency] : []),
    ]);
    report.raw.forkPerSecond = {};
    // The same forks loading the no-op task's file (an ES module) before they exit: the least a
    // fresh try can cost, shown beside the bare fork so a run says how much of the gap is Node's.
    report.raw.taskLoadForkPerSecond = {};
    for (const c of [...forkConcurrencies].sort((a, b) => a - b)) {
      step(`raw: bare fork + exit, c=${c}`);
      report.raw.forkPerSecond[c] = await bareForkRate({ concurrency: c, seconds: r.forkSeconds, ...childSpawn });
      step(`raw: bare fork + require() of the no-op task file + exit, c=${c}`);
      report.raw.taskLoadForkPerSecond[c] = await bareForkRate({
        concurrency: c,
        seconds: r.forkSeconds,
        taskFile: path.join(tasksDir, 'NoOp.js'),
        ...childSpawn,
      });
    }
    step('raw: child runtime boot (fork to ready)');
    report.raw.childBootMs = await childRuntimeBootMs({ samples: r.bootSamples, ...childSpawn });
    report.raw.childRoundTripPerSecond = {};
    for (const c of [...childConcurrencies].sort((a, b) => a - b)) {
      step(`raw: bare child round trip on fd 3, ${c} children`);
      report.raw.childRoundTripPerSecond[c] = await bareChildRoundTrip({
        concurrency: c,
        seconds: r.roundTripSeconds,
        ...childSpawn,
      });
    }
    step(`raw: bare thread round trip, ${maxThreads} threads`);
    report.raw.threadRoundTripPerSecond = await bareThreadRoundTrip({
      threads: maxThreads,
      seconds: r.roundTripSeconds,
    });
    step('raw: claim statement, 1 row per statement');
    report.raw.claimPerSecond1 = await rawClaimRate(db, { rows: r.claimRows, batch: 1, seconds: r.roundTripSeconds });
    step(`raw: claim statement, ${r.claimBatch} rows per statement`);
    report.raw.claimBatch = r.claimBatch;
    report.raw.claimPerSecondBatch = await rawClaimRate(db, {
      rows: r.claimRows * 4,
      batch: r.claimBatch,
      seconds: r.roundTripSeconds,
    });
    // The launcher claims up to its default prefetch per statement: the claim limit of a run is
    // the statement's rate at that batch size.
    report.raw.claimPerSecondByBatch = {};
    const concurrencies = plan.modes.filter((m) => !forksPerTask(m)).flatMap((m) => plan.throughput[m].concurrencies);
    report.raw.prefetchByConcurrency = Object.fromEntries(concurrencies.map((c) => [c, defaultPrefetch(c)]));
    const batches = new Set(Object.values(report.raw.prefetchByConcurrency));
    for (const batch of [...batches].sort((a, b) => a - b)) {
      step(`raw: claim statement, ${batch} rows per statement`);
      report.raw.claimPerSecondByBatch[batch] = await rawClaimRate(db, {
        rows: Math.max(r.claimRows, batch * 40),
        batch,
        seconds: r.roundTripSeconds,
      });
    }
    step('raw: LISTEN/NOTIFY pickup and one-row claim');
    report.raw.pickupMs = await rawPickupMs(db, { samples: r.pickupSamples, gapMs: plan.pickup.gapMs });
    step('raw: bare inserts');
    report.raw.insert = await rawInsertRates(db, plan.enqueue);
  }

  if (runs('throughput')) {
    for (const mode of plan.modes) {
      const { concurrencies, tasks, maxSeconds } = plan.throughput[mode];
      for (const concurrency of concurrencies) {
        const row = await measure(`throughput: ${mode} c=${concurrency}, ${tasks} no-op tasks`, () =>
          runLoad(db, admin, { mode, concurrency, tasks, maxSeconds }),
        );
        if (row !== null) report.throughput.push(row);
      }
      // The launcher's young-generation cap (`npm start`'s --max-semi-space-size) is a memory
      // goal: the mode's middle concurrency runs again without it, to show what it costs.
      const concurrency = concurrencies[Math.floor(concurrencies.length / 2)];
      if (forksPerTask(mode) || concurrency === undefined) continue;
      const row = await measure(`throughput: ${mode} c=${concurrency}, Node's default semi-space`, () =>
        runLoad(db, admin, { mode, concurrency, tasks, maxSeconds, nodeFlags: [] }),
      );
      if (row !== null) report.throughput.push({ ...row, variant: 'nodeDefaults' });
    }
  }

  if (runs('pickup')) {
    const { jobs, gapMs, concurrency } = plan.pickup;
    for (const mode of plan.modes) {
      const load = await measure(
        `pickup: ${mode}, ${jobs} jobs ${gapMs} ms apart on an idle runner (c=${concurrency})`,
        () => runLoad(db, admin, { mode, concurrency, pickup: { jobs, gapMs }, maxSeconds: 60 }),
      );
      if (load !== null) report.pickup[mode] = { ...summary(load.pickupMs), concurrency, jobs, gapMs };
    }
  }

  if (runs('enqueue')) {
    report.enqueue = await measure('enqueue: single, concurrent, bulk', () => enqueueRates(db, plan.enqueue));
  }

  if (runs('launchers')) {
    const { counts, mode, concurrency, tasks, maxSeconds } = plan.launchers;
    for (const launchers of counts) {
      const row = await measure(`launchers: ${launchers} × ${mode} c=${concurrency} on one database`, () =>
        runLoad(db, admin, { mode, concurrency, launchers, tasks, maxSeconds }),
      );
      if (row !== null) report.launchers.push(row);
    }
  }

  if (runs('memory')) {
    const { mode, concurrency, tasks, maxSeconds } = plan.memory;
    report.memory = await measure(`memory: launcher RSS through ${tasks} ${mode} tasks (c=${concurrency})`, () =>
      runLoad(db, admin, { mode, concurrency, tasks, maxSeconds }),
    );
  }
} finally {
  done();
  await admin.end();
  await db.close();
}

const dir = path.resolve(plan.out ?? path.join(here, 'results'));
await mkdir(dir, { recursive: true });
const stamp = report.at.replace(/[:.]/g, '-');
const jsonFile = path.join(dir, `${plan.quick ? 'quick-' : ''}${stamp}.json`);
const svgFile = path.join(dir, `${plan.quick ? 'quick-' : ''}${stamp}.svg`);
await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
await writeFile(svgFile, renderChart(report));
const tables = renderTables(report);
process.stdout.write(tables);
const written = [jsonFile, svgFile];
if (plan.reference && failures.length === 0) {
  const referenceDir = path.join(here, 'reference');
  await mkdir(referenceDir, { recursive: true });
  await writeFile(path.join(referenceDir, 'capacity.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(referenceDir, 'capacity.svg'), renderChart(report));
  await writeFile(path.join(referenceDir, 'capacity.md'), tables);
  written.push(path.join(referenceDir, 'capacity.{json,svg,md}'));
}
if (failures.length > 0) {
  process.stdout.write(`\nFAILED: ${failures.map((f) => `${f.label}: ${f.error}`).join('\nFAILED: ')}\n`);
  process.exitCode = 1;
}
process.stdout.write(`\nwritten: ${written.map((file) => path.relative(process.cwd(), file)).join('\n         ')}\n`);
