import pg from 'pg';

/**
 * The chaos ledger, written from inside task processes: one row per start and per finish of a
 * try, in `chaos_ledger` at `CHAOS_LEDGER_URL`. One connection per process, kept across tries (a
 * reused child pays for it once). A write that fails because the server restarted or the session
 * was terminated is retried on a new connection for up to `CHAOS_LEDGER_RETRY_MS` (default 60 s),
 * so a database outage does not turn a try that ran into one that left no trace.
 */
let client = null;

async function connect() {
  const fresh = new pg.Client({ connectionString: process.env.CHAOS_LEDGER_URL, application_name: 'chaos-ledger' });
  // A terminated session emits 'error' on an idle client: forget it, the next write reconnects.
  fresh.on('error', () => {
    if (client === fresh) client = null;
  });
  await fresh.connect();
  return fresh;
}

export async function record(task, event) {
  const deadline = Date.now() + Number(process.env.CHAOS_LEDGER_RETRY_MS ?? 60_000);
  for (;;) {
    try {
      client ??= await connect();
      await client.query('INSERT INTO chaos_ledger (request_id, try, host, pid, event) VALUES ($1, $2, $3, $4, $5)', [
        task.id,
        task.request.tries,
        process.env.CHAOS_HOST ?? '?',
        process.pid,
        event,
      ]);
      return;
    } catch (error) {
      const dead = client;
      client = null;
      dead?.end().catch(() => undefined);
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
