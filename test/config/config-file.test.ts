import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile, loadStandaloneConfig } from '../../dist/config/config-file.js';
import { createStreamLogger, TaskRunnerError } from '../../dist/index.js';
import { logsAt, silentLogger } from '../../dist/shared/logger.js';

let dir: string;
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cwtr-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `text` to a fresh file named `name` in a fresh directory; returns its path. */
async function file(name: string, text: string): Promise<string> {
  const sub = path.join(dir, String(++n));
  await mkdir(sub);
  const target = path.join(sub, name);
  await writeFile(target, text);
  return target;
}

async function failure(promise: Promise<unknown>): Promise<TaskRunnerError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskRunnerError);
  return error as TaskRunnerError;
}

describe('loadConfigFile', () => {
  it('reads every key from YAML and resolves paths against the file directory', async () => {
    const target = await file(
      'cw-task-runner.yml',
      [
        'databaseUrl: postgres://u@db.example/app',
        'tasksDir: ./tasks',
        'tableName: jobs',
        'concurrency: 3',
        'queues: [mail, reports]',
        'pollIntervalMs: 60000',
        'retryBackoff: { baseMs: 100, maxMs: 1000 }',
        'probeIntervalMs: 1000',
        'leaseMs: 3000',
        'shutdownGraceMs: 500',
        'killTimeoutMs: 200',
        'maxOptionsBytes: 2048',
        'maxResultBytes: 4096',
        'childEnv: { NODE_ENV: production }',
        'childExecArgv: ["--max-old-space-size=256"]',
        'host: web-1',
        'logLevel: debug',
        'tmpDir: var',
        'embedded: { port: 55000, dataDir: pg }',
      ].join('\n'),
    );
    const base = path.dirname(target);
    expect(await loadConfigFile(target)).toEqual({
      databaseUrl: 'postgres://u@db.example/app',
      tasksDir: path.join(base, 'tasks'),
      tableName: 'jobs',
      concurrency: 3,
      queues: ['mail', 'reports'],
      pollIntervalMs: 60000,
      retryBackoff: { baseMs: 100, maxMs: 1000 },
      probeIntervalMs: 1000,
      leaseMs: 3000,
      shutdownGraceMs: 500,
      killTimeoutMs: 200,
      maxOptionsBytes: 2048,
      maxResultBytes: 4096,
      childEnv: { NODE_ENV: 'production' },
      childExecArgv: ['--max-old-space-size=256'],
      host: 'web-1',
      logLevel: 'debug',
      tmpDir: path.join(base, 'var'),
      embedded: { port: 55000, dataDir: path.join(base, 'pg') },
    });
  });

  it('reads JSON, and an empty YAML file as no settings', async () => {
    const json = await file('c.json', JSON.stringify({ concurrency: 2, tasksDir: '/abs/tasks' }));
    expect(await loadConfigFile(json)).toEqual({ concurrency: 2, tasksDir: '/abs/tasks' });
    expect(await loadConfigFile(await file('empty.yaml', '# nothing\n'))).toEqual({});
  });

  it('refuses unknown keys by name, at the top and inside maps', async () => {
    const top = await failure(loadConfigFile(await file('c.yml', 'concurrency: 2\nconcurency: 3\npoll: 1\n')));
    expect(top.code).toBe('CONFIG_INVALID');
    expect(top.message).toMatch(/unknown keys "concurency", "poll"/);
    const nested = await failure(loadConfigFile(await file('c.yml', 'embedded: { port: 1, datadir: x }\n')));
    expect(nested.message).toMatch(/unknown key "datadir" in "embedded"/);
    const backoff = await failure(loadConfigFile(await file('c.yml', 'retryBackoff: { base: 1 }\n')));
    expect(backoff.message).toMatch(/unknown key "base" in "retryBackoff"/);
  });

  it('names the key of a value of the wrong type', async () => {
    for (const [text, pattern] of [
      ['concurrency: two', /"concurrency" must be an integer/],
      ['queues: mail', /"queues" must be a list of strings/],
      ['childEnv: { A: 1 }', /"childEnv" must be a map of string values/],
      ['logLevel: loud', /"logLevel" must be one of debug, info, warn, error/],
      ['embedded: { port: "x" }', /"embedded.port" must be an integer/],
      ['tasksDir: ""', /"tasksDir" must be a non-empty string/],
    ] as const) {
      const error = await failure(loadConfigFile(await file('c.yml', `${text}\n`)));
      expect(error.message).toMatch(pattern);
      expect(error.message).toContain('c.yml');
    }
  });

  it('parses YAML safely: no custom tags, little alias expansion, a size cap', async () => {
    const tag = await failure(loadConfigFile(await file('c.yml', 'host: !ruby/object:Foo {}\n')));
    expect(tag.message).toMatch(/YAML tag !ruby\/object:Foo is not allowed/);
    const jsTag = await failure(loadConfigFile(await file('c.yml', 'host: !!js/function "f() {}"\n')));
    expect(jsTag.code).toBe('CONFIG_INVALID');
    const bomb = [
      'queues: &a [x, x, x, x, x, x, x, x, x]',
      'childExecArgv: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'host: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
    ].join('\n');
    const aliases = await failure(loadConfigFile(await file('c.yml', `${bomb}\n`)));
    expect(aliases.code).toBe('CONFIG_INVALID');
    const big = await failure(loadConfigFile(await file('c.yml', `host: ${'x'.repeat(300 * 1024)}\n`)));
    expect(big.message).toMatch(/over the limit/);
    const malformed = await failure(loadConfigFile(await file('c.yml', 'queues: [a, b\n')));
    expect(malformed.message).toMatch(/malformed YAML/);
    const duplicate = await failure(loadConfigFile(await file('c.yml', 'host: a\nhost: b\n')));
    expect(duplicate.message).toMatch(/malformed YAML/);
  });

  it('refuses what is not a map of settings, other extensions and missing files', async () => {
    expect((await failure(loadConfigFile(await file('c.yml', '- a\n- b\n')))).message).toMatch(/must hold a map/);
    expect((await failure(loadConfigFile(await file('c.json', '{"a": ')))).message).toMatch(/malformed JSON/);
    expect((await failure(loadConfigFile(await file('c.toml', 'a = 1')))).message).toMatch(
      /use a \.yml, \.yaml or \.json file/,
    );
    expect((await failure(loadConfigFile(path.join(dir, 'missing.yml')))).message).toMatch(/cannot read it: ENOENT/);
  });
});

