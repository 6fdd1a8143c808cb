import { fileURLToPath } from 'node:url';

/** The sample tasks shipped in the package (`dist/tasks/samples`): the launcher's tasks when none are configured. */
export function bundledTasksDir(): string {
  return fileURLToPath(new URL('../tasks/samples', import.meta.url));
}
