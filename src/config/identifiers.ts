import { createHash } from 'node:crypto';
import { TaskRunnerError } from '../errors.js';

/**
 * Table names are SQL identifiers: lower-case letters, digits and underscores, optionally
 * schema-qualified (`jobs.task_runner_requests`), each part at most 63 bytes (PostgreSQL's limit).
 * Anything else is refused before it can reach a statement, and every statement still quotes it.
 */
const partPattern = /^[a-z_][a-z0-9_]{0,62}$/;

export interface TableName {
  readonly schema: string | null;
  readonly table: string;
  /** `schema.table` or `table`, as given. */
  readonly qualified: string;
}

export function parseTableName(name: unknown): TableName {
  if (typeof name !== 'string') {
    throw new TaskRunnerError('TABLE_NAME_INVALID', `table name must be a string, got ${typeof name}`);
  }
  const parts = name.split('.');
  if (parts.length > 2 || !parts.every((part) => partPattern.test(part))) {
    throw new TaskRunnerError(
      'TABLE_NAME_INVALID',
      `invalid table name ${JSON.stringify(name)}: use lower-case letters, digits and underscores ` +
        '(at most 63 each), optionally as schema.table',
    );
  }
  const [first, second] = parts as [string, string | undefined];
  return second === undefined
    ? { schema: null, table: first, qualified: first }
    : { schema: first, table: second, qualified: name };
}

/** The NOTIFY channel a table's insert trigger signals on. Derived, so also a valid identifier. */
export function channelFor(table: TableName): string {
  return `cw_task_runner_${table.qualified.replace('.', '__')}`.slice(0, 63);
}

/**
 * The NOTIFY channel on which `cancel` names a running request (payload: its id) so that its
 * launcher kills the try at once. Its prefix differs from `channelFor`'s, so it never equals any
 * table's wake-up channel; a name too long for 63 bytes is cut and given a hash of the table name,
 * so two long names sharing a prefix still get channels of their own.
 */
export function cancelChannelFor(table: TableName): string {
  const name = `cw_cancel_${table.qualified.replace('.', '__')}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha1').update(table.qualified).digest('hex').slice(0, 8);
  return `${name.slice(0, 54)}_${hash}`;
}
