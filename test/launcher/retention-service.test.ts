import { afterEach, describe, expect, it } from 'vitest';
import type { RunnerEvents } from '../../dist/index.js';
import { parseTableName } from '../../dist/config/identifiers.js';
import { resolveRetention, type RetentionConfig } from '../../dist/config/retention-config.js';
import { RetentionService } from '../../dist/launcher/retention-service.js';
import { silentLogger } from '../../dist/shared/logger.js';
import { TypedEmitter } from '../../dist/shared/typed-emitter.js';
import { writeTableOrigin } from '../../dist/store/table-adoption.js';
import { insertRequest, useTestDatabase } from '../helpers/db.js';

/**
 * The retention service's `runOnce()` against the real table: what the rules say goes, with its
 * history; waiting rows and an adopted table's rows stay. `start()` runs it every `intervalMs`.
 */
const t = useTestDatabase();
const table = parseTableName('task_runner_requests');
const day = 86_400_000;

afterEach(async () => {
  await writeTableOrigin(t.db as never, table, 'created');
});

function retention(options: Record<string, unknown> = {}) {
  const events = new TypedEmitter<RunnerEvents>();
  const pruned: RunnerEvents['retention:pruned'][] = [];
  events.on('retention:pruned', (result) => {
    pruned.push(result);
  });
  const errors: string[] = [];
  const service = new RetentionService({
    db: t.db as never,
    table,
    retention: resolveRetention(options) as RetentionConfig,
    events,
    logger: silentLogger,
    report: (error, during) => {
      errors.push(`${during}: ${error.message}`);
    },
  });
  return { service, events, pruned, errors };
}

/** An ended request `ageMs` old with one history row. */
async function ended(result: string, ageMs: number): Promise<string> {
  const at = new Date(Date.now() - ageMs);
  const id = await insertRequest(t.pool, { completed_at: at, started_at: at, result, tries: 1 });
  await t.pool.query(
    'INSERT INTO task_runner_requests_attempts (request_id, try, result, ended_at) VALUES ($1, 1, $2, $3)',
    [id, result, at],
  );
  return id;
}

async function remaining(): Promise<string[]> {
  const { rows } = await t.pool.query('SELECT id::text AS id FROM task_runner_requests ORDER BY id');
  return rows.map((row) => row.id);
}

async function historyOf(ids: readonly string[]): Promise<number> {
  const { rows } = await t.pool.query(
    'SELECT count(*)::int AS n FROM task_runner_requests_attempts WHERE request_id = ANY($1::bigint[])',
    [ids],
  );
  return rows[0].n;
}

describe('RetentionService.runOnce', () => {
  it('deletes what the rules say, with its history, and nothing else', async () => {
    const finishedOld = await ended('FINISHED', 2 * day);
    const finishedNew = await ended('FINISHED', day / 2);
    const failedOld = await ended('FAILED', 2 * day);
    const waiting = await insertRequest(t.pool, {
      created_at: new Date(Date.now() - 40 * day),
      tries: 1,
      result: 'FAILED',
    });
    const { service, pruned } = retention({ keep: { FINISHED: '1d', FAILED: false } });

    const dry = await service.runOnce({ dryRun: true });
    expect(dry).toEqual({ requests: { FINISHED: 1 }, attempts: 1, ran: true, more: false, adopted: false });
    expect(pruned).toEqual([]);
    expect(await remaining()).toHaveLength(4);

    const result = await service.runOnce();
    expect(result).toEqual({ requests: { FINISHED: 1 }, attempts: 1, ran: true, more: false, adopted: false });
    expect(pruned).toEqual([result]);
    expect(await remaining()).toEqual([finishedNew, failedOld, waiting]);
    expect(await historyOf([finishedOld])).toBe(0);
    expect(await historyOf([finishedNew, failedOld])).toBe(2);
  });

  it("deletes none of an adopted table's rows unless retention.pruneAdopted is true", async () => {
    const old = await ended('FINISHED', 40 * day);
    await writeTableOrigin(t.db as never, table, 'adopted');

    const keeping = retention();
    expect(await keeping.service.runOnce()).toEqual({
      requests: {},
      attempts: 0,
      ran: false,
      more: false,
      adopted: true,
    });
    expect(await remaining()).toEqual([old]);
    expect(await historyOf([old])).toBe(1);

    const pruning = retention({ pruneAdopted: true });
    expect(await pruning.service.runOnce()).toMatchObject({ requests: { FINISHED: 1 }, ran: true, adopted: true });
    expect(await remaining()).toEqual([]);
  });
});

describe('RetentionService start and stop', () => {
  it('runs every intervalMs once started; stop is safe before start and twice', async () => {
    const idle = retention();
    await idle.service.stop();
    await idle.service.stop();

    const old = await ended('FINISHED', 40 * day);
    const { service, events, errors } = retention({ intervalMs: 100 });
    const ran = events.waitFor('retention:pruned', (result) => result.requests.FINISHED === 1, 5_000);
    await service.start();
    await service.start();
    await ran;
    await service.stop();
    await service.stop();
    expect(await remaining()).not.toContain(old);
    expect(errors).toEqual([]);
  });
});
