// What a bench run measures: the full capacity-planning run by default, a one-minute smoke with
// --quick (CI keeps the bench working with it; its figures mean nothing). Flags narrow a run.
const usage = `usage: npm run bench -- [--quick] [--modes reused,thread,fresh,spare] [--only sections] [--concurrency list] [--out dir] [--reference]

  --quick          about one minute: every section once, few tasks (a smoke test, not figures)
  --modes list     modes to run (default all): reused (child per slot, maxTasksPerChild .inf),
                   thread (worker threads), fresh (fork per task, no spares), spare (spare
                   children, one task each: the default configuration)
  --only list      sections to run (default all): raw, throughput, pickup, enqueue, launchers, memory
  --concurrency list  throughput at these concurrencies only (default per mode: reused 1,8,32;
                   thread 8,64,256; fresh and spare 2,8)
  --out dir        where the JSON and SVG go (default bench/results, not committed)
  --reference      also write bench/reference/capacity.{json,svg,md}: the committed run the
                   performance page (docs/performance.md) shows (only from a full run on a quiet machine)

Database: BENCH_DATABASE_URL, TEST_DATABASE_URL or DATABASE_URL, else postgres://root@127.0.0.1:5432
when it answers. A fresh database is created per run (dropped after) when the role may.

Launchers: each is the standalone launcher as a user starts it (\`node <npm start's flags>
dist/launcher.js --config FILE\`, the bench's options in FILE), read from outside: its per-task log
lines, /proc for CPU and RSS, SIGTERM to stop.

Environment: BENCH_RUNNER_OPTIONS='{"prefetch":512}' merges runner options into every launcher's
config file (to try a setting); BENCH_LAUNCHER_ARGV='--cpu-prof --cpu-prof-dir=prof' adds Node
arguments to the launchers (to profile them; their children then get none); BENCH_OPS=1 serves
metrics and the dashboard too; BENCH_HARNESS=1 runs the in-process harness
(bench/launcher-process.mjs) instead of the standalone launcher, to compare the two; BENCH_TRACE=prefix
(harness only, it needs the runner's events) writes each launcher's statement timeline and how often
a slot stood free with no held row to <prefix>.<pid>.txt.`;

export const allModes = ['reused', 'thread', 'fresh', 'spare'];
export const allSections = ['raw', 'throughput', 'pickup', 'enqueue', 'launchers', 'memory'];

/**
 * Runner options per mode. Every mode keeps the default prefetch and group commit; the child
 * modes differ only in how children are kept, so their ratios tell the cost of isolation.
 */
export function modeOptions(mode, concurrency) {
  switch (mode) {
    case 'reused':
      return { spareChildren: concurrency, maxTasksPerChild: Infinity };
    case 'thread':
      return { defaultMode: 'thread' };
    case 'fresh':
      return { spareChildren: 0, maxTasksPerChild: 1 };
    case 'spare':
      return { spareChildren: concurrency, maxTasksPerChild: 1 };
    default:
      throw new Error(`unknown mode ${mode}; known: ${allModes.join(', ')}`);
  }
}

/** Whether a mode forks a process per task (its limit is the bare fork rate). */
export function forksPerTask(mode) {
  return mode === 'fresh' || mode === 'spare';
}

function full() {
  return {
    quick: false,
    throughput: {
      // tasks per run and a cap on its duration: a slow build still finishes the bench.
      reused: { concurrencies: [1, 8, 32], tasks: 30_000, maxSeconds: 30 },
      thread: { concurrencies: [8, 64, 256], tasks: 50_000, maxSeconds: 30 },
      fresh: { concurrencies: [2, 8], tasks: 400, maxSeconds: 30 },
      spare: { concurrencies: [2, 8], tasks: 400, maxSeconds: 30 },
    },
    pickup: { jobs: 200, gapMs: 50, concurrency: 8 },
    enqueue: { single: 2_000, concurrent: 5_000, parallel: 8, bulk: 10_000, bulkRepeats: 5 },
    launchers: { counts: [1, 2, 4], mode: 'reused', concurrency: 8, tasks: 30_000, maxSeconds: 30 },
    memory: { mode: 'thread', concurrency: 64, tasks: 100_000, maxSeconds: 240 },
    raw: { forkSeconds: 5, roundTripSeconds: 3, claimRows: 5_000, claimBatch: 64, bootSamples: 20, pickupSamples: 100 },
  };
}

function quick() {
  return {
    quick: true,
    throughput: {
      reused: { concurrencies: [8], tasks: 1_000, maxSeconds: 8 },
      thread: { concurrencies: [64], tasks: 2_000, maxSeconds: 8 },
      fresh: { concurrencies: [2], tasks: 20, maxSeconds: 8 },
      spare: { concurrencies: [2], tasks: 20, maxSeconds: 8 },
    },
    pickup: { jobs: 20, gapMs: 50, concurrency: 4 },
    enqueue: { single: 200, concurrent: 400, parallel: 8, bulk: 10_000, bulkRepeats: 1 },
    launchers: { counts: [1, 2], mode: 'reused', concurrency: 4, tasks: 1_000, maxSeconds: 8 },
    memory: { mode: 'thread', concurrency: 64, tasks: 2_000, maxSeconds: 8 },
    raw: { forkSeconds: 1, roundTripSeconds: 0.5, claimRows: 300, claimBatch: 64, bootSamples: 3, pickupSamples: 10 },
  };
}

function list(flag, value, known) {
  if (value === undefined || value.startsWith('--'))
    throw new Error(`${flag} needs a comma-separated list\n\n${usage}`);
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  for (const item of items)
    if (!known.includes(item)) throw new Error(`${flag}: unknown ${item}; known: ${known.join(', ')}`);
  return items;
}

/** Parses the command line; throws with the usage text for anything it does not know. */
export function parsePlan(argv) {
  let isQuick = false;
  let modes = allModes;
  let sections = allSections;
  let out = null;
  let reference = false;
  let concurrencies = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') isQuick = true;
    else if (arg === '--modes') modes = list(arg, argv[++i], allModes);
    else if (arg === '--only') sections = list(arg, argv[++i], allSections);
    else if (arg === '--reference') reference = true;
    else if (arg === '--concurrency') {
      concurrencies = (argv[++i] ?? '').split(',').filter(Boolean).map(Number);
      if (concurrencies.length === 0 || !concurrencies.every((c) => Number.isInteger(c) && c > 0)) {
        throw new Error(`--concurrency needs a comma-separated list of positive integers\n\n${usage}`);
      }
    } else if (arg === '--out') {
      out = argv[++i];
      if (out === undefined) throw new Error(`--out needs a directory\n\n${usage}`);
    } else if (arg === '--help' || arg === '-h') return { help: usage };
    else throw new Error(`unknown argument ${arg}\n\n${usage}`);
  }
  if (reference && (isQuick || sections !== allSections || modes !== allModes || concurrencies !== null)) {
    throw new Error('--reference takes a full run: no --quick, --only, --modes or --concurrency');
  }
  const plan = isQuick ? quick() : full();
  if (concurrencies !== null) for (const mode of allModes) plan.throughput[mode].concurrencies = concurrencies;
  return { ...plan, modes, sections, out, reference };
}
