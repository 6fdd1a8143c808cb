import type { StandaloneConfig } from '../config/config-file.js';
import type { Logger } from '../shared/logger.js';
import type { Inspector } from '../store/inspector.js';
import { loadRuntime, withDatabase } from './command.js';

/** Runs `body` with an inspector of the configured table (see `withDatabase`), closing it after. */
export function withInspector<T>(
  config: StandaloneConfig,
  logger: Logger,
  body: (inspector: Inspector) => Promise<T>,
): Promise<T> {
  return withDatabase(config, logger, async (url) => {
    const { Inspector: InspectorClass, openCommandDb, parseTableName } = await loadRuntime();
    const db = openCommandDb(url);
    try {
      return await body(new InspectorClass({ db, table: parseTableName(config.tableName) }));
    } finally {
      await db.destroy();
    }
  });
}

/** A duration in ms as a person reads it: 850 ms, 12.3 s, 4 min 5 s, 3 h 2 min, 2 d 4 h. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1000)} s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
  return `${Math.floor(ms / 86_400_000)} d ${Math.floor((ms % 86_400_000) / 3_600_000)} h`;
}
