// ESLint: typescript-eslint's recommended rules (syntax only, no type information, so the whole
// tree lints in seconds), tuned to this codebase's deliberate style, and the house rules of
// ARCHITECTURE.md that a tool can check: one-way imports between src/ folders, the child runtime
// loads no database code, library code writes nothing to the console and installs no handler on
// `process`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// The layers of src/, lowest first. A folder may import the folders of lower rows only: not its
// peers on the same row, not anything above. Adding a folder is one line.
const layers = [
  ['errors.ts'],
  ['shared'],
  ['config'],
  ['tasks', 'store', 'pool'], // pool never imports store
  ['pool/runtime', 'client'], // what runs in a child or a thread; the enqueue side
  ['launcher'],
  ['dashboard', 'metrics', 'embedded'], // the parts the standalone process adds to a launcher
  ['standalone'],
  ['cli'],
];
// Entry files (src/index.ts, src/launcher.ts) sit above every layer and are not checked here.

// Lower folders and packages a folder still may not import. The child runtime starts light: no
// database code, no configuration, and YAML only when an options text needs it (loaded then).
const barred = { 'pool/runtime': ['config', 'store'] };
const barredPackages = {
  'pool/runtime': ['pg', 'pg-*', 'kysely', 'piscina', 'prom-client', 'croner', 'p-limit', 'yaml'],
};

// Where a folder's files are (one place each; a list, should a folder ever live in two).
const placesOf = (folder) => [folder];
const filesOf = (folder) =>
  folder.endsWith('.ts') ? [`src/${folder}`] : placesOf(folder).map((place) => `src/${place}/**/*.ts`);
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
// How a file of folder `from` names folder `to` (the rule sees the import's text, not a resolved
// path): `../` one or more times, then its path (`errors.ts` as `errors.js`); a folder inside
// `from`'s own (pool/runtime from pool) also as `./runtime/`.
function importOf(to, from) {
  if (to.endsWith('.ts')) return `^(\\.\\.?/)+${escape(to.replace(/\.ts$/, '.js'))}$`;
  const places = placesOf(to).map(escape);
  const own = placesOf(from).flatMap((place) =>
    placesOf(to)
      .filter((other) => other.startsWith(`${place}/`))
      .map((other) => escape(other.slice(place.length + 1))),
  );
  return `^((\\.\\.?/)+(${places.join('|')})${own.length > 0 ? `|\\./(${own.join('|')})` : ''})/`;
}

function layerBlocks() {
  const allPlaces = layers.flat().flatMap(placesOf);
  return layers.flatMap((row, rowIndex) =>
    row.map((folder) => {
      const peers = row.filter((other) => other !== folder);
      const above = layers.slice(rowIndex + 1).flat();
      const explain = (other) =>
        peers.includes(other)
          ? `${folder} and ${other} are peers in ARCHITECTURE.md's layers: neither imports the other.`
          : above.includes(other)
            ? `${folder} is below ${other} in ARCHITECTURE.md's layers: imports point down.`
            : `${folder} does not import ${other} (ARCHITECTURE.md).`;
      const patterns = [...peers, ...above, ...(barred[folder] ?? [])].map((other) => ({
        regex: importOf(other, folder),
        message: explain(other),
      }));
      if (barredPackages[folder]) {
        patterns.push({
          group: barredPackages[folder],
          message: `${folder} starts light: no database client, no YAML at import (ARCHITECTURE.md).`,
        });
      }
      // A layer inside this folder (pool/runtime in pool) has a block of its own.
      const inner = placesOf(folder).flatMap((place) =>
        allPlaces.filter((other) => other.startsWith(`${place}/`)).map((other) => `src/${other}/**`),
      );
      return {
        name: `layers/${folder}`,
        files: filesOf(folder),
        ignores: inner,
        rules: { 'no-restricted-imports': ['error', { patterns }] },
      };
    }),
  );
}

// Library code never writes to the console, exits the process or listens on `process`; the CLI
// and the files run as a process of their own do.
const processEntries = [
  'src/cli/**',
  'src/launcher.ts',
  'src/pool/runtime/child-entry.ts',
  'src/pool/runtime/thread-entry.ts',
  'src/tasks/traits-entry.ts',
];
const libraryBlock = {
  name: 'library code',
  files: ['src/**/*.ts'],
  ignores: processEntries,
  rules: {
    'no-console': 'error',
    'no-restricted-properties': [
      'error',
      { object: 'process', property: 'exit', message: 'library code never exits the process.' },
    ],
    'no-restricted-syntax': [
      'error',
      {
        selector:
          "CallExpression[callee.object.name='process'][callee.property.name=/^(on|once|addListener|prepend(Once)?Listener)$/]",
        message: 'library code installs no handler on process (signals belong to src/cli).',
      },
    ],
  },
};

export default defineConfig(
  {
    ignores: ['dist/**', 'tmp/**', 'coverage/**', 'bench/results/**', '**/node_modules/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    name: 'house style',
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `any` stands where a type must accept whatever an application brings: its Kysely schema
      // (`Kysely<any>`), a task class's options, rows a test reads back; tsc's strict mode
      // already refuses an implicit one.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    name: 'commonjs files',
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    name: 'dashboard page',
    files: ['assets/dashboard/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
  {
    name: 'tests',
    files: ['test/**'],
    // Tests match the CLI's column layouts as printed, two spaces and all.
    rules: { 'no-regex-spaces': 'off' },
  },
  ...layerBlocks(),
  libraryBlock,
);
