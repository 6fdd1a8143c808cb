import { describe, expect, it } from 'vitest';
import { getRow, useTestDatabase } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * What a task sends back is bounded before it reaches the launcher: a result or an error text
 * over the cap is an explicit error, and output without newlines is passed on in pieces. The
 * launcher's own memory stays flat while tasks throw hundreds of MiB at it.
 */
const runners = useTestRunners();
const t = useTestDatabase();
const mib = 1024 * 1024;

describe('limits on what tasks send back', () => {
  it('records explicit errors for huge results and messages and keeps the launcher small', async () => {
    const runner = await runners.start(t, { maxResultBytes: 64 * 1024, concurrency: 1 });
    const lines: number[] = [];
    runner.events.on('task:output', (e) => lines.push(e.line.length));
    let peak = 0;
    const base = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss - base);
    }, 10);
    const result = await runner.schedule('HugeResult', { bytes: 300 * mib }, { tryLimit: 1 });
    const error = await runner.schedule('HugeError', { bytes: 200 * mib }, { tryLimit: 1 });
    const flood = await runner.schedule('Flood', { mb: 100 }, { tryLimit: 1 });
    try {
      expect(await finalCompletion(runner, result, 60_000)).toMatchObject({ result: 'FAILED' });
      expect(await finalCompletion(runner, error, 60_000)).toMatchObject({ result: 'FAILED' });
      expect(await finalCompletion(runner, flood, 60_000)).toMatchObject({
        result: 'FINISHED',
        resultText: 'flooded 100 MiB',
      });
    } finally {
      clearInterval(sampler);
    }
    const resultRow = await getRow(t.pool, result);
    expect(resultRow.result_text).toMatch(
      /^RESULT_TOO_LARGE|task result is 314572800 bytes, over the limit of 65536 bytes/m,
    );
    const errorRow = await getRow(t.pool, error);
    expect(Buffer.byteLength(errorRow.result_text)).toBeLessThanOrEqual(64 * 1024);
    expect(errorRow.result_text).toMatch(/error text truncated: \d+ bytes, limit 65536\]$/);
    await runner.stop();
    expect(peak, 'launcher RSS growth while tasks produced 600 MiB').toBeLessThan(120 * mib);
    expect(Math.max(...lines)).toBeLessThanOrEqual(16 * 1024 + 20);
    expect(lines.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(100 * mib);
  });
});
