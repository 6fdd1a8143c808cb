import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { channelFor, parseTableName } from '../../dist/config/identifiers.js';
import { createTestDatabase, insertRequest, type TestDatabase } from '../helpers/db.js';

/**
 * The request table's triggers wake launchers: any client inserting a runnable row (psql
 * included) or clearing a pid by hand sends a notification on the table's channel.
 */
const channel = channelFor(parseTableName('task_runner_requests'));
const sentinel = 'cwtr_test_sentinel';

let t: TestDatabase;
let listener: pg.Client;
let received: string[];

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  received = [];
  listener = new pg.Client({ connectionString: t.url });
  await listener.connect();
  listener.on('notification', (n) => received.push(n.channel));
  await listener.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
  await listener.query(`LISTEN ${sentinel}`);
});
afterEach(async () => {
  await listener.end();
});

/** Resolves once `count` notifications on the request channel have arrived, or fails. */
function nextNotifications(count: number, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => received.filter((c) => c === channel).length >= count;
    if (check()) return resolve();
    const timer = setTimeout(() => {
      listener.off('notification', onNotification);
      reject(
        new Error(`timed out waiting for ${count} notification(s) on ${channel}; got ${JSON.stringify(received)}`),
      );
    }, timeoutMs);
    const onNotification = (): void => {
      if (!check()) return;
      clearTimeout(timer);
      listener.off('notification', onNotification);
      resolve();
    };
    listener.on('notification', onNotification);
  });
}

/**
 * Notifications are delivered in commit order, so once a NOTIFY sent after some statements has
 * arrived, every notification those statements caused has arrived too: what `received` holds is
 * then complete, and a missing notification is proven missing without waiting for it.
 */
async function settle(timeoutMs = 5_000): Promise<string[]> {
  const marker = received.length;
  await t.pool.query(`NOTIFY ${sentinel}`);
  await new Promise<void>((resolve, reject) => {
    const done = (): boolean => received.slice(marker).includes(sentinel);
    if (done()) return resolve();
    const timer = setTimeout(() => reject(new Error('sentinel notification never arrived')), timeoutMs);
    const onNotification = (): void => {
      if (!done()) return;
      clearTimeout(timer);
      listener.off('notification', onNotification);
      resolve();
    };
    listener.on('notification', onNotification);
  });
  return received.filter((c) => c === channel);
}

describe('the notify trigger', () => {
  it('notifies when a row is inserted with plain SQL', async () => {
    const arrived = nextNotifications(1);
    await t.pool.query(`INSERT INTO task_runner_requests (task_class_name, options) VALUES ('Echo', '--- {}')`);
    await arrived;
  });

  it('sends one notification for a bulk insert (the trigger is per statement)', async () => {
    await t.pool.query(`INSERT INTO task_runner_requests (task_class_name) SELECT 'Echo' FROM generate_series(1, 500)`);
    expect(await settle()).toHaveLength(1);
  });

  it('does not notify for rows that are not waiting (completed or running)', async () => {
    await insertRequest(t.pool, { completed_at: new Date(), result: 'FINISHED' });
    await insertRequest(t.pool, { pid: 12345, host: 'elsewhere' });
    expect(await settle()).toHaveLength(0);
  });

  it("notifies when a pid is wiped by hand, the seed's way to reschedule", async () => {
    const id = await insertRequest(t.pool, { pid: 12345, host: 'elsewhere', tries: 1 });
    expect(await settle()).toHaveLength(0);
    await t.pool.query('UPDATE task_runner_requests SET pid = NULL WHERE id = $1', [id]);
    expect(await settle()).toHaveLength(1);
  });

  it('notifies only when the inserting transaction commits', async () => {
    const client = await t.pool.connect();
    try {
      await client.query('BEGIN');
      await insertRequest(client, {});
      expect(await settle()).toHaveLength(0);
      await client.query('ROLLBACK');
      expect(await settle()).toHaveLength(0);
      await client.query('BEGIN');
      await insertRequest(client, {});
      await client.query('COMMIT');
      expect(await settle()).toHaveLength(1);
    } finally {
      client.release();
    }
  });
});
