import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../dist/index.js';
import { createTestDatabase, getRow, type TestDatabase } from '../helpers/db.js';
import { storeOn } from '../helpers/store.js';

/**
 * A table as the Rails plugin's migration made it (the seed's columns only, Rails' types), with
 * a row the plugin wrote. `migrate` must upgrade it in place so a team can point the new runner
 * at its old table.
 */
const railsTable = `
  CREATE TABLE task_runner_requests (
    id serial PRIMARY KEY,
    created_at timestamp,
    task_class_name varchar(255),
    pid integer,
    started_at timestamp,
    completed_at timestamp,
    result varchar(255),
    tries integer DEFAULT 0,
    try_limit integer DEFAULT 5,
    options text,
    delay_until timestamp,
    result_text text
  )`;

let t: TestDatabase;
let railsId: string;
let finishedId: string;
beforeAll(async () => {
  t = await createTestDatabase();
  // The Rails plugin knew no attempt history or recurring entries either.
  await t.pool.query('DROP TABLE task_runner_requests, task_runner_requests_attempts, task_runner_requests_recurring');
  await t.pool.query(railsTable);
  const waiting = await t.pool.query<{ id: number }>(`
    INSERT INTO task_runner_requests (created_at, task_class_name, tries, try_limit, options)
    VALUES ('2010-03-08 22:52:24', 'NoOp', 0, 5, E'--- \\n:created_from: self.schedule\\n') RETURNING id`);
  const done = await t.pool.query<{ id: number }>(`
    INSERT INTO task_runner_requests (created_at, task_class_name, started_at, completed_at, result, tries, try_limit, options, result_text)
    VALUES ('2010-03-08 22:52:24', 'NoOp', '2010-03-08 22:56:17', '2010-03-08 22:56:24', 'FINISHED', 1, 5,
            E'--- \\n:created_from: self.schedule\\n', 'NOOP 2: OK! created from: self.schedule') RETURNING id`);
  railsId = String(waiting.rows[0]!.id);
  finishedId = String(done.rows[0]!.id);
});
afterAll(async () => {
  await t?.drop();
});

describe('migrate on a Rails-era table', () => {
  it('adds the design columns, keeping the rows', async () => {
    const result = await migrate(t.db);
    expect(result.created).toBe(false);
    expect([...result.addedColumns].sort()).toEqual([
      'cancel_requested_at',
      'crashes',
      'host',
      'launcher_id',
      'lease_expires_at',
      'priority',
      'process_identity',
      'queue',
      'thread_id',
      'timeout_ms',
      'traceparent',
      'unique_key',
    ]);
    expect(result.addedTables).toEqual(['task_runner_requests_attempts', 'task_runner_requests_recurring']);
    expect(await getRow(t.pool, railsId)).toMatchObject({
      task_class_name: 'NoOp',
      tries: 0,
      try_limit: 5,
      options: '--- \n:created_from: self.schedule\n',
      queue: 'default',
      priority: 0,
      pid: null,
      host: null,
      crashes: 0,
      timeout_ms: null,
      cancel_requested_at: null,
    });
    expect(await getRow(t.pool, finishedId)).toMatchObject({ result: 'FINISHED', tries: 1 });
    await expect(migrate(t.db)).resolves.toEqual({
      created: false,
      addedColumns: [],
      addedTables: [],
      origin: 'adopted',
      addedDefaults: [],
      addedTriggers: [],
    });
  });

  it('installs the notify triggers on the old table', async () => {
    const { rows } = await t.pool.query(
      `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'task_runner_requests'::regclass AND NOT tgisinternal`,
    );
    expect(rows[0].n).toBe(2);
  });

  it('lets the store claim the waiting Rails row and nothing else', async () => {
    const store = storeOn(t.db, { backoff: { baseMs: 10, maxMs: 100 }, crashLimit: 3 });
    const claimed = await store.requestsClaim({
      limit: 10,
      launcherId: 'l-rails',
      host: 'test-host',
      launcherPid: process.pid,
      processIdentity: null,
      queues: null,
      leaseMs: 60_000,
    });
    expect(claimed.map((c) => c.id)).toEqual([railsId]);
    expect(claimed[0]).toMatchObject({
      taskClassName: 'NoOp',
      tries: 1,
      tryLimit: 5,
      options: '--- \n:created_from: self.schedule\n',
    });
  });

  it("writes the claimed Rails row's outcome and its history row (an integer id in a bigint column)", async () => {
    const store = storeOn(t.db, { backoff: { baseMs: 10, maxMs: 100 }, crashLimit: 3 });
    const written = await store.requestsComplete({
      launcherId: 'l-rails',
      outcomes: [
        {
          id: railsId,
          tries: 1,
          result: 'FINISHED',
          resultText: 'NOOP: OK!',
          endNow: true,
          refund: false,
          crash: false,
          attempt: {
            pid: process.pid,
            threadId: null,
            mode: 'fresh',
            startedAtMs: null,
            exitCode: 0,
            signal: null,
            peakMemoryBytes: null,
          },
        },
      ],
    });
    expect([...written]).toEqual([railsId]);
    expect(await getRow(t.pool, railsId)).toMatchObject({
      result: 'FINISHED',
      result_text: 'NOOP: OK!',
      crashes: 0,
      pid: null,
    });
    expect(await store.attemptsList({ requestId: railsId })).toMatchObject([
      {
        requestId: railsId,
        try: 1,
        result: 'FINISHED',
        resultText: null,
        host: 'test-host',
        launcherId: 'l-rails',
        exitCode: 0,
      },
    ]);
  });
});
