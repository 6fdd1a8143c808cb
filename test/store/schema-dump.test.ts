import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  const lines = dump.split('\n').filter((line) => !/^--/.test(line) && !/^SET /.test(line)
    && !/^SELECT pg_catalog\.set_config/.test(line) && !/^\\(un)?restrict /.test(line));
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trim() + '\n';
}

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase({ poolMax: 1 });
});
afterAll(async () => {
  await t?.drop();
});

describe('schema.sql', () => {
  it('is what pg_dump prints of a freshly migrated database', async () => {
    const { stdout } = await promisify(execFile)('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', t.url], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const dumped = normalizeDump(stdout);
    if (process.env.CW_WRITE_SCHEMA === '1') await writeFile(schemaFile, header + dumped);
    const committed = normalizeDump(await readFile(schemaFile, 'utf8'));
    expect(dumped).toBe(committed);
  });
});
