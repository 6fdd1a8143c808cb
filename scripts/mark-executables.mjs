// Part of the build (after tsc): the files run as commands (package.json's `bin`, and
// dist/launcher.js, which starts with a shebang) made executable. tsc writes them mode 644, and a
// command linked before a rebuild (npx's cache of this project, say) runs the file itself.
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const { bin } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const commands = [...Object.values(typeof bin === 'string' ? { bin } : (bin ?? {})), 'dist/launcher.js'];
for (const file of new Set(commands)) await chmod(path.join(root, file), 0o755);
