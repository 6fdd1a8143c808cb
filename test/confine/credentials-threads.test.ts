import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * The launcher's database credentials are not the tasks': DATABASE_URL is withheld from children
 * and threads unless the operator passes it on. And a thread cannot be confined, so a class may
 * not move itself into one when the operator confines children.
 */
const runners = useTestRunners();
const t = useTestDatabase();
const secretUrl = 'postgres://app:s3cret@db.example/app';
let saved: string | undefined;

beforeEach(() => {
  saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = secretUrl;
});
afterEach(() => {
  if (saved === undefined) delete process.env.DATABASE_URL;
  else process.env.DATABASE_URL = saved;
});

async function result(task: string, overrides: Parameters<typeof runners.create>[1]): Promise<any> {
  const runner = await runners.start(t, { childEnv: null, ...overrides });
  const id = await runner.schedule(task, {}, { tryLimit: 1 });
  const row = await waitForCompleted(t.pool, id, 30_000);
  await runner.stop();
  expect(row.result, row.result_text).toBe('FINISHED');
  return JSON.parse(row.result_text);
}

describe('database credentials', () => {
  it('are withheld from children by default', async () => {
    expect((await result('Escape', {})).databaseUrl).toBeNull();
  });

  it('are withheld from threads by default', async () => {
    expect(await result('Env', { defaultMode: 'thread' })).not.toContain('DATABASE_URL');
  });

  it('are passed when the operator names them', async () => {
    const seen = await result('Escape', { childEnvAllowlist: ['PATH', 'DATABASE_URL'] });
    expect(seen.databaseUrl).toBe(secretUrl);
  });
});

describe('thread mode under confinement', () => {
  it("a class's static mode = 'thread' runs in a process when children are confined, with a warning", async () => {
    const lines: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      error: () => undefined,
      warn: (text: string) => void lines.push(text),
    };
    const seen = await result('ThreadWish', { childLimits: { openFiles: 256 }, logger });
    expect(seen.threadId).toBe(0);
    expect(seen.pid).not.toBe(process.pid);
    expect(
      lines.filter((line) => /declares static mode = 'thread', but children are confined/.test(line)),
    ).toHaveLength(1);
  });

  it('without confinement the class gets its thread', async () => {
    const seen = await result('ThreadWish', {});
    expect(seen.pid).toBe(process.pid);
    expect(seen.threadId).toBeGreaterThan(0);
  });

  it("the operator's taskOverrides can still put it in a thread (unconfined, said at start)", async () => {
    const lines: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      error: () => undefined,
      warn: (text: string) => void lines.push(text),
    };
    const seen = await result('ThreadWish', {
      childLimits: { openFiles: 256 },
      taskOverrides: { ThreadWish: { mode: 'thread' } },
      logger,
    });
    expect(seen.pid).toBe(process.pid);
    expect(
      lines.some((line) =>
        /thread-mode tasks run inside the launcher: childUser, childLimits and childPermissions do not apply/.test(
          line,
        ),
      ),
    ).toBe(true);
  });
});
