import { appendFile, cp, mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Which script a child runs: the build's bundle of the child runtime while it matches the modules
 * tsc wrote, the modules themselves once one of them changed. Checked on a copy of dist/, whose
 * files this test is free to touch. (test/install/pack.install.ts checks the installed package.)
 */
const dist = fileURLToPath(new URL('../../dist', import.meta.url));
let copy: string;
let childRuntimeEntry: () => string;

beforeAll(async () => {
  copy = await mkdtemp(path.join(tmpdir(), 'cwtr-runtime-entry-'));
  await cp(dist, copy, { recursive: true });
  ({ childRuntimeEntry } = (await import(pathToFileURL(path.join(copy, 'pool', 'runtime-entry.js')).href)) as {
    childRuntimeEntry: () => string;
  });
});

afterAll(async () => {
  if (copy !== undefined) await rm(copy, { recursive: true, force: true });
});

const runtime = (file: string): string => path.join(copy, 'pool', 'runtime', file);

describe('the child runtime a pool starts', () => {
  it("is the bundle, whatever the files' times say, until a module it was made from changes", async () => {
    expect(childRuntimeEntry()).toBe(runtime('child-runtime.cjs'));
    // An installer may write child-entry.js after the bundle: the times prove nothing.
    const later = new Date(Date.now() + 60_000);
    await utimes(runtime('child-entry.js'), later, later);
    await utimes(runtime('child-runtime.cjs'), new Date(0), new Date(0));
    expect(childRuntimeEntry()).toBe(runtime('child-runtime.cjs'));
    // tsc rewrote a module and the bundle was not made again: children run the modules.
    await appendFile(runtime('run-task.js'), '\n// changed\n');
    expect(childRuntimeEntry()).toBe(runtime('child-entry.js'));
  });
});
