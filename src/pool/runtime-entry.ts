import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const modules = fileURLToPath(new URL('./runtime/child-entry.js', import.meta.url));
const bundled = fileURLToPath(new URL('./runtime/child-runtime.cjs', import.meta.url));

function modifiedMs(file: string): number | null {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * The script a child process runs: the build's one-file bundle of the child runtime (faster to
 * boot), or the runtime's modules as tsc wrote them when there is no bundle, or when it is older
 * than them (a `tsc` run without the bundling step must not leave children on stale code).
 */
export function childRuntimeEntry(): string {
  const bundle = modifiedMs(bundled);
  const entry = modifiedMs(modules);
  return bundle !== null && (entry === null || bundle >= entry) ? bundled : modules;
}
