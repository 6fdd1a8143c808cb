/**
 * The package as a host application gets it: `npm pack` from a fresh copy of the tree, then a new
 * project installs the tarball, type-checks a TypeScript application and its task under `strict`
 * with `skipLibCheck: false` (the published declarations must resolve with what the package
 * brings), and runs it as ESM and, through `await import()`, from CommonJS, with its own tasks
 * directory, against a real PostgreSQL. A child of the installed package runs the bundled child
 * runtime (the one file the build makes), whatever order the installer wrote the files in.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../dist/embedded/throwaway-server.js';
import { copyProject, expectSuccess, repoRoot, run } from './commands.js';

let work: string;
let databaseUrl: string;
let server: ThrowawayPostgres | null = null;
let dropDatabase: (() => Promise<void>) | null = null;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};
delete env.DATABASE_URL;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'cwtr-pack-'));
  const external = process.env.TEST_DATABASE_URL;
  if (external !== undefined && external !== '') {
    const name = `cwtr_install_${process.pid}`;
    const admin = new pg.Client({ connectionString: external });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(external);
    url.pathname = `/${name}`;
    databaseUrl = url.href;
    dropDatabase = async () => {
      const client = new pg.Client({ connectionString: external });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    };
  } else {
    server = await startThrowawayPostgres();
    databaseUrl = server.url();
  }
});

afterAll(async () => {
  await dropDatabase?.().catch(() => undefined);
  await server?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** The host application: an ESM TypeScript app and its TypeScript task (built to build/), and a CommonJS app. */
const appFiles: Record<string, string> = {
  // No "type": CommonJS by default, as many host applications are; ESM files are .mts/.mjs.
  'tsconfig.json': JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: false,
        noUncheckedIndexedAccess: true,
        types: ['node'],
        outDir: 'build',
        rootDir: 'src',
      },
      include: ['src'],
    },
    null,
    2,
  ),
  'src/tasks/Greet.mts': `import { Task } from 'cw-task-runner/task';

interface GreetOptions { name: string }

export default class Greet extends Task<GreetOptions, string> {
  run(): string {
    return \`Hello, \${this.options.name} (request \${this.id}, pid \${process.pid})\`;
  }
}
`,
  // Which script the child runs: the bundle (child-runtime.cjs) or tsc's modules (child-entry.js).
  'src/tasks/Where.mts': `import { Task } from 'cw-task-runner/task';

export default class Where extends Task {
  run(): string {
    return process.argv[1] ?? '';
  }
}
`,
  // Tries run one after another through runTaskOnce: the child script it ran, and wall and CPU
  // per try (the children's CPU from /proc/self/stat once they are reaped, the app's own beside it).
  'src/measure.mts': `import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTaskOnce } from 'cw-task-runner';

const tasksDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tasks');
const ticksPerSecond = 100;
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / ticksPerSecond;
}
const where = await runTaskOnce({ tasksDir, taskClassName: 'Where' });
if (where.outcome !== 'finished') throw new Error(JSON.stringify(where));
const tries = Number(process.argv[2] ?? '20');
const runs = [];
for (let run = 0; run < 3; run += 1) {
  const wallAt = performance.now();
  const childrenAt = childrenCpuMs();
  const ownAt = process.cpuUsage();
  for (let i = 0; i < tries; i += 1) {
    const report = await runTaskOnce({ tasksDir, taskClassName: 'Greet', options: { name: 'measure' } });
    if (report.outcome !== 'finished') throw new Error(JSON.stringify(report));
  }
  const own = process.cpuUsage(ownAt);
  runs.push({
    wallMs: (performance.now() - wallAt) / tries,
    childCpuMs: (childrenCpuMs() - childrenAt) / tries,
    ownCpuMs: (own.user + own.system) / 1000 / tries,
  });
}
console.log(JSON.stringify({ main: where.resultText, runs }));
`,
  'src/app.mts': `import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRunner, type Runner, type RunnerEvents } from 'cw-task-runner';

const tasksDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tasks');
const runner: Runner = createRunner({ db: process.env.DATABASE_URL!, tasksDir, concurrency: 2 });
const done = new Promise<RunnerEvents['task:completed']>((resolve) => runner.events.on('task:completed', resolve));
await runner.start();
const id: string = await runner.schedule('Greet', { name: 'ESM' });
const event = await done;
await runner.stop();
console.log(JSON.stringify({ id, result: event.result, resultText: event.resultText }));
`,
  'app.cjs': `// A CommonJS application: the package is ESM, so it is loaded with await import().
const path = require('node:path');

async function main() {
  const { createRunner } = await import('cw-task-runner');
  const runner = createRunner({ db: process.env.DATABASE_URL, tasksDir: path.join(__dirname, 'build', 'tasks'), concurrency: 2 });
  const done = new Promise((resolve) => runner.events.on('task:completed', resolve));
  await runner.start();
  const id = await runner.schedule('Greet', { name: 'CommonJS' });
  const event = await done;
  await runner.stop();
  console.log(JSON.stringify({ id, result: event.result, resultText: event.resultText }));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
`,
};

