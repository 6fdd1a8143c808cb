import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** The layers of ARCHITECTURE.md, as scripts/check-imports.mjs checks them. */
const script = fileURLToPath(new URL('../../scripts/check-imports.mjs', import.meta.url));
const run = promisify(execFile);

async function check(srcDir?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, srcDir === undefined ? [script] : [script, srcDir]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('the import chain', () => {
  it('holds in src: no room imports one above it', async () => {
    const result = await check();
    expect(result.stderr).toBe('');
    expect(result).toMatchObject({ code: 0 });
  });

  it('is broken by an import that points up, and by pool or its runtime importing the store', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cw-imports-'));
    try {
      const files: Record<string, string> = {
        'store/sql.ts': 'export const q = 1;\n',
        'dashboard/page.ts': 'export const page = 1;\n',
        'launcher/runner.ts': "import { page } from '../dashboard/page.js';\nexport const r = page;\n",
        'pool/pool.ts': "export { q } from '../store/sql.js';\n",
        'pool/runtime/child.ts': "const m = await import('../../store/sql.js');\nexport const c = m;\n",
      };
      for (const [file, text] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
        await writeFile(path.join(dir, file), text);
      }
      const result = await check(dir);
      expect(result.code).toBe(1);
      expect(result.stderr.split('\n').filter((line) => line.includes(' imports ')).sort()).toEqual([
        'launcher/runner.ts (launcher) imports ../dashboard/page.js (dashboard)',
        'pool/pool.ts (pool) imports ../store/sql.js (store)',
        'pool/runtime/child.ts (pool/runtime) imports ../../store/sql.js (store)',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
