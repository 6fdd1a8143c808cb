import { describe, expect, it } from 'vitest';
import { createClient, type RunnerClient } from '../../dist/index.js';
import { cleanEnv, cli, workDir } from '../cli/cli-process.js';
import { insertRequest, useTestDatabase } from '../helpers/db.js';

/**
 * Unique requests: a schedule with a key that a request in the named states holds returns that
 * request's id instead of adding a row, however many clients race on the key.
 */
const t = useTestDatabase();

async function withClients<T>(count: number, body: (clients: RunnerClient[]) => Promise<T>): Promise<T> {
  const clients = Array.from({ length: count }, () => createClient({ db: t.url }));
  try {
    return await body(clients);
  } finally {
    await Promise.all(clients.map((scheduler) => scheduler.close()));
  }
}

async function rowsOfKey(key: string): Promise<string[]> {
  const { rows } = await t.pool.query('SELECT id::text FROM task_runner_requests WHERE unique_key = $1 ORDER BY id', [
    key,
  ]);
  return rows.map((row) => row.id);
}

describe('unique requests', () => {
  it('50 concurrent clients on one key make one row, and all get its id', { timeout: 60_000 }, async () => {
    // 10 clients with up to 4 connections each: 50 calls, up to 40 transactions at once.
    await withClients(10, async (clients) => {
      for (const uniqueWhile of ['active', 'waiting', 'ended-within:1h'] as const) {
        const key = `account:${uniqueWhile}`;
        const ids = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            clients[i % clients.length]!.schedule('Echo', { call: i }, { uniqueKey: key, uniqueWhile }),
          ),
        );
        const rows = await rowsOfKey(key);
        expect(rows).toHaveLength(1);
        expect(new Set(ids)).toEqual(new Set(rows));
      }
    });
  });

  it('waiting: a running request does not count, a waiting one does', async () => {
    await withClients(1, async ([scheduler]) => {
      const first = await scheduler!.schedule('Echo', {}, { uniqueKey: 'reindex:7', uniqueWhile: 'waiting' });
      expect(await scheduler!.schedule('Echo', {}, { uniqueKey: 'reindex:7', uniqueWhile: 'waiting' })).toBe(first);
      await t.pool.query('UPDATE task_runner_requests SET pid = 999999, tries = 1, launcher_id = $2 WHERE id = $1', [
        first,
        'elsewhere',
      ]);
      const second = await scheduler!.schedule('Echo', {}, { uniqueKey: 'reindex:7', uniqueWhile: 'waiting' });
      expect(second).not.toBe(first);
      expect(await scheduler!.schedule('Echo', {}, { uniqueKey: 'reindex:7', uniqueWhile: 'waiting' })).toBe(second);
      // `active` counts the running one too: the newest matching request is returned.
      expect(await scheduler!.schedule('Echo', {}, { uniqueKey: 'reindex:7' })).toBe(second);
      expect(await rowsOfKey('reindex:7')).toEqual([first, second]);
    });
  });

  it('active: an ended request does not count; ended-within counts it for the given time', async () => {
    const ended = await insertRequest(t.pool, {
      unique_key: 'digest',
      completed_at: new Date(Date.now() - 10 * 60_000),
      result: 'FINISHED',
      tries: 1,
    });
    await withClients(1, async ([scheduler]) => {
      expect(await scheduler!.schedule('Echo', {}, { uniqueKey: 'digest', uniqueWhile: 'ended-within:1h' })).toBe(
        ended,
      );
      const fresh = await scheduler!.schedule('Echo', {}, { uniqueKey: 'digest', uniqueWhile: 'ended-within:5m' });
      expect(fresh).not.toBe(ended);
      // The new one is active, so every mode now finds it.
      expect(await scheduler!.schedule('Echo', {}, { uniqueKey: 'digest' })).toBe(fresh);
      expect(await scheduler!.schedule('Echo', {}, { uniqueKey: 'digest', uniqueWhile: 'ended-within:5m' })).toBe(
        fresh,
      );
      await t.pool.query(`UPDATE task_runner_requests SET completed_at = now(), result = 'FAILED' WHERE id = $1`, [
        fresh,
      ]);
      const third = await scheduler!.schedule('Echo', {}, { uniqueKey: 'digest', uniqueWhile: 'active' });
      expect([ended, fresh]).not.toContain(third);
    });
  });

  it('scheduleMany: keyless items are inserted, a key shared in the batch gets one request', async () => {
    await withClients(1, async ([scheduler]) => {
      const held = await scheduler!.schedule('Echo', {}, { uniqueKey: 'held' });
      const ids = await scheduler!.scheduleMany([
        { taskClassName: 'Echo', options: { n: 1 } },
        { taskClassName: 'Echo', options: { n: 2 }, params: { uniqueKey: 'batch' } },
        { taskClassName: 'Echo', options: { n: 3 }, params: { uniqueKey: 'held' } },
        { taskClassName: 'Echo', options: { n: 4 }, params: { uniqueKey: 'batch' } },
        { taskClassName: 'Echo', options: { n: 5 } },
      ]);
      expect(ids[2]).toBe(held);
      expect(ids[3]).toBe(ids[1]);
      expect(new Set([ids[0], ids[1], ids[4], held]).size).toBe(4);
      const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM task_runner_requests');
      expect(rows[0].n).toBe(4);
    });
  });

  it("inside the caller's transaction: rolled back, the key is free again", async () => {
    await withClients(1, async ([scheduler]) => {
      await expect(
        scheduler!.db.transaction().execute(async (trx) => {
          await scheduler!.schedule('Echo', {}, { uniqueKey: 'tx', db: trx });
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect(await rowsOfKey('tx')).toEqual([]);
      const client = await t.pool.connect();
      try {
        await client.query('BEGIN');
        const id = await scheduler!.schedule('Echo', {}, { uniqueKey: 'tx', db: client });
        await client.query('COMMIT');
        expect(await rowsOfKey('tx')).toEqual([id]);
      } finally {
        client.release();
      }
    });
  });

  it('refuses a bad uniqueWhile by name', async () => {
    await withClients(1, async ([scheduler]) => {
      await expect(
        scheduler!.schedule('Echo', {}, { uniqueKey: 'k', uniqueWhile: 'forever' as never }),
      ).rejects.toThrow(/uniqueWhile must be "waiting", "active" or "ended-within/);
      await expect(
        scheduler!.schedule('Echo', {}, { uniqueKey: 'k', uniqueWhile: 'ended-within:soon' }),
      ).rejects.toThrow(/duration must look like/);
      await expect(scheduler!.schedule('Echo', {}, { uniqueWhile: 'waiting' })).rejects.toThrow(
        /uniqueWhile needs a uniqueKey/,
      );
      expect(await rowsOfKey('k')).toEqual([]);
    });
  });

  it('the CLI schedule takes --unique-key and prints the existing id', async () => {
    const dir = await workDir();
    try {
      const args = ['schedule', 'NoOp', '--unique-key', 'cli-key'];
      const env = cleanEnv({ DATABASE_URL: t.url });
      const first = await cli(args, { cwd: dir.dir, env });
      expect(first.stderr).toBe('');
      const second = await cli([...args, '--unique-while', 'ended-within:10m'], { cwd: dir.dir, env });
      expect(second.code).toBe(0);
      expect(second.stdout).toBe(first.stdout);
      expect(await rowsOfKey('cli-key')).toEqual([first.stdout.trim()]);
      const bad = await cli([...args, '--unique-while', 'sometimes'], { cwd: dir.dir });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/uniqueWhile must be/);
      const orphan = await cli(['schedule', 'NoOp', '--database-url', t.url, '--unique-while', 'waiting'], {
        cwd: dir.dir,
      });
      expect(orphan.code).toBe(2);
      expect(orphan.stderr).toMatch(/--unique-while needs --unique-key/);
    } finally {
      await dir.remove();
    }
  });
});
