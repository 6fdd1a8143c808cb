/**
 * A test database whose request table was made by a Rails 6.1 migration (test/helpers/rails.ts),
 * as an application that adopts the runner has it: none of the runner's tables, `t.timestamps`
 * NOT NULL without a default, timestamps without time zone, varchar columns.
 */
import { createTestDatabase, type TestDatabase } from './db.js';
import { railsClient } from './rails.js';

export interface RailsDatabase extends TestDatabase {
  rails: ReturnType<typeof railsClient>;
}

export async function createRailsDatabase(params: { poolMax?: number; table?: string } = {}): Promise<RailsDatabase> {
  const t = await createTestDatabase({ poolMax: params.poolMax });
  // The template's tables are the runner's own: an application that adopts it has none of them.
  await t.pool.query(`DROP TABLE task_runner_requests, task_runner_requests_attempts, task_runner_requests_recurring,
    task_runner_requests_launchers`);
  const rails = railsClient(t.url);
  await rails.createTable(params.table);
  return Object.assign(t, { rails });
}
