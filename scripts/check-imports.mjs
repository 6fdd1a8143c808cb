// The layers of src/ (ARCHITECTURE.md, "Modules"), checked: every relative import or export of a
// file under src/ names a room its own room may import. Run `node scripts/check-imports.mjs
// [srcDir]`; it prints each import that points the wrong way and exits 1 when there is one.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Which rooms each room may import, beside itself. A room is a folder under src/ (pool/runtime is
 * one of its own) or a file at its top. The order is the import chain, from the bottom up.
 */
export const rooms = {
  errors: [],
  shared: ['errors'],
  config: ['errors', 'shared'],
  tasks: ['errors', 'shared', 'config'],
  store: ['errors', 'shared', 'config'],
  // The child runtime loads no database code: not store, not the launcher's rooms.
  'pool/runtime': ['errors', 'shared', 'tasks', 'pool'],
  pool: ['errors', 'shared', 'config'],
  embedded: ['errors', 'shared'],
  client: ['errors', 'shared', 'config', 'tasks', 'store'],
  launcher: ['errors', 'shared', 'config', 'tasks', 'store', 'pool', 'client'],
  dashboard: ['errors', 'shared', 'config', 'store', 'launcher'],
  metrics: ['errors', 'shared', 'store', 'launcher'],
  standalone: ['errors', 'shared', 'config', 'store', 'pool', 'embedded', 'launcher', 'dashboard', 'metrics'],
  cli: ['errors', 'shared', 'config', 'tasks', 'store', 'client', 'launcher', 'dashboard', 'standalone'],
  // Entry files: the package's exports, and the standalone launcher's command.
  'index.ts': ['errors', 'shared', 'config', 'tasks', 'store', 'client', 'launcher', 'dashboard', 'metrics'],
  'launcher.ts': ['cli'],
};

function roomOf(src, file) {
  const parts = path.relative(src, file.replace(/\.js$/, '.ts')).split(path.sep);
  if (parts.length === 1) return parts[0] === 'errors.ts' ? 'errors' : parts[0];
  if (parts[0] === 'pool' && parts[1] === 'runtime' && parts.length > 2) return 'pool/runtime';
  return parts[0];
}

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Relative specifiers of `import … from`, `export … from` and `import('…')` in a file's text. */
function importsOf(text) {
  const found = [];
  for (const match of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']*)'/gm)) found.push(match[1]);
  for (const match of text.matchAll(/^\s*import\s+'(\.[^']*)'/gm)) found.push(match[1]);
  for (const match of text.matchAll(/\bimport\(\s*'(\.[^']*)'\s*\)/g)) found.push(match[1]);
  return found;
}

/** Every import of a file under `src` that its room may not make, as a line to print. */
export function wrongImports(src) {
  const wrong = [];
  for (const file of sourceFiles(src)) {
    const from = roomOf(src, file);
    const allowed = rooms[from];
    if (allowed === undefined) {
      wrong.push(`${path.relative(src, file)}: room ${from} is not in scripts/check-imports.mjs`);
      continue;
    }
    for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
      const to = roomOf(src, path.resolve(path.dirname(file), specifier));
      if (to === from || allowed.includes(to)) continue;
      wrong.push(`${path.relative(src, file)} (${from}) imports ${specifier} (${to})`);
    }
  }
  return wrong;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const src = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const wrong = wrongImports(path.resolve(src));
  for (const line of wrong) console.error(line);
  if (wrong.length > 0) {
    console.error(`${wrong.length} import(s) against the layers of ARCHITECTURE.md`);
    process.exit(1);
  }
  console.log(`imports follow the layers (${Object.keys(rooms).length} rooms)`);
}
