// Part of the build (after tsc): the child runtime as one CommonJS file, dist/pool/runtime/child-runtime.cjs.
// A fresh child loads one file instead of a dozen, which takes about 5 ms of CPU off every child (the
// ESM loader resolves, reads and links each module on its own). It is CommonJS because a child whose
// main script is an ES module runs Node's asynchronous module loader before any of our code: a bare
// `node empty.mjs` costs about 5 ms more CPU than `node empty.cjs` on the 2-core machine, and a task
// file taken with require() (Node 20.19 and later load ES modules that way) does not bring it back.
// Node built-ins and packages stay outside the bundle. The YAML parser, which a child loads only
// when a try's options need it, is bundled into a file of its own beside it,
// dist/pool/runtime/yaml.cjs: loading the package costs a child about 45 ms of CPU, the one file
// about 12 ms.
// Beside the bundle goes child-runtime.inputs.json: a hash of every module it was made from. The
// launcher runs the bundle only while those modules still hash the same (src/pool/runtime-entry.ts),
// so a `tsc` run without this step cannot leave children on stale code; file times would not do,
// since an installer writes the package's files in an order of its own.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const runtimeDir = path.join(root, 'dist', 'pool', 'runtime');
const require = createRequire(import.meta.url);
const yamlPackage = require('yaml/package.json');
await build({
  entryPoints: [require.resolve('yaml')],
  outfile: path.join(runtimeDir, 'yaml.cjs'),
  bundle: true,
  minify: true,
  banner: {
    js: `/* yaml ${yamlPackage.version} (${yamlPackage.license}), bundled from the yaml dependency, whose LICENSE applies. */`,
  },
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
});

/**
 * shared/builtins.ts takes Node's built-ins without an ES import, and on a Node 20 older than 20.16
 * falls back to importing them with a top-level await, which CommonJS cannot hold. In CommonJS a
 * `require` of a built-in is what that file works around anyway (no ES facade is built), so the
 * bundle gets this instead.
 */
const commonJsBuiltins = {
  name: 'commonjs-builtins',
  setup(builder) {
    builder.onResolve({ filter: /[\\/]shared[\\/]builtins\.js$/ }, (args) => ({
      path: path.join(args.resolveDir, args.path),
      namespace: 'commonjs-builtins',
    }));
    builder.onLoad({ filter: /.*/, namespace: 'commonjs-builtins' }, () => ({
      loader: 'js',
      contents: [
        "export const fs = require('node:fs');",
        "export function nodeModule() { return require('node:module'); }",
        "export function childProcessExports() { return require('node:child_process'); }",
      ].join('\n'),
    }));
  },
};

const runtime = await build({
  entryPoints: [path.join(runtimeDir, 'child-entry.js')],
  outfile: path.join(runtimeDir, 'child-runtime.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  plugins: [commonJsBuiltins],
  // The modules' `import.meta.url` is the bundle's own address in CommonJS. The banner comes before
  // esbuild's own "use strict", so it says it first: the modules were written as strict code.
  banner: { js: "'use strict';\nconst __cwRuntimeUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: {
    'import.meta.url': '__cwRuntimeUrl',
    // options.ts loads the parser from here (relative to the bundle) instead of the package.
    CW_TASK_RUNNER_YAML_BUNDLE: JSON.stringify('./yaml.cjs'),
  },
  sourcemap: 'linked',
  metafile: true,
  absWorkingDir: root,
  logLevel: 'warning',
});

// The modules the bundle holds, by path relative to the bundle's folder (the plugin's stand-in for
// builtins.js lives in a namespace of its own and is no file).
const inputs = {};
for (const input of Object.keys(runtime.metafile.inputs).sort()) {
  if (input.includes(':')) continue;
  const file = path.join(root, input);
  inputs[path.relative(runtimeDir, file).split(path.sep).join('/')] = createHash('sha256')
    .update(readFileSync(file))
    .digest('hex');
}
writeFileSync(
  path.join(runtimeDir, 'child-runtime.inputs.json'),
  `${JSON.stringify({ bundle: 'child-runtime.cjs', inputs }, null, 2)}\n`,
);
