// Part of the build (after tsc): the child runtime as one ES module, dist/pool/runtime/child-runtime.mjs.
// A fresh child loads one file instead of a dozen, which takes about 5 ms of CPU off every child (the
// ESM loader resolves, reads and links each module on its own). Node built-ins and packages stay
// imports. The YAML parser, which a child loads only when a try's options need it, is bundled into
// a file of its own beside it, dist/pool/runtime/yaml.cjs: loading the package costs a child about
// 45 ms of CPU, the one file about 12 ms.
import { build } from 'esbuild';
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
  banner: { js: `/* yaml ${yamlPackage.version} (${yamlPackage.license}), bundled from the yaml dependency, whose LICENSE applies. */` },
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
});
await build({
  entryPoints: [path.join(runtimeDir, 'child-entry.js')],
  outfile: path.join(runtimeDir, 'child-runtime.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  // options.ts loads the parser from here (relative to the bundle) instead of the package.
  define: { CW_TASK_RUNNER_YAML_BUNDLE: JSON.stringify('./yaml.cjs') },
  sourcemap: 'linked',
  logLevel: 'warning',
});