describe('loadStandaloneConfig', () => {
  it('has defaults for a directory without a config file and an empty environment', async () => {
    const cwd = path.dirname(await file('unrelated.txt', ''));
    const config = await loadStandaloneConfig({ cwd, env: {} });
    expect(config).toEqual({
      configFile: null,
      databaseUrl: null,
      tasksDir: null,
      tableName: 'task_runner_requests',
      logLevel: 'info',
      logFormat: 'pretty',
      tmpDir: path.join(cwd, 'tmp'),
      embedded: { port: 54329, dataDir: path.join(cwd, 'tmp', 'embedded-pg') },
      dashboard: null,
      dashboardToken: null,
      metrics: null,
      // The daemon waits for its database at start (the library's default is not to).
      runner: { startRetry: {} },
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads cw-task-runner.yml from the working directory; the environment overrides it; flags override both', async () => {
    const target = await file(
      'cw-task-runner.yml',
      [
        'databaseUrl: postgres://file/db',
        'tasksDir: file-tasks',
        'tableName: file_table',
        'concurrency: 2',
        'pollIntervalMs: 1000',
        'logLevel: warn',
        'shutdownGraceMs: 50',
      ].join('\n'),
    );
    const cwd = path.dirname(target);
    const fromFile = await loadStandaloneConfig({ cwd, env: {} });
    expect(fromFile).toMatchObject({
      configFile: target,
      databaseUrl: 'postgres://file/db',
      tasksDir: path.join(cwd, 'file-tasks'),
      tableName: 'file_table',
      logLevel: 'warn',
      runner: { concurrency: 2, pollIntervalMs: 1000, shutdownGraceMs: 50 },
    });
    const env = {
      DATABASE_URL: 'postgres://env/db',
      CW_TASKS_DIR: 'env-tasks',
      CW_TABLE_NAME: 'env_table',
      CW_CONCURRENCY: '5',
      CW_POLL_INTERVAL_MS: '60000',
      CW_LOG_LEVEL: 'error',
    };
    expect(await loadStandaloneConfig({ cwd, env })).toMatchObject({
      databaseUrl: 'postgres://env/db',
      tasksDir: path.join(cwd, 'env-tasks'),
      tableName: 'env_table',
      logLevel: 'error',
      runner: { concurrency: 5, pollIntervalMs: 60000, shutdownGraceMs: 50 },
    });
    const flags = { databaseUrl: 'postgresql://flag/db', tasksDir: '/flag/tasks', tableName: 'flag_table' };
    expect(await loadStandaloneConfig({ cwd, env, flags })).toMatchObject({
      databaseUrl: 'postgresql://flag/db',
      tasksDir: '/flag/tasks',
      tableName: 'flag_table',
    });
  });

  it('takes the config file from --config, else CW_CONFIG', async () => {
    const a = await file('a.json', JSON.stringify({ tableName: 'from_a' }));
    const b = await file('b.yaml', 'tableName: from_b\n');
    const cwd = path.dirname(a);
    expect((await loadStandaloneConfig({ cwd, env: { CW_CONFIG: b } })).tableName).toBe('from_b');
    expect((await loadStandaloneConfig({ cwd, env: { CW_CONFIG: b }, flags: { config: 'a.json' } })).tableName).toBe(
      'from_a',
    );
    const missing = await failure(loadStandaloneConfig({ cwd, env: { CW_CONFIG: 'nope.yml' } }));
    expect(missing.message).toContain(path.join(cwd, 'nope.yml'));
  });

  it('validates everything before anything starts, naming the setting', async () => {
    const cwd = path.dirname(await file('x.txt', ''));
    const cases: [Parameters<typeof loadStandaloneConfig>[0], string, RegExp][] = [
      [{ env: { CW_CONCURRENCY: 'many' } }, 'CONFIG_INVALID', /CW_CONCURRENCY.*whole number/],
      [{ env: { CW_CONCURRENCY: '0' } }, 'CONFIG_INVALID', /"concurrency"/],
      [{ env: { CW_LOG_LEVEL: 'verbose' } }, 'CONFIG_INVALID', /CW_LOG_LEVEL/],
      [{ flags: { tableName: 'x; drop table y' } }, 'TABLE_NAME_INVALID', /invalid table name "x; drop table y"/],
      [{ env: { CW_TABLE_NAME: 'Bad-Name' } }, 'TABLE_NAME_INVALID', /invalid table name/],
      [{ flags: { databaseUrl: 'mysql://x/y' } }, 'CONFIG_INVALID', /databaseUrl.*postgres:\/\//],
      [{ env: { DATABASE_URL: 'not a url' } }, 'CONFIG_INVALID', /databaseUrl/],
    ];
    for (const [params, code, pattern] of cases) {
      const error = await failure(loadStandaloneConfig({ cwd, env: {}, ...params }));
      expect(error.code).toBe(code);
      expect(error.message).toMatch(pattern);
    }
    const range = await file('cw-task-runner.yml', 'retryBackoff: { baseMs: 100, maxMs: 10 }\n');
    const error = await failure(loadStandaloneConfig({ cwd: path.dirname(range), env: {} }));
    expect(error.message).toMatch(/retryBackoff\.maxMs/);
    for (const [text, pattern] of [
      ['startRetry: { baseMs: 100, maxMs: 10 }\n', /invalid config "startRetry\.maxMs": must be an integer from 100/],
      ['startRetry: { giveUpAfterMs: -1 }\n', /invalid config "startRetry\.giveUpAfterMs"/],
      ['startRetry: { tries: 3 }\n', /invalid config "startRetry\.tries": is not an option/],
      ['startRetry: true\n', /invalid config "startRetry": must be false or a map/],
    ] as const) {
      const bad = await file('cw-task-runner.yml', text);
      expect((await failure(loadStandaloneConfig({ cwd: path.dirname(bad), env: {} }))).message).toMatch(pattern);
    }
    const off = await file('cw-task-runner.yml', 'startRetry: false\n');
    expect((await loadStandaloneConfig({ cwd: path.dirname(off), env: {} })).runner.startRetry).toBe(false);
    const port = await file('cw-task-runner.yml', 'embedded: { port: 70000 }\n');
    expect((await failure(loadStandaloneConfig({ cwd: path.dirname(port), env: {} }))).message).toMatch(
      /embedded\.port/,
    );
  });

  it('ignores empty environment variables', async () => {
    const cwd = path.dirname(await file('x.txt', ''));
    const config = await loadStandaloneConfig({
      cwd,
      env: { DATABASE_URL: '', CW_CONCURRENCY: ' ', CW_TASKS_DIR: '' },
    });
    expect(config.databaseUrl).toBeNull();
    expect(config.tasksDir).toBeNull();
    expect(config.runner).toEqual({ startRetry: {} });
  });
});

describe('log settings', () => {
  it('takes logFormat and taskLogLevel from the file, CW_LOG_FORMAT from the environment, and refuses others', async () => {
    const dir = path.dirname(await file('cw-task-runner.yml', 'logFormat: json\ntaskLogLevel: debug\n'));
    const config = await loadStandaloneConfig({ cwd: dir, env: {} });
    expect(config).toMatchObject({ logFormat: 'json', runner: { taskLogLevel: 'debug' } });
    expect((await loadStandaloneConfig({ cwd: dir, env: { CW_LOG_FORMAT: 'pretty' } })).logFormat).toBe('pretty');
    await expect(loadStandaloneConfig({ cwd: dir, env: { CW_LOG_FORMAT: 'xml' } })).rejects.toThrow(
      /CW_LOG_FORMAT.*"pretty" or "json"/,
    );
    const bad = path.dirname(await file('cw-task-runner.yml', 'taskLogLevel: loud\n'));
    await expect(loadStandaloneConfig({ cwd: bad, env: {} })).rejects.toThrow(
      /"taskLogLevel" must be one of debug, info, warn, error/,
    );
  });
});

describe('createStreamLogger', () => {
  it('writes lines logged close together in one write, as readable lines or JSON with the base fields', async () => {
    const writes: string[] = [];
    let written: () => void = () => undefined;
    const firstWrite = new Promise<void>((resolve) => (written = resolve));
    const pretty = createStreamLogger(
      {
        write: (chunk: string) => {
          writes.push(chunk);
          written();
        },
      },
      'info',
    );
    pretty.debug('dropped');
    pretty.info('first', { id: '7' });
    await new Promise<void>((resolve) => setImmediate(resolve));
    pretty.warn('second');
    expect(writes).toEqual([]);
    await firstWrite;
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^\S+ INFO  first id="7"\n\S+ WARN  second\n$/);
    const json = createStreamLogger(
      { write: (chunk: string) => writes.push(chunk) },
      { format: 'json', base: { pid: 42, host: 'h' } },
    );
    json.error('boom', { id: '8', n: 1n });
    json.flush?.();
    expect(JSON.parse(writes[1]!)).toMatchObject({
      level: 'error',
      msg: 'boom',
      pid: 42,
      host: 'h',
      id: '8',
      n: '1',
      time: expect.any(String),
    });
  });

  it('says which levels it keeps, so a caller can skip building lines it would drop', () => {
    const logger = createStreamLogger({ write: () => undefined }, 'info');
    expect(logsAt(logger, 'debug')).toBe(false);
    expect(logsAt(logger, 'info')).toBe(true);
    expect(logsAt(logger, 'error')).toBe(true);
    expect(logsAt(silentLogger, 'error')).toBe(false);
    expect(logsAt({ debug() {}, info() {}, warn() {}, error() {} }, 'debug')).toBe(true);
  });

  it('stamps each line with the current time, to the millisecond', () => {
    const writes: string[] = [];
    const logger = createStreamLogger({ write: (chunk: string) => writes.push(chunk) }, 'info');
    const before = Date.now();
    logger.info('a');
    logger.info('b');
    logger.flush?.();
    const after = Date.now();
    const times = writes
      .join('')
      .trim()
      .split('\n')
      .map((line) => Date.parse(line.split(' ')[0]!));
    expect(times).toHaveLength(2);
    for (const t of times) expect(t >= before && t <= after).toBe(true);
  });
});
