import { createHash } from 'node:crypto';
import type { TableName } from '../config/identifiers.js';

/**
 * A name derived from the request table's (index, trigger, function, the attempts table) that
 * stays within PostgreSQL's 63 bytes: a long table name is cut and a hash of the qualified name
 * keeps two long names that share a prefix apart.
 */
export function derivedName(table: TableName, suffix: string): string {
  const name = `${table.table}_${suffix}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha1').update(table.qualified).digest('hex').slice(0, 8);
  return `${table.table.slice(0, 63 - suffix.length - 10)}_${hash}_${suffix}`;
}
