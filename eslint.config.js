// ESLint: typescript-eslint's recommended rules (syntax only, no type information, so the whole
// tree lints in seconds), tuned to this codebase's deliberate style, and the house rules of
// ARCHITECTURE.md that a tool can check: one-way imports between src/ folders, the child runtime
// loads no database code, library code writes nothing to the console and installs no handler on
// `process`.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// The layers of src/, lowest first. A folder may import the folders of lower rows only: not its
// peers on the same row, not anything above. Adding a folder is one line.
const layers = [
  ['errors.ts'],
  ['shared'],
  ['config'],
  ['tasks'],
  ['store', 'pool'], // pool never imports store
  ['client'],
  ['embedded'],
  ['launcher'],
  ['dashboard', 'metrics'],
  ['standalone'], // the standalone process: the launcher, the embedded server, dashboard and metrics
  ['cli'],
];
// Entry files (src/index.ts, src/launcher.ts) sit above every layer and are not checked here.

// Where a folder's files are, and how an import names it. `standalone` also matches its earlier
// place, src/launcher/standalone/, so that the rule holds on both trees while it moves.
const legacyPlaces = { standalone: ['launcher/standalone'] };
const placesOf = (folder) => [folder, ...(legacyPlaces[folder] ?? [])];
const filesOf = (folder) =>
  folder.endsWith('.ts') ? [`src/${folder}`] : placesOf(folder).map((place) => `src/${place}/**/*.ts`);
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
// An import of `folder` from anywhere in src/: one or more `../` (or `./` from a parent folder),
// then the folder's path; `errors.ts` is imported as `errors.js`.
const importOf = (folder) =>
  folder.endsWith('.ts')
    ? `^(\\.\\.?/)+${escape(folder.replace(/\.ts$/, '.js'))}$`
    : `^(\\.\\.?/)+(${placesOf(folder).map(escape).join('|')})/`;

function layerBlocks() {
  return layers.flatMap((row, rowIndex) =>
    row.map((folder) => {
      const above = layers.slice(rowIndex + 1).flat();
      const peers = row.filter((other) => other !== folder);
      const forbidden = [...peers, ...above];
      // A folder inside another one (launcher/standalone) is its own layer, not part of the outer.
      const inner = layers
        .flat()
        .flatMap(placesOf)
        .filter((place) => place !== folder && place.startsWith(`${folder}/`));
      return {
        name: `layers/${folder}`,
        files: filesOf(folder),
        ignores: inner.map((place) => `src/${place}/**`),
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: forbidden.map((other) => ({
                regex: importOf(other),
                message: peers.includes(other)
                  ? `${folder} and ${other} are peers in ARCHITECTURE.md's layers: neither imports the other.`
                  : `${folder} is below ${other} in ARCHITECTURE.md's layers: imports point down.`,
              })),
            },
          ],
        },
      };
    }),
  );
}

// Imports only a database client or the runner's upper layers need: the child runtime never
// loads them (it starts light), and YAML only when an options text needs it.
const databaseModules = ['pg', 'pg-*', 'kysely', 'piscina', 'prom-client', 'croner', 'p-limit', 'yaml'];
const runtimeBlock = {
  name: 'layers/pool/runtime',
  files: ['src/pool/runtime/**/*.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          ...layers
            .slice(layers.findIndex((row) => row.includes('store')))
            .flat()
            .filter((folder) => folder !== 'pool')
            .map((folder) => ({
              regex: importOf(folder),
              message: `the child runtime does not import ${folder} (ARCHITECTURE.md).`,
            })),
          { regex: '^(\\.\\./)+config/', message: 'the child runtime does not import config (ARCHITECTURE.md).' },
          {
            group: databaseModules,
            message: 'the child runtime starts light: no database client, no YAML at import (ARCHITECTURE.md).',
          },
        ],
      },
    ],
  },
};

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

export default tseslint.config(
  {
    ignores: ['dist/**', 'tmp/**', 'coverage/**', 'node_modules/**', '**/node_modules/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
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
  runtimeBlock,
  libraryBlock,
);
