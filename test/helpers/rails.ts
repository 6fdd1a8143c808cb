/**
 * A real Rails client for tests: `test/fixtures/rails/client.rb` run with Debian's ruby (with
 * ruby-activerecord 6.1 and ruby-pg; .ci/run installs them). Each call is one ruby process that
 * answers one line of JSON; a failure throws with ruby's stderr.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rails', 'client.rb');

/** A row as ActiveRecord reads it; times are ISO strings in UTC. */
export type RailsRow = Record<string, string | number | null>;

function run(url: string, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile('ruby', [script, url, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        const hint =
          (error as NodeJS.ErrnoException).code === 'ENOENT'
            ? ' (ruby is missing: apt-get install ruby-activerecord ruby-pg)'
            : '';
        reject(new Error(`rails client ${args[0]} failed${hint}: ${stderr.trim() || error.message}`));
        return;
      }
      resolve(JSON.parse(stdout.trim().split('\n').pop()!));
    });
  });
}

/** ActiveRecord against the database at `url`, as a Rails application uses the request table. */
export function railsClient(url: string) {
  return {
    /** A Rails 6.1 migration of the table (t.timestamps NOT NULL without a default). */
    createTable: (table = 'task_runner_requests') => run(url, ['create_table', table]),
    insert: (table: string, attributes: Record<string, unknown>) =>
      run(url, ['insert', table, JSON.stringify(attributes)]) as Promise<RailsRow>,
    /**
     * Inserts a request whose options, given as JSON text (so that integers past 2^53 stay
     * exact), Ruby stores as YAML the way a Rails app does (`to_yaml`, symbol keys).
     */
    schedule: (table: string, attributes: Record<string, unknown>, optionsJson: string) =>
      run(url, ['schedule', table, JSON.stringify(attributes), optionsJson]) as Promise<RailsRow>,
    update: (table: string, id: string | number, attributes: Record<string, unknown>) =>
      run(url, ['update', table, String(id), JSON.stringify(attributes)]) as Promise<RailsRow>,
    find: (table: string, id: string | number) => run(url, ['find', table, String(id)]) as Promise<RailsRow>,
    all: (table: string) => run(url, ['all', table]) as Promise<RailsRow[]>,
  };
}
