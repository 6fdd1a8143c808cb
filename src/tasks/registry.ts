import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { TaskRunnerError, UnknownTaskError } from '../errors.js';

/**
 * Maps task names to files in the tasks directory, by listing it (task code is never imported
 * in the launcher: a task's top-level code runs only in its child). `Report.js` is `Report`,
 * `Mail/Send.mjs` is `Mail::Send`. A name from the database is looked up in this map by exact
 * match and never used as a path or a module specifier.
 */
const segmentPattern = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const jsExtensions = ['.js', '.mjs', '.cjs'];
const tsExtensions = ['.ts', '.mts', '.cts'];

/** Node arguments that make `.ts` files loadable: a loader's `--import`/`--require`, or Node's own type stripping. */
const loaderArgument = /tsx|ts-node|strip-types|transform-types/;

/** True when this process runs under a TypeScript loader, so `.ts` task files can be imported. */
export function typeScriptLoaderActive(): boolean {
  const features = process.features as { typescript?: unknown };
  if (features.typescript) return true;
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return args.some((arg) => loaderArgument.test(arg));
}

/**
 * Why the `.ts` files of `scan` will not load in the children that run their tries, or null
 * when they will (or there are none): the launcher lists them because it has a loader, but a
 * loader given only in NODE_OPTIONS, which children do not get unless it is allowlisted, or
 * left out of an explicit `childExecArgv`, is not theirs. Said once at start, not per try.
 */
export function typeScriptChildrenProblem(
  scan: TaskRegistryScan,
  childExecArgv: readonly string[],
  childEnv: Readonly<Record<string, string>>,
): string | null {
  const typed = [...scan.files.values()].filter((file) => tsExtensions.some((ext) => file.endsWith(ext)));
  if (typed.length === 0) return null;
  // A Node that strips types with no flag at all does so in its children too.
  const byDefault =
    Boolean((process.features as { typescript?: unknown }).typescript) &&
    !process.execArgv.some((arg) => loaderArgument.test(arg));
  if (
    byDefault ||
    childExecArgv.some((arg) => loaderArgument.test(arg)) ||
    loaderArgument.test(childEnv.NODE_OPTIONS ?? '')
  )
    return null;
  return (
    `${typed.length} TypeScript task file(s), ${typed[0]} first, will fail to load in the children that run their tries: ` +
    "their Node arguments (childExecArgv) carry no TypeScript loader. Give the loader in the launcher's own Node arguments " +
    '(node --import tsx ..., tsx ...), which children get by default, rather than in NODE_OPTIONS; or set childExecArgv'
  );
}

export interface TaskRegistryScan {
  /** name → absolute file path */
  readonly files: ReadonlyMap<string, string>;
  /** Files skipped because another file already gave the same name. */
  readonly duplicates: readonly string[];
}

export async function scanTasksDir(
  dir: string,
  includeTypeScript = typeScriptLoaderActive(),
): Promise<TaskRegistryScan> {
  const extensions = includeTypeScript ? [...jsExtensions, ...tsExtensions] : jsExtensions;
  const files = new Map<string, string>();
  const duplicates: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (error) {
    throw new TaskRunnerError('TASK_INVALID', `cannot read tasks directory ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const candidates = entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name))
    .sort();
  for (const file of candidates) {
    const base = path.basename(file);
    if (base.endsWith('.d.ts') || base.endsWith('.d.mts') || /\.(test|spec)\./.test(base)) continue;
    const extension = extensions.find((ext) => base.endsWith(ext));
    if (extension === undefined) continue;
    const relative = path.relative(dir, file).slice(0, -extension.length);
    const segments = relative.split(path.sep);
    if (!segments.every((segment) => segmentPattern.test(segment))) continue;
    const name = segments.join('::');
    if (files.has(name)) {
      duplicates.push(file);
      continue;
    }
    files.set(name, file);
  }
  return { files, duplicates };
}

/** The tasks directory's names, rescanned on a miss so tasks deployed later are found. */
export class TaskRegistry {
  readonly #dir: string;
  #scan: TaskRegistryScan | null = null;

  constructor(dir: string) {
    this.#dir = dir;
  }

  get dir(): string {
    return this.#dir;
  }

  async refresh(): Promise<TaskRegistryScan> {
    this.#scan = await scanTasksDir(this.#dir);
    return this.#scan;
  }

  /** The file providing `name` as last scanned, with no I/O; undefined when unknown (then `resolve`). */
  lookup(name: string): string | undefined {
    return this.#scan?.files.get(name);
  }

  /** The file providing `name`; throws UnknownTaskError listing the known names. */
  async resolve(name: string): Promise<string> {
    const scan = this.#scan ?? (await this.refresh());
    const hit = scan.files.get(name);
    if (hit !== undefined) return hit;
    const fresh = await this.refresh();
    const file = fresh.files.get(name);
    if (file === undefined) throw new UnknownTaskError(name, [...fresh.files.keys()]);
    return file;
  }

  async names(): Promise<string[]> {
    const scan = this.#scan ?? (await this.refresh());
    return [...scan.files.keys()];
  }
}
