import type { TableName } from '../config/identifiers.js';
import { derivedName } from './derived-name.js';

/**
 * The launchers table of a request table: `<table>_launchers`, one row per running launcher,
 * written at its start, heart-beaten with its lease renewal and deleted at its stop. It is what
 * "launchers alive" reads (the dashboard, `status`): a launcher with no running row still shows.
 * A launcher that died leaves its row; readers judge it by `heartbeat_at`. Its DDL, and that of
 * the indexes the inspection queries need, is in schema-ddl.ts (`createOpsSupport`).
 */
export function launchersTableFor(table: TableName): TableName {
  const name = derivedName(table, 'launchers');
  return { schema: table.schema, table: name, qualified: table.schema === null ? name : `${table.schema}.${name}` };
}
