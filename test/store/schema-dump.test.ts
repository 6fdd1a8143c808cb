import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptTable, LauncherTable, RecurringTable, RequestTable } from '../../dist/store/schema.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

/**
 * `src/store/schema.sql` is what a freshly migrated database holds (`migrate()` with the default
 * table), as `pg_dump --schema-only --no-owner` prints it, normalized: no comments, no SET lines,
 * nothing that depends on the server's or pg_dump's version. A change to the DDL
 * (src/store/schema-ddl.ts) fails here until the file is written again, so a reviewer sees the
 * change in the schema itself: `CW_WRITE_SCHEMA=1 npx vitest run test/store/schema-dump.test.ts`.
 */
const schemaFile = fileURLToPath(new URL('../../src/store/schema.sql', import.meta.url));
const header = [
  '-- The schema of a freshly migrated database (migrate() with the default table), as',
  '-- pg_dump --schema-only --no-owner prints it without comments, SET lines and version lines.',
  '-- Written by CW_WRITE_SCHEMA=1 npx vitest run test/store/schema-dump.test.ts; the test fails when it differs.',
  '',
  '',
].join('\n');

/** The dump without what varies between servers, pg_dump versions and runs. */
function normalizeDump(dump: string): string {
  const lines = dump
    .split('\n')
    .filter(
      (line) =>
        !/^--/.test(line) &&
        !/^SET /.test(line) &&
        !/^SELECT pg_catalog\.set_config/.test(line) &&
        !/^\\(un)?restrict /.test(line),
    );
  return (
    lines
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim() + '\n'
  );
}

/**
 * The columns of each table interface in schema.ts: `satisfies` makes the test's type check fail
 * when a key is missing or extra, and the test below compares them with the migrated tables.
 */
type Columns<T> = Record<keyof T, true>;
const requestColumns = {
  id: true,
  created_at: true,
  task_class_name: true,
  pid: true,
  started_at: true,
  completed_at: true,
  result: true,
  tries: true,
  try_limit: true,
  options: true,
  delay_until: true,
  result_text: true,
  queue: true,
  priority: true,
  host: true,
  launcher_id: true,
  process_identity: true,
  thread_id: true,
  lease_expires_at: true,
  crashes: true,
  timeout_ms: true,
  cancel_requested_at: true,
  traceparent: true,
  unique_key: true,
} satisfies Columns<RequestTable>;
const attemptColumns = {
  id: true,
  request_id: true,
  try: true,
  host: true,
  launcher_id: true,
  pid: true,
  thread_id: true,
  mode: true,
  started_at: true,
  ended_at: true,
  result: true,
  exit_code: true,
  signal: true,
  peak_memory_bytes: true,
  result_text: true,
} satisfies Columns<AttemptTable>;
const recurringColumns = {
  name: true,
  task_class_name: true,
  cron: true,
  timezone: true,
  options: true,
  queue: true,
  priority: true,
  try_limit: true,
  backfill: true,
  last_due_at: true,
  last_request_id: true,
  registered_at: true,
} satisfies Columns<RecurringTable>;
const launcherColumns = {
  launcher_id: true,
  host: true,
  pid: true,
  concurrency: true,
  queues: true,
  started_at: true,
  heartbeat_at: true,
} satisfies Columns<LauncherTable>;

const run = promisify(execFile);

/**
 * A pg_dump that can dump the test server: pg_dump refuses a server of a later major version, so
 * the one of the server's own version where Debian installs it, else the one on PATH when it is
 * at least as new. Null when neither is (the embedded server is newer than the system's tools):
 * the dump comparison then skips, and runs on the system server (`.ci/run`'s second pass).
 */
async function pgDumpFor(serverMajor: number): Promise<string | null> {
  for (const candidate of [`/usr/lib/postgresql/${serverMajor}/bin/pg_dump`, 'pg_dump']) {
    const version = await run(candidate, ['--version']).then(
      (out) => out.stdout,
      () => null,
    );
    const major = Number(/(\d+)(\.\d+)?/.exec(version ?? '')?.[1]);
    if (major >= serverMajor) return candidate;
  }
  return null;
}

let t: TestDatabase;
let pgDump: string | null;

beforeAll(async () => {
  t = await createTestDatabase({ poolMax: 1 });
  const { rows } = await t.pool.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  pgDump = await pgDumpFor(Math.floor(Number(rows[0]!.v) / 10_000));
});
afterAll(async () => {
  await t?.drop();
});

describe('schema.sql', () => {
  it('is what pg_dump prints of a freshly migrated database', async (ctx) => {
    if (pgDump === null) ctx.skip();
    const { stdout } = await run(pgDump!, ['--schema-only', '--no-owner', '--no-privileges', t.url], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const dumped = normalizeDump(stdout);
    if (process.env.CW_WRITE_SCHEMA === '1') await writeFile(schemaFile, header + dumped);
    const committed = normalizeDump(await readFile(schemaFile, 'utf8'));
    expect(dumped).toBe(committed);
  });

  it('has the columns the table interfaces of schema.ts name, no more and no fewer', async () => {
    const tables: [string, Record<string, true>][] = [
      ['task_runner_requests', requestColumns],
      ['task_runner_requests_attempts', attemptColumns],
      ['task_runner_requests_recurring', recurringColumns],
      ['task_runner_requests_launchers', launcherColumns],
    ];
    for (const [table, columns] of tables) {
      const { rows } = await t.pool.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1`,
        [table],
      );
      const found = rows.map((row) => row.column_name).sort();
      expect({ table, columns: found }).toEqual({ table, columns: Object.keys(columns).sort() });
    }
  });
});
