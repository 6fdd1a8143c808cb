/**
 * Everything the commands need that loads a database driver or the runner. Commands import it
 * on demand (`loadRuntime()`), so `--help` and usage errors answer without loading Kysely and pg
 * (about a second on a slow disk).
 */
export { createClient } from '../client/create-client.js';
export { createRunner } from '../launcher/runner.js';
export { requestControl } from '../standalone/control-client.js';
export {
  describeDatabaseError,
  openCommandDb,
  openCommandPool,
  openDatabaseSource,
} from '../standalone/database-source.js';
export { startStandaloneLauncher } from '../standalone/standalone-launcher.js';
export { migrate } from '../store/migrations.js';
export { TaskRegistry } from '../tasks/registry.js';
export { parseOptions } from '../tasks/options.js';
export { Inspector } from '../store/inspector.js';
export { startDashboard } from '../dashboard/dashboard-server.js';
export { parseTableName } from '../config/identifiers.js';
export { listRecurring, pruneTable } from '../launcher/lifecycle-commands.js';
