import { describe, expect, it } from 'vitest';
import { parseTableName } from '../../dist/config/identifiers.js';
import { Inspector } from '../../dist/store/inspector.js';
import { textSearchWindow } from '../../dist/store/inspection.js';
import { insertRequest, useTestDatabase } from '../helpers/db.js';

/**
 * Text search reads result_text, which no index serves: each page of it looks at a window of ids
 * only, so one request never reads the whole table, and the pages go on below the window.
 */
const t = useTestDatabase();

describe('text search in result_text', () => {
  it('searches one window of ids per page and continues below it', async () => {
    const inspector = new Inspector({ db: t.db, table: parseTableName('task_runner_requests') });
    const ids: string[] = [];
    for (let n = 0; n < 30; n++) {
      ids.push(
        await insertRequest(t.pool, {
          completed_at: new Date(),
          result: 'FAILED',
          result_text: n % 10 === 0 ? `Error: needle ${n}` : 'Error: hay',
        }),
      );
    }
    // Matches at positions 0, 10 and 20 (ids ascending); windows of 8 ids from the newest.
    const [first, mid, last] = [ids[0]!, ids[10]!, ids[20]!];
    const newest = BigInt(ids[29]!);
    const page1 = await inspector.list({ text: 'NEEDLE', textWindow: 8 });
    // Ids newest-7 .. newest hold no match: an empty page that says where to go on.
    expect(page1.requests).toEqual([]);
    expect(page1.searchedDownTo).toBe(String(newest + 1n - 8n));
    expect(page1.nextBefore).toBe(page1.searchedDownTo);

    const found: string[] = [];
    let before: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await inspector.list({ text: 'needle', textWindow: 8, limit: 1, before });
      pages += 1;
      found.push(...page.requests.map((r) => r.id));
      if (page.nextBefore === null) break;
      expect(BigInt(page.nextBefore)).toBeLessThan(before === undefined ? newest + 1n : BigInt(before));
      before = page.nextBefore;
      expect(pages).toBeLessThan(20);
    }
    expect(found).toEqual([last, mid, first]);

    // Without a text filter the window does not apply.
    const plain = await inspector.list({ limit: 100 });
    expect(plain.requests).toHaveLength(30);
    expect(plain.searchedDownTo).toBeNull();
    // The default window, and a bad one refused by name.
    expect((await inspector.list({ text: 'needle' })).requests.map((r) => r.id)).toEqual([last, mid, first]);
    expect(textSearchWindow).toBe(100_000);
    await expect(inspector.list({ text: 'needle', textWindow: 0 })).rejects.toThrow(
      /textWindow must be a whole number above 0/,
    );
  });

  it('retries every ended request whose result holds the text, whatever its id (in a time-bounded statement)', async () => {
    const inspector = new Inspector({ db: t.db, table: parseTableName('task_runner_requests') });
    const match = await insertRequest(t.pool, {
      completed_at: new Date(),
      result: 'FAILED',
      result_text: 'Error: ECONNRESET upstream',
    });
    const other = await insertRequest(t.pool, {
      completed_at: new Date(),
      result: 'FAILED',
      result_text: 'Error: bad input',
    });
    const running = await insertRequest(t.pool, { pid: 4194305, result_text: 'econnreset before' });
    expect(await inspector.retryMatching({ text: 'econnreset' })).toEqual([match]);
    const { rows } = await t.pool.query(
      'SELECT id::text, completed_at IS NULL AS open FROM task_runner_requests ORDER BY id',
    );
    expect(rows).toEqual([
      { id: match, open: true },
      { id: other, open: false },
      { id: running, open: true },
    ]);
    // The timeout is the transaction's own: the connection goes back to the pool without it.
    expect(
      (
        await t.db
          .selectNoFrom((eb) => eb.fn<string>('current_setting', [eb.val('statement_timeout')]).as('s'))
          .executeTakeFirst()
      )?.s,
    ).toBe('0');
  });
});
