// Writes docs/configuration.md from the option table (src/config/option-specs.ts, read built from
// dist/config/option-specs.js: run `npm run build` first). `--check` writes nothing: it fails when
// the committed page differs from what the table gives, or when a key the config file accepts
// (at the top or inside a map) is missing from the page.
//
//   npm run docs:config           regenerate the page
//   npm run check:config-docs     what CI runs
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const page = path.join(root, 'docs', 'configuration.md');
const specs = await import(pathToFileURL(path.join(root, 'dist', 'config', 'option-specs.js')).href);
const { runnerOptionSpecs, launcherOptionSpecs } = specs;

const code = (text) => `\`${text}\``;
const cell = (text) => String(text).replaceAll('|', '\\|').replaceAll('\n', ' ');
const row = (cells) => `| ${cells.map(cell).join(' | ')} |`;
const table = (head, rows) => [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

function bounds(spec) {
  if (spec.min !== undefined && spec.max !== undefined) return `integer, ${spec.min} to ${spec.max}`;
  if (spec.min !== undefined) return `integer ≥ ${spec.min}`;
  if (spec.max !== undefined) return `integer ≤ ${spec.max}`;
  return 'integer';
}

function valuesOf(spec) {
  switch (spec.kind) {
    case 'integer':
      return bounds(spec);
    case 'integerOrNull':
      return `${bounds(spec)}, or null`;
    case 'integerOrInfinity':
      return `${bounds(spec)}, or ${code('Infinity')}`;
    case 'string':
      return 'string';
    case 'identifier':
      return 'SQL identifier';
    case 'path':
      return 'path';
    case 'database':
      return 'connection string';
    case 'connection':
      return `connection string or ${code('pg.Pool')}`;
    case 'strings':
      return 'list of strings';
    case 'stringsOrNull':
      return 'list of strings, or null';
    case 'stringMapOrNull':
      return 'map of strings, or null';
    case 'boolean':
      return `${code('true')} or ${code('false')}`;
    case 'logLevel':
      return ['debug', 'info', 'warn', 'error'].map(code).join(', ');
    case 'logFormat':
      return `${code('pretty')} or ${code('json')}`;
    case 'mode':
      return `${code('process')} or ${code('thread')}`;
    case 'userOrNull':
      return 'name or id, or null';
    case 'durations':
      return `map of result to duration or ${code('false')}`;
    case 'map':
      return 'map';
    case 'list':
      return 'list of maps';
    case 'logger':
      return code('Logger');
    case 'section':
      return 'map';
    case 'sectionOrNull':
      return 'map, or null';
    case 'sectionOrFalse':
      return `map, or ${code('false')}`;
    default:
      throw new Error(`config-docs: no wording for the kind ${JSON.stringify(spec.kind)}`);
  }
}

function defaultOf(name, spec) {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = spec.default;
  if (value === undefined) throw new Error(`config-docs: ${name} has neither a default nor a defaultText`);
  if (value === null) return 'none';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return code(value);
  if (typeof value === 'string') return code(value);
  if (Array.isArray(value)) return value.length === 0 ? 'none' : code(value.join(' '));
  if (Object.keys(value).length === 0) return 'none';
  return code(JSON.stringify(value));
}

const fileSpecs = [...Object.entries(runnerOptionSpecs), ...Object.entries(launcherOptionSpecs)].filter(
  ([, spec]) => spec.fileKey !== null,
);
const codeOnly = Object.entries(runnerOptionSpecs).filter(([, spec]) => spec.fileKey === null);

/** Where a nested key sits in a map: `retryBackoff.baseMs`, `recurring[].task`, `taskOverrides.<Name>.mode`. */
function prefixOf(key, spec) {
  if (spec.kind === 'list') return `${key}[].`;
  if (spec.kind === 'map') return `${key}.<Name>.`;
  return `${key}.`;
}

/** The top-level key whose map has these very fields (`childLimits` for a task's `limits`), if any. */
function ownerOf(fields) {
  return fileSpecs.find(([, spec]) => spec.fields === fields)?.[1].fileKey ?? null;
}

function section(key, spec) {
  const prefix = prefixOf(key, spec);
  const rows = Object.entries(spec.fields).map(([name, field]) => {
    const owner = field.fields === undefined ? null : ownerOf(field.fields);
    const values = owner === null ? valuesOf(field) : `${valuesOf(field)}: the keys of ${code(owner)}`;
    return [code(prefix + name), values, defaultOf(prefix + name, field), field.description];
  });
  return [
    `### ${code(key)}`,
    '',
    `${spec.description[0].toUpperCase()}${spec.description.slice(1)}.`,
    '',
    table(['key', 'values', 'default', 'meaning'], rows),
  ].join('\n');
}

function render() {
  const flags = fileSpecs.filter(([, spec]) => spec.flag !== undefined);
  const envs = fileSpecs.map(([, spec]) => spec.env).filter((env) => env !== undefined);
  const overview = fileSpecs.map(([name, spec]) => {
    const option = runnerOptionSpecs[name] === spec ? code(name) : '';
    const where = [spec.env, spec.flag]
      .filter((item) => item !== undefined)
      .map(code)
      .join(', ');
    return [code(spec.fileKey), option, where, valuesOf(spec), defaultOf(spec.fileKey, spec), spec.description];
  });
  const nested = fileSpecs
    .filter(([, spec]) => spec.fields !== undefined)
    .map(([, spec]) => section(spec.fileKey, spec));
  return `<!-- Generated by \`npm run docs:config\` from src/config/option-specs.ts: edit the table there. -->

# Configuration

A runner is configured in one of two ways, with the same settings under the same names:

- **From code**, \`createRunner({ db, tasksDir, ...options })\` takes the options of the second
  column below. It reads no file and no environment variable.
- **The standalone launcher** (\`cw-task-runner start\`, or \`node dist/launcher.js\`) **and the CLI**
  read a config file, then environment variables over it, then command-line flags over both.

The config file is \`cw-task-runner.yml\` in the working directory when it exists, or the file
named by \`--config FILE\` (else \`CW_CONFIG\`). It is YAML (the core schema: no custom tags, little
alias expansion) or JSON (\`.json\`), a map of the keys in the first column. Unknown keys are
refused by name, at the top and inside the maps; paths in the file are relative to the file's
directory. Every value is checked before anything starts, and an error names the setting.

\`\`\`yaml
# cw-task-runner.yml
databaseUrl: postgres://app@localhost/app
tasksDir: dist/tasks
concurrency: 4
pollIntervalMs: 60000        # LISTEN/NOTIFY wakes the launcher anyway
retryBackoff: { baseMs: 5000, maxMs: 600000 }
retention: { keep: { FINISHED: 1d, FAILED: 90d } }
\`\`\`

Over the file:

- environment variables: ${envs.map(code).join(', ')} (see the table),
  \`CW_CONFIG\` (the config file) and \`CW_DASHBOARD_TOKEN\` (\`dashboard.token\`); an empty one counts as unset;
- flags, which every CLI command takes: ${flags.map(([, spec]) => code(spec.flag)).join(', ')} (see the table) and
  \`--config FILE\`.

Give the database password through \`DATABASE_URL\`, the config file (mode 600) or \`~/.pgpass\`
rather than \`--database-url\`: a command line is visible to every user of the machine.

Only \`createRunner\` takes ${codeOnly.map(([name]) => code(name)).join(', ')}.

## Every setting

${table(['config-file key', 'option', 'environment, flag', 'values', 'default', 'meaning'], overview)}

## Maps

${nested.join('\n\n')}
`;
}

/** Every key a config file accepts, as the page writes it: top-level and nested. */
function allKeys() {
  const keys = [];
  for (const [, spec] of fileSpecs) {
    keys.push(spec.fileKey);
    const prefix = prefixOf(spec.fileKey, spec);
    for (const name of Object.keys(spec.fields ?? {})) keys.push(prefix + name);
  }
  return keys;
}

const text = render();
if (process.argv.includes('--check')) {
  const committed = await readFile(page, 'utf8').catch(() => '');
  const missing = allKeys().filter((key) => !committed.includes(code(key)));
  const problems = [];
  if (missing.length > 0) problems.push(`config-file keys missing from docs/configuration.md: ${missing.join(', ')}`);
  if (committed !== text) {
    problems.push('docs/configuration.md differs from the option table: run `npm run docs:config`');
  }
  for (const problem of problems) console.error(problem);
  process.exitCode = problems.length > 0 ? 1 : 0;
} else {
  await writeFile(page, text);
  console.log(`wrote ${path.relative(root, page)}`);
}
