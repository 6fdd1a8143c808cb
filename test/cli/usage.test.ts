import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDelay } from '../../dist/cli/args.js';
import { fixturesDir } from '../helpers/jobs.js';
import { cleanEnv, cli, cliProcess, workDir } from './cli-process.js';

/** A database URL nothing listens on: a command that reaches for it fails with exit code 1, not 2. */
const deadUrl = 'postgres://root@127.0.0.1:1/x';

let cwd: string;
let remove: () => Promise<void>;
beforeAll(async () => {
  ({ dir: cwd, remove } = await workDir());
});
afterAll(async () => {
  await remove();
});

function expectOneLine(stderr: string, pattern: RegExp): void {
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(/^cw-task-runner: /);
  expect(stderr).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('help', () => {
  it('lists the commands on --help and help, with exit code 0', async () => {
    for (const args of [['--help'], ['help'], ['-h']]) {
      const result = await cli(args, { cwd });
      expect(result.code).toBe(0);
      for (const command of ['start', 'migrate', 'schedule', 'status', 'probe', 'retry', 'help']) {
        expect(result.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
      }
    }
  });

  it('shows the help of each command with --help or help <command>', async () => {
    for (const command of ['start', 'migrate', 'schedule', 'status', 'probe', 'retry']) {
      const flag = await cli([command, '--help'], { cwd });
      const topic = await cli(['help', command], { cwd });
      expect(flag.code).toBe(0);
      expect(flag.stdout).toContain(`Usage: cw-task-runner ${command}`);
      expect(flag.stdout).toContain('--database-url URL');
      expect(topic.stdout).toBe(flag.stdout);
    }
  });

  it('prints the help on stderr with exit code 2 when no command is given', async () => {
    const result = await cli([], { cwd });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('Usage: cw-task-runner <command>');
  });
});

describe('usage errors: one line on stderr, exit code 2, nothing contacted', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown command', ['frobnicate'], /unknown command "frobnicate" \(see cw-task-runner --help\)/],
    [
      'an unknown flag',
      ['schedule', 'NoOp', '--bogus'],
      /Unknown option '--bogus' \(see cw-task-runner schedule --help\)/,
    ],
    ['a flag without its value', ['schedule', 'NoOp', '--delay'], /--delay/],
    ['schedule without a task name', ['schedule'], /schedule needs a task name/],
    ['schedule with two names', ['schedule', 'NoOp', 'Echo'], /takes one task name/],
    ['malformed --options', ['schedule', 'NoOp', '--options', 'a: [1'], /--options: malformed YAML/],
    [
      '--options that are not a map',
      ['schedule', 'NoOp', '--options', 'just text'],
      /--options: options must be a map of names to values \(key: value\), got the text "just text"/,
    ],
    ['--options with a Ruby object tag', ['schedule', 'NoOp', '--options', '!ruby/object:Foo {}'], /Ruby object tag/],
    ['--options with a custom tag', ['schedule', 'NoOp', '--options', 'a: !js/function x'], /custom YAML tag/],
    [
      '--options with an alias bomb',
      [
        'schedule',
        'NoOp',
        '--options',
        [
          'a: &a [x, x, x, x, x, x, x, x, x, x]',
          'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
          'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
          'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
        ].join('\n'),
      ],
      /alias/i,
    ],
    ['a bad --delay', ['schedule', 'NoOp', '--delay', 'soon'], /invalid --delay "soon"/],
    ['a bad --try-limit', ['schedule', 'NoOp', '--try-limit', 'x'], /--try-limit must be a whole number/],
    ['a bad --priority', ['schedule', 'NoOp', '--priority', '1.5'], /--priority must be a whole number/],
    ['an unknown task', ['schedule', 'Nope'], /unknown task class "Nope"; known tasks: .*Echo.*\(in /],
    ['a malicious table name', ['--table', 'x; drop table y', 'status'], /invalid table name "x; drop table y"/],
    [
      'a malicious table name after the command',
      ['schedule', 'NoOp', '--table', 'y"; DROP TABLE y; --'],
      /invalid table name/,
    ],
    ['a bad request id', ['retry', '12abc'], /invalid request id "12abc"/],
    ['arguments to a command that takes none', ['status', 'extra'], /status takes no arguments/],
    [
      'a database URL that is not one',
      ['--database-url', 'localhost:5432', 'migrate'],
      /"databaseUrl": must be a postgres:\/\//,
    ],
  ];
  it.each(cases)('%s', async (_what, args, pattern) => {
    const result = await cli(['--tasks-dir', fixturesDir, ...args], { cwd, env: cleanEnv({ DATABASE_URL: deadUrl }) });
    expect(result.stdout).toBe('');
    expectOneLine(result.stderr, pattern);
    expect(result.code).toBe(2);
  });

  it('reports an invalid environment variable by name', async () => {
    const result = await cli(['status'], { cwd, env: cleanEnv({ DATABASE_URL: deadUrl, CW_CONCURRENCY: 'lots' }) });
    expect(result.code).toBe(2);
    expectOneLine(result.stderr, /CW_CONCURRENCY.*whole number/);
  });
});

describe('runtime errors: one line, exit code 1, no stack', () => {
  it('names an unreachable database (password hidden) for every command that needs one', async () => {
    for (const args of [['migrate'], ['schedule', 'NoOp'], ['status'], ['probe'], ['retry', '1']]) {
      const result = await cli(['--database-url', 'postgres://root:secret@127.0.0.1:1/x', ...args], { cwd });
      expect(result.code, args.join(' ')).toBe(1);
      const [warning, ...error] = result.stderr.split(/(?<=\n)/);
      expect(warning).toMatch(
        /^cw-task-runner: warning: a password in --database-url can be read by every user .* set DATABASE_URL/,
      );
      expectOneLine(
        error.join(''),
        /cannot use the database postgres:\/\/root:\*\*\*@127\.0\.0\.1:1\/x: .*ECONNREFUSED/,
      );
      expect(result.stderr).not.toContain('secret');
    }
  });

  it('gives no password warning for a URL without one, or one given through the environment', async () => {
    for (const params of [
      { args: ['--database-url', 'postgres://root@127.0.0.1:1/x'] },
      { args: [], env: cleanEnv({ DATABASE_URL: 'postgres://root:secret@127.0.0.1:1/x' }) },
    ]) {
      const result = await cli([...params.args, 'status'], { cwd, env: params.env });
      expect(result.code).toBe(1);
      expectOneLine(result.stderr, /cannot use the database/);
    }
  });

  it('names a tasks directory that cannot be read', async () => {
    const result = await cli(['schedule', 'NoOp', '--tasks-dir', '/nonexistent/tasks'], {
      cwd,
      env: cleanEnv({ DATABASE_URL: deadUrl }),
    });
    expect(result.code).toBe(1);
    expectOneLine(result.stderr, /cannot read tasks directory \/nonexistent\/tasks/);
  });
});

describe('the bin file', () => {
  it('runs as a process and exits with the code', async () => {
    const ok = await cliProcess(['--help'], { cwd });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('Usage: cw-task-runner');
    const dead = await cliProcess(['--database-url', deadUrl, 'status'], { cwd });
    expect(dead.code).toBe(1);
    expectOneLine(dead.stderr, /cannot use the database/);
    const usage = await cliProcess(['retry'], { cwd });
    expect(usage.code).toBe(2);
  });
});

describe('parseDelay', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
  ])('reads %s as a duration', (text, ms) => {
    expect(parseDelay(text, now).getTime()).toBe(now + ms);
  });

  it('reads ISO dates', () => {
    expect(parseDelay('2031-02-03T04:05:06Z', now).toISOString()).toBe('2031-02-03T04:05:06.000Z');
    expect(parseDelay('2031-02-03', now).toISOString()).toBe('2031-02-03T00:00:00.000Z');
  });

  it.each(['', '5', 'soon', '-5m', '5 minutes', '2031-13-45', '1e9d'])('refuses %j', (text) => {
    expect(() => parseDelay(text, now)).toThrow(/invalid --delay/);
  });
});
