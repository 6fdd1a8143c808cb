import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const modules = fileURLToPath(new URL('./runtime/child-entry.js', import.meta.url));
const bundled = fileURLToPath(new URL('./runtime/child-runtime.cjs', import.meta.url));
/** Written by the build beside the bundle: a hash of each module the bundle was made from. */
const inputsFile = new URL('./runtime/child-runtime.inputs.json', import.meta.url);

/** The recorded hashes, by path relative to the runtime folder; null when missing or malformed. */
function recordedInputs(): Record<string, string> | null {
  try {
    const { inputs } = JSON.parse(readFileSync(inputsFile, 'utf8')) as { inputs?: unknown };
    if (typeof inputs !== 'object' || inputs === null || Object.keys(inputs).length === 0) return null;
    if (!Object.values(inputs).every((hash) => typeof hash === 'string')) return null;
    return inputs as Record<string, string>;
  } catch {
    return null;
  }
}

/** True when the bundle exists and every module it was made from still hashes as recorded. */
function bundleIsCurrent(): boolean {
  const inputs = recordedInputs();
  if (inputs === null) return false;
  try {
    if (!statSync(bundled).isFile()) return false;
    return Object.entries(inputs).every(
      ([file, hash]) =>
        createHash('sha256')
          .update(readFileSync(new URL(file, inputsFile)))
          .digest('hex') === hash,
    );
  } catch {
    return false;
  }
}

/**
 * The script a child process runs: the build's one-file bundle of the child runtime (faster to
 * boot than a dozen modules), or the runtime's modules as tsc wrote them when
 * there is no bundle, or when a module changed since the bundle was made (a `tsc` run without the
 * bundling step must not leave children on stale code). The check compares content, not file
 * times, which an installer does not keep in order; it reads the ~15 modules once per pool.
 */
export function childRuntimeEntry(): string {
  return bundleIsCurrent() ? bundled : modules;
}
