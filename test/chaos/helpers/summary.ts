/**
 * Scale and report. `CHAOS_QUICK=1` (or `npm run test:chaos -- --quick`) shrinks every count for
 * CI; each scenario writes its figures to `tmp/chaos/<scenario>.json`, which test/chaos/run.mjs
 * merges into one machine-readable summary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const quick = process.env.CHAOS_QUICK === '1';

/** The full figure, or the quick one. */
export function scale(full: number, quickCount: number): number {
  return quick ? quickCount : full;
}

export function report(scenario: string, figures: Record<string, unknown>): void {
  const dir = path.resolve('tmp/chaos');
  mkdirSync(dir, { recursive: true });
  const entry = { scenario, quick, at: new Date().toISOString(), ...figures };
  writeFileSync(path.join(dir, `${scenario}.json`), `${JSON.stringify(entry, null, 2)}\n`);
  console.log(`CHAOS ${JSON.stringify(entry)}`);
}