describe('the packed package', () => {
  let tarball: string;
  const app = (): string => path.join(work, 'app');

  it('packs from a fresh copy of the tree with everything a user needs and nothing else', async () => {
    const tree = path.join(work, 'tree');
    await copyProject(tree);
    // `npm pack` builds (prepare); the copy borrows the dev dependencies instead of installing them.
    await symlink(path.join(repoRoot, 'node_modules'), path.join(tree, 'node_modules'));
    const packed = expectSuccess(
      await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: tree, env, timeoutMs: 180_000 }),
      'npm pack',
    );
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
      filename: string;
      files: { path: string }[];
    }[];
    tarball = path.join(work, info!.filename);
    const files = info!.files.map((file) => file.path);
    for (const required of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/tasks/task.js',
      'dist/tasks/task.d.ts',
      'dist/cli/bin.js',
      'dist/launcher.js',
      'dist/tasks/samples/NoOp.js',
      'dist/pool/runtime/child-entry.js',
      'dist/pool/runtime/child-runtime.cjs',
      'dist/pool/runtime/child-runtime.inputs.json',
      'assets/dashboard/index.html',
      'assets/dashboard/app.js',
      'assets/dashboard/app.css',
    ]) {
      expect(files, required).toContain(required);
    }
    expect(files.filter((file) => !/^(dist|src|assets\/dashboard)\//.test(file)).sort()).toEqual([
      'CHANGELOG.md',
      'LICENSE',
      'README.md',
      'package.json',
    ]);
    const manifest = JSON.parse(await readFile(path.join(tree, 'package.json'), 'utf8')) as Record<string, any>;
    expect(manifest.private).toBeUndefined();
    expect(manifest.engines?.node).toMatch(/>=\s*20/);
    expect(manifest.repository?.url).toMatch(/\S/);
    expect(manifest.license).toBe('MIT');
    expect(Object.keys(manifest.dependencies)).toContain('@types/pg');
  }, 240_000);

  it('installs into a new project, whose TypeScript app type-checks under strict with skipLibCheck false', async () => {
    expect(tarball, 'the pack step').toBeDefined();
    await mkdir(app());
    await writeFile(
      path.join(app(), 'package.json'),
      JSON.stringify({ name: 'host-app', version: '1.0.0', private: true }, null, 2),
    );
    for (const [file, text] of Object.entries(appFiles)) {
      await mkdir(path.dirname(path.join(app(), file)), { recursive: true });
      await writeFile(path.join(app(), file), text);
    }
    // @types/node for the app's own use of node: modules (the package brings its own through @types/pg).
    expectSuccess(
      await run('npm', ['install', '--no-save', tarball, '@types/node@20'], { cwd: app(), env, timeoutMs: 300_000 }),
      'npm install',
    );
    // The project's TypeScript compiler checks the app; its types come only from the app's node_modules.
    const check = await run(path.join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], {
      cwd: app(),
      env,
      timeoutMs: 120_000,
    });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.code).toBe(0);
  }, 420_000);

  it('runs the ESM app with its own tasks directory against a real PostgreSQL', async () => {
    const result = expectSuccess(
      await run('node', ['build/app.mjs'], {
        cwd: app(),
        env: { ...env, DATABASE_URL: databaseUrl },
        timeoutMs: 60_000,
      }),
      'node build/app.mjs',
    );
    const line = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
      id: string;
      result: string;
      resultText: string;
    };
    expect(line.result).toBe('FINISHED');
    expect(line.resultText).toMatch(new RegExp(`^Hello, ESM \\(request ${line.id}, pid \\d+\\)$`));
  }, 90_000);

  it('runs a child of the installed package on the bundled child runtime', async () => {
    const result = expectSuccess(
      await run('node', ['build/measure.mjs', '20'], { cwd: app(), env, timeoutMs: 120_000 }),
      'node build/measure.mjs',
    );
    const line = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
      main: string;
      runs: { wallMs: number; childCpuMs: number; ownCpuMs: number }[];
    };
    // Per-try figures for the record (the test asserts only which runtime ran).
    console.log(
      `runTaskOnce from the installed package, per try: ${line.runs.map((r) => `wall ${r.wallMs.toFixed(1)} ms, child CPU ${r.childCpuMs.toFixed(1)} ms, app CPU ${r.ownCpuMs.toFixed(1)} ms`).join('; ')}`,
    );
    expect(line.main).toBe(
      path.join(app(), 'node_modules', 'cw-task-runner', 'dist', 'pool', 'runtime', 'child-runtime.cjs'),
    );
  }, 150_000);

  it('runs from a CommonJS app through await import()', async () => {
    const result = expectSuccess(
      await run('node', ['app.cjs'], { cwd: app(), env: { ...env, DATABASE_URL: databaseUrl }, timeoutMs: 60_000 }),
      'node app.cjs',
    );
    const line = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
      id: string;
      result: string;
      resultText: string;
    };
    expect(line.result).toBe('FINISHED');
    expect(line.resultText).toMatch(/^Hello, CommonJS \(request \d+, pid \d+\)$/);
  }, 90_000);
});
