import { Kysely, PostgresDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTaskRunnerRequestTable,
  dropTaskRunnerRequestTable,
  migrate,
  TaskRunnerError,
} from '../../dist/index.js';
import { resolveRunnerConfig } from '../../dist/config/runner-config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let t: TestDatabase;
/** A Kysely over the test database that records every statement sent. */
let logged: Kysely<any>;
const statements: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  logged = new Kysely<any>({
    dialect: new PostgresDialect({ pool: t.pool }),
    log: (event) => {
      statements.push(event.query.sql);
    },
  });
  await t.pool.query('CREATE TABLE y (id int)');
});
afterAll(async () => {
  await t?.drop();
});

const badNames: unknown[] = [
  'x; drop table y',
  'y"; DROP TABLE y; --',
  'Upper_Case',
  'a.b.c',
  '',
  '1starts_with_digit',
  'has space',
  'has-dash',
  `a${'b'.repeat(63)}`,
  'schema.',
  42,
];

function expectInvalid(error: unknown, code = 'TABLE_NAME_INVALID'): void {
  expect(error).toBeInstanceOf(TaskRunnerError);
  expect((error as TaskRunnerError).code).toBe(code);
}

describe('table names', () => {
  it.each(badNames.map((name) => [JSON.stringify(name), name]))(
    'refuses %s before any SQL runs',
    async (_shown, name) => {
      statements.length = 0;
      for (const attempt of [
        () => migrate(logged, { tableName: name as string }),
        () => createTaskRunnerRequestTable(logged, name as string),
        () => dropTaskRunnerRequestTable(logged, name as string),
      ]) {
        const error = await attempt().then(
          () => null,
          (e: unknown) => e,
        );
        expectInvalid(error);
      }
      expect(statements).toEqual([]);
      // The would-be victim is still there.
      await expect(t.pool.query('SELECT count(*) FROM y')).resolves.toBeDefined();
    },
  );

  it('explains what a valid name looks like', async () => {
    const error = await migrate(logged, { tableName: 'x; drop table y' }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /invalid table name "x; drop table y".*lower-case letters, digits and underscores/,
    );
  });

  it('is refused by the runner config too, naming the field', () => {
    let error: unknown;
    try {
      resolveRunnerConfig({ db: t.url, tasksDir: '.', tableName: 'x; drop table y' });
    } catch (e) {
      error = e;
    }
    expectInvalid(error, 'CONFIG_INVALID');
    expect((error as { field?: string }).field).toBe('tableName');
  });

  it('accepts a valid identifier', async () => {
    statements.length = 0;
    await expect(migrate(logged, { tableName: 'fine_name_2' })).resolves.toMatchObject({ created: true });
    expect(statements.length).toBeGreaterThan(0);
  });
});
