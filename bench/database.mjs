// Where the bench runs: BENCH_DATABASE_URL or DATABASE_URL, else a throwaway embedded PostgreSQL
// (the package's own helper, so it also starts as root in a mode-700 home).
import { startThrowawayPostgres } from '../dist/embedded/throwaway-server.js';

export async function openBenchDatabase() {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (url) return { url, server: 'configured', close: async () => {} };
  // PostgreSQL's own defaults (durable commits), as a real deployment would run.
  const server = await startThrowawayPostgres({ settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', max_connections: 100 } });
  return { url: server.url(), server: 'embedded', close: () => server.stop() };
}
