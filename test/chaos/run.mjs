/**
 * `npm run test:chaos [-- --quick] [vitest args]`: builds nothing itself (the npm script does),
 * runs the chaos suite with vitest, then merges each scenario's figures (tmp/chaos/*.json) into
 * tmp/chaos-summary.json and prints it. `--quick` (or CHAOS_QUICK=1) runs the smaller counts CI uses.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const quick = args.includes('--quick') || process.env.CHAOS_QUICK === '1';
const rest = args.filter((arg) => arg !== '--quick');
const dir = path.resolve('tmp/chaos');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

const started = Date.now();
const vitest = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.chaos.config.ts', ...rest], {
  stdio: 'inherit',
  env: { ...process.env, CHAOS_QUICK: quick ? '1' : '0' },
});

const scenarios = {};
for (const file of readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort()) {
  const entry = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  scenarios[entry.scenario] = entry;
}
const summary = { quick, seconds: Math.round((Date.now() - started) / 1000), passed: vitest.status === 0, scenarios };
writeFileSync(path.resolve('tmp/chaos-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
console.log(`CHAOS_SUMMARY ${JSON.stringify(summary)}`);
process.exitCode = vitest.status ?? 1;
