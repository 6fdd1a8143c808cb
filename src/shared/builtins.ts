/**
 * Node's built-in modules for code that runs in every child process (the child runtime and what
 * it loads), taken with `process.getBuiltinModule` (Node 20.16 and later) rather than imported.
 *
 * An ES `import` of a built-in builds its ES facade by reading every export, which runs the
 * module's lazy getters: for `node:fs` that loads the streams, 18 more internal modules, a cost
 * of every child's start that `getBuiltinModule` avoids almost entirely. Older Node 20 releases
 * import them at load.
 */
type Fs = typeof import('node:fs');
type NodeModule = typeof import('node:module');

const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.bind(process);
const imported =
  getBuiltin === undefined
    ? { fs: await import('node:fs'), module: (await import('node:module')) as unknown as NodeModule }
    : null;

export const fs: Fs = imported === null ? (getBuiltin!('node:fs') as Fs) : imported.fs;

/** `node:module`, loaded on first use (it brings the source-map support with it). */
export function nodeModule(): NodeModule {
  return imported === null ? (getBuiltin!('node:module') as NodeModule) : imported.module;
}

/** `node:child_process` as CommonJS sees it: its functions can be wrapped (see descendants.ts). */
export function childProcessExports(): Record<string, unknown> {
  return (getBuiltin?.('node:child_process') ??
    nodeModule().createRequire(import.meta.url)('node:child_process')) as Record<string, unknown>;
}
