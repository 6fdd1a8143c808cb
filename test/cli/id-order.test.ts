/**
 * Ids are numbers, not text: `list`, its pages, the dashboard's requests page and a request's
 * tries come newest (or oldest) first by number, past a digit rollover (9 → 10), on rows a real
 * Rails client wrote.
 */
import { describe, expect, it } from 'vitest';
import { createClient, startDashboard } from '../../dist/index.js';
import { parseTableName } from '../../dist/config/identifiers.js';
import { Inspector } from '../../dist/store/inspector.js';
import { insertRequest } from '../helpers/db.js';
import { railsClient } from '../helpers/rails.js';
import { cli, cliOnTestDatabase } from './cli-process.js';

const s = cliOnTestDatabase();

const idsOf = (stdout: string): string[] =>
  stdout
    .trim()
    .split('\n')
    .filter((line) => !line.startsWith('more:'))
    .map((line) => line.trim().split(/\s+/)[0]!);
const byNumberDesc = (a: string, b: string): number => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0);

describe('ids in order by number', () => {
  it(
    'lists and pages the newest rows first across a digit rollover (CLI, inspector, dashboard API, tries)',
    { timeout: 120_000 },
    async () => {
      const rails = railsClient(s.t.url);
      // Ids 8 to 11 from the Rails client: four ruby processes rather than eleven.
      await s.t.pool.query(`SELECT setval(pg_get_serial_sequence('task_runner_requests', 'id'), 7)`);
      const ids: string[] = [];
      for (let n = 0; n < 4; n += 1) {
        const row = await rails.insert('task_runner_requests', { task_class_name: 'NoOp', options: `---\n:n: ${n}\n` });
        ids.push(String(row.id));
      }
      const newest = [...ids].sort(byNumberDesc);
      // The point of the test: the ids cross from one digit to two.
      expect(newest).toEqual(['11', '10', '9', '8']);

      const first = await cli(['list', '--limit', '3'], s.at);
      expect(first.code).toBe(0);
      expect(idsOf(first.stdout)).toEqual(newest.slice(0, 3));
      expect(first.stdout).toContain(`more: --before ${newest[2]}\n`);
      const second = await cli(['list', '--limit', '3', '--before', newest[2]!], s.at);
      expect(idsOf(second.stdout)).toEqual(newest.slice(3));

      // Walking every page reaches every row once, newest first.
      const walked: string[] = [];
      let before: string | null = null;
      for (let page = 0; page < 10; page += 1) {
        const args = ['list', '--limit', '2', '--json', ...(before === null ? [] : ['--before', before])];
        const json = JSON.parse((await cli(args, s.at)).stdout) as {
          requests: { id: string }[];
          nextBefore: string | null;
        };
        walked.push(...json.requests.map((r) => r.id));
        before = json.nextBefore;
        if (before === null) break;
      }
      expect(walked).toEqual(newest);

      // The store function the dashboard's requests page uses, and the page's API itself.
      const inspector = new Inspector({ db: s.t.db, table: parseTableName('task_runner_requests') });
      expect((await inspector.list({ limit: 3 })).requests.map((r) => r.id)).toEqual(newest.slice(0, 3));
      const dashboard = await startDashboard({ db: s.t.db, port: 0 });
      try {
        const page = (await (await fetch(`${dashboard.url}api/requests?limit=2`)).json()) as {
          requests: { id: string }[];
          nextBefore: string;
        };
        expect(page.requests.map((r) => r.id)).toEqual(newest.slice(0, 2));
        expect(page.nextBefore).toBe(newest[1]);
      } finally {
        await dashboard.close();
      }

      // Sixteen ended tries of one request: `show` and `attempts` list them 1 to 16.
      const target = newest[0]!;
      await s.t.pool.query(
        `INSERT INTO task_runner_requests_attempts (request_id, try, result, started_at, ended_at, result_text)
      SELECT $1, n, 'FAILED', now() - interval '1 hour' + n * interval '1 second', now() - interval '1 hour' + n * interval '2 seconds', 'Error: try ' || n
      FROM generate_series(1, 16) n ORDER BY n`,
        [target],
      );
      const shown = JSON.parse((await cli(['show', target, '--json'], s.at)).stdout) as { attempts: { try: number }[] };
      expect(shown.attempts.map((a) => a.try)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
      const attempts = JSON.parse((await cli(['attempts', target, '--json'], s.at)).stdout) as { try: number }[];
      expect(attempts.map((a) => a.try)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
      expect((await inspector.show(target))!.attempts.map((a) => a.try)).toEqual(
        Array.from({ length: 16 }, (_, i) => i + 1),
      );
    },
  );

  it('a unique key held by several ended requests answers with the newest by number', async () => {
    for (const id of ['99', '100']) {
      await insertRequest(s.t.pool, {
        id,
        unique_key: 'digest',
        completed_at: new Date(),
        result: 'FINISHED',
        tries: 1,
      });
    }
    const client = createClient({ db: s.t.url });
    try {
      expect(await client.schedule('Echo', {}, { uniqueKey: 'digest', uniqueWhile: 'ended-within:1h' })).toBe('100');
    } finally {
      await client.close();
    }
  });
});
