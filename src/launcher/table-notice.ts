import type { TableName } from '../config/identifiers.js';
import type { RetentionConfig } from '../config/retention-config.js';
import type { Logger } from '../shared/logger.js';
import type { SqlDb } from '../store/database.js';
import type { MigrateResult } from '../store/migrations.js';
import { readTableOrigin, shiftedTimeZone } from '../store/table-adoption.js';

/**
 * What a launcher says at start about its request table, so that a team pointing it at a table
 * of its application's sees what the runner changed on it and what it will and will not do.
 */

/** One line for what `migrate` changed (none when it changed nothing). */
export function logMigration(logger: Logger, table: string, result: MigrateResult): void {
  if (result.created) {
    logger.info('created the request table', { table });
    return;
  }
  const changed = [
    ...result.addedColumns.map((column) => `column ${column}`),
    ...result.addedTables.map((name) => `table ${name}`),
    ...result.addedDefaults.map((column) => `default now() (UTC) on ${column}, which had none`),
    ...result.addedTriggers.map((name) => `trigger ${name} (keeps updated_at current)`),
  ];
  if (changed.length === 0) return;
  logger.info(result.origin === 'adopted' ? 'upgraded the adopted request table' : 'upgraded the request table', {
    table,
    origin: result.origin,
    added: changed.join('; '),
  });
}

export interface TableNoticeParams {
  db: SqlDb;
  table: TableName;
  retention: RetentionConfig | null;
  /** True when the runner opened the pool itself (its sessions are set to UTC). */
  ownSessions: boolean;
  logger: Logger;
}

/**
 * Whose table it is and what retention does with it; and, on a pool or Kysely of the caller's
 * own, a session time zone that would shift the table's timestamps without a time zone.
 */
export async function announceTable(params: TableNoticeParams): Promise<void> {
  const { db, table, retention, logger } = params;
  const origin = (await readTableOrigin(db, table)) ?? 'adopted';
  if (origin === 'adopted') {
    const pruning =
      retention === null
        ? 'retention is off (retention: false)'
        : retention.pruneAdopted
          ? 'retention prunes it (retention.pruneAdopted is true)'
          : 'retention deletes none of its rows (set retention.pruneAdopted: true to prune it)';
    logger.info(`the request table was adopted (the runner did not create it): ${pruning}`, { table: table.qualified });
  }
  if (params.ownSessions) return;
  const shifted = await shiftedTimeZone(db, table);
  if (shifted !== null) {
    logger.warn(
      `the session time zone is ${shifted.timeZone}, not UTC: columns without a time zone (${shifted.columns.join(', ')}) are read ` +
        'and compared in it, so times Rails wrote in UTC are shifted. Give the pool UTC sessions ' +
        "(pg: options: '-c TimeZone=UTC'), or pass a connection string and the runner opens its own",
      { table: table.qualified, timeZone: shifted.timeZone },
    );
  }
}
