/**
 * One chaos launcher, as a separate OS process: `createRunner` from the built package, configured
 * by the JSON in `CHAOS_LAUNCHER` (any runner option; `host` is this launcher's host identity).
 * Events the tests wait on go to stdout as JSON lines; the runner's log goes to stderr as JSON
 * lines. SIGTERM stops it gracefully; SIGUSR2 collects garbage (when run with --expose-gc) and
 * reports its resident memory.
 */
import { fileURLToPath } from 'node:url';
import { createRunner, createStreamLogger } from '../../dist/index.js';

const options = JSON.parse(process.env.CHAOS_LAUNCHER ?? '{}');
const tasksDir = fileURLToPath(new URL('./tasks/', import.meta.url));
const say = (event, fields = {}) => process.stdout.write(`${JSON.stringify({ event, at: Date.now(), ...fields })}\n`);

const runner = createRunner({
  tasksDir,
  logger: createStreamLogger(process.stderr, { level: 'warn', format: 'json' }),
  taskLogLevel: 'debug',
  ...options,
  childEnv: { ...options.childEnv, CHAOS_HOST: options.host },
});
runner.events.on('runner:started', (e) => say('started', e));
runner.events.on('probe:recovered', (e) => say('recovered', e));
runner.events.on('error', (e) => say('error', { during: e.during, message: e.error.message }));
if (options.reportClaims) runner.events.on('task:claimed', (e) => say('claimed', { n: e.ids.length }));

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  runner.stop().then(
    () => {
      say('stopped');
      process.exitCode = 0;
    },
    (error) => {
      say('error', { during: 'stop', message: error.message });
      process.exitCode = 1;
    },
  );
});
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  const { rss, heapUsed, external } = process.memoryUsage();
  say('rss', { rss, heapUsed, external });
});

await runner.start();
