/**
 * Once per test run: find a PostgreSQL server (TEST_DATABASE_URL, or an embedded one started
 * here in a fresh temp directory), create a template database migrated by the BUILT package, and
 * hand its name and the admin URL to test files, which clone it (see helpers/db.ts). Teardown
 * drops every database this run created and stops the embedded server.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startThrowawayPostgres } from '../dist/embedded/throwaway-server.js';
import { migrate } from '../dist/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A URL with the right to create and drop databases. */
    adminUrl: string;
    /** The migrated template each test database is cloned from. */
    templateDb: string;
    /** Prefix of every database this run creates, so teardown can find leftovers. */
    dbPrefix: string;
  }
}

interface Server {
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * The package's own throwaway server: it copes with root in a mode-700 home (it runs as
 * `postgres` from binaries and a directory that user can reach) and sets durability off.
 */
async function startEmbedded(): Promise<Server> {
  const server = await startThrowawayPostgres();
  return { adminUrl: server.url(), stop: () => server.stop() };
}

/** Drops the databases whose name `matches`, clearing the template flag first where set. */
async function dropDatabases(adminUrl: string, matches: (name: string) => boolean): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database');
    for (const { datname } of rows.filter((row) => matches(row.datname))) {
      await client.query('UPDATE pg_database SET datistemplate = false WHERE datname = $1', [datname]);
      await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.TEST_DATABASE_URL;
  const server: Server =
    external !== undefined && external !== ''
      ? { adminUrl: external, stop: async () => undefined }
      : await startEmbedded();
  // Unique per run and per project (each project runs this setup), lower-case for SQL.
  const tag = `${process.pid}_${project.name.toLowerCase().replace(/[^a-z0-9]/g, '') || 'default'}`;
  const dbPrefix = `cwtr_${tag}_`;
  const templateDb = `cwtr_tpl_${tag}`;
  const ours = (name: string): boolean => name === templateDb || name.startsWith(dbPrefix);
  try {
    // Leftovers of an earlier run that died with this pid.
    await dropDatabases(server.adminUrl, ours);
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(templateDb)}`);
    await admin.end();

    const templateUrl = new URL(server.adminUrl);
    templateUrl.pathname = `/${templateDb}`;
    const pool = new pg.Pool({ connectionString: templateUrl.href, max: 1 });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    await migrate(db);
    // No session may stay connected to a template while it is cloned.
    await db.destroy();
  } catch (error) {
    await server.stop();
    throw error;
  }
  project.provide('adminUrl', server.adminUrl);
  project.provide('templateDb', templateDb);
  project.provide('dbPrefix', dbPrefix);

  return async () => {
    try {
      await dropDatabases(server.adminUrl, ours);
    } finally {
      await server.stop();
    }
  };
}
