import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../dist/shared/logger.js';
import { waitFor } from '../helpers/db.js';
import { jobFor } from '../helpers/jobs.js';
import { useTestPools } from '../helpers/pools.js';
import { useTestRunners } from '../helpers/runner.js';
import { useTestDatabase } from '../helpers/db.js';

/**
 * A spare child still booting when the pool closes is ended by the close: that is the stop, not a
 * failed start, and the log must not call it an error. A spare that really fails to start still
 * logs one.
 */
const pools = useTestPools();
const runners = useTestRunners();
const t = useTestDatabase();

interface Line {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

function collectingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: Line['level']) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

const stallBoot = fileURLToPath(new URL('../fixtures/scripts/stall-boot.cjs', import.meta.url));

const errorsAndWarnings = (lines: Line[]): string[] =>
  lines
    .filter((line) => line.level === 'error' || line.level === 'warn')
    .map((line) => `${line.level} ${line.message} ${JSON.stringify(line.fields ?? {})}`);

describe('spare children and a stop', () => {
  it('logs no error for spares a close ends while they boot', async () => {
    const { logger, lines } = collectingLogger();
    for (let round = 0; round < 10; round++) {
      const pool = pools.create({ concurrency: 2, spareChildren: 2, logger });
      pool.warm();
      expect(pool.pids).toHaveLength(2);
      for (const pid of pool.pids) pools.tracker.add(pid);
      await pool.close();
      // The spares' start handlers run on their exit, which close() awaited; one more turn of the
      // event loop lets anything they scheduled run too.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(errorsAndWarnings(lines)).toEqual([]);
  });

  it('logs no error for a fresh child a close ends while it boots, and its try says the pool closed', async () => {
    const { logger, lines } = collectingLogger();
    for (let round = 0; round < 5; round++) {
      const pool = pools.create({ concurrency: 1, logger, execArgv: [`--require=${stallBoot}`] });
      const attempt = pools.run(pool, await jobFor('Echo', { text: 'never' }));
      await waitFor(() => lines.filter((line) => line.message.endsWith('boot stalled')).length === round + 1, {
        what: 'the fresh child booting',
      });
      for (const pid of pool.pids) pools.tracker.add(pid);
      await pool.close();
      expect(await attempt.report).toMatchObject({
        outcome: 'crashed',
        pid: null,
        text: 'pool closed before the task started',
      });
    }
    expect(errorsAndWarnings(lines)).toEqual([]);
  });

  it('logs no error when a runner with spares is stopped right after its start', async () => {
    const { logger, lines } = collectingLogger();
    for (let round = 0; round < 3; round++) {
      const runner = await runners.start(t, { spareChildren: 2, logger });
      await runner.stop();
    }
    expect(errorsAndWarnings(lines).filter((line) => /child/.test(line))).toEqual([]);
  });

  it('still logs an error for a spare that fails to start outside a stop', async () => {
    const { logger, lines } = collectingLogger();
    const pool = pools.create({
      concurrency: 1,
      spareChildren: 1,
      logger,
      execArgv: ['--require=/nonexistent/cw-preload.cjs'],
    });
    pool.warm();
    const failed = await waitFor(() => lines.find((line) => line.level === 'error') ?? null, {
      timeoutMs: 10_000,
      what: 'the failed start logged',
    });
    expect(failed.message).toBe('spare child failed to start');
    expect(String(failed.fields?.text)).toMatch(/child failed to start \(exit code 1\).*Cannot find module/s);
  });
});
