// Turns a bench report into figures beside their limits (`figures`) and Markdown tables. How to
// read a ratio: for a rate it is figure ÷ limit (1.0 means the runner adds nothing to the raw
// cost; it cannot exceed 1 by much); for a latency it is figure ÷ floor (1.0 is the floor, higher
// is worse).
import { forksPerTask } from './plan.mjs';

const mb = (bytes) =>
  bytes === null || bytes === undefined || !Number.isFinite(bytes) ? '—' : `${(bytes / 1048576).toFixed(0)} MB`;
const rate = (n) => (Number.isFinite(n) ? `${Math.round(n).toLocaleString('en-US')}/s` : '—');
const ms = (n) => (Number.isFinite(n) ? `${n.toFixed(n < 10 ? 2 : 1)} ms` : '—');
const ratio = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '—');
const num = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

/** The raw limit a mode's throughput at concurrency c is bounded by: the lower of its parts. */
export function throughputLimit(raw, mode, concurrency) {
  const parts = [];
  if (forksPerTask(mode)) {
    if (raw.forkPerSecond?.[concurrency] !== undefined)
      parts.push({ name: `bare fork c=${concurrency}`, value: raw.forkPerSecond[concurrency] });
  } else if (mode === 'reused') {
    const v = raw.childRoundTripPerSecond?.[concurrency];
    if (v !== undefined) parts.push({ name: `child round trip ×${concurrency}`, value: v });
  } else if (mode === 'thread' && raw.threadRoundTripPerSecond !== undefined) {
    parts.push({ name: 'thread round trip', value: raw.threadRoundTripPerSecond });
  }
  // The launcher claims up to its default prefetch in one statement.
  const batch = raw.prefetchByConcurrency?.[concurrency];
  const claim = raw.claimPerSecondByBatch?.[batch];
  if (!forksPerTask(mode) && claim !== undefined) parts.push({ name: `claim ${batch}/stmt`, value: claim });
  else if (!forksPerTask(mode) && raw.claimPerSecondBatch !== undefined)
    parts.push({ name: `claim ${raw.claimBatch}/stmt`, value: raw.claimPerSecondBatch });
  if (parts.length === 0) return null;
  return parts.reduce((low, part) => (part.value < low.value ? part : low));
}

/** The floor under pickup in a mode: NOTIFY plus a claim, and a child's boot where one is forked per task. */
export function pickupFloor(raw, mode) {
  if (raw.pickupMs === undefined) return null;
  const boot = mode === 'fresh' ? (raw.childBootMs?.p50 ?? 0) : 0;
  return {
    p50: raw.pickupMs.p50 + boot,
    p99: raw.pickupMs.p99 + boot,
    name: mode === 'fresh' ? 'NOTIFY + claim + child boot' : 'NOTIFY + claim',
  };
}

function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

/** A throughput row's name: its mode, and the launcher's Node flags when they are not `npm start`'s. */
export function throughputLabel(r) {
  const flags = r.variant === 'nodeDefaults' ? ` (node ${r.launcherFlags || 'without flags'})` : '';
  return `${r.mode} c=${r.concurrency}${flags}`;
}

function throughputRow(raw, r, label = throughputLabel(r)) {
  const limit = throughputLimit(raw, r.mode, r.concurrency);
  return [
    label + (r.capped ? ' (capped)' : ''),
    rate(r.tasksPerSecond),
    limit === null ? '—' : `${rate(limit.value)} ${limit.name}`,
    limit === null ? '—' : ratio(r.tasksPerSecond / limit.value),
    num(r.cpuUsPerTask, 0),
    num(r.statementsPerTask, 2),
    num(r.transactionsPerTask, 2),
    mb(r.launcherPeakRssBytes),
    mb(r.childPeakRssBytes),
  ];
}

export function renderTables(report) {
  const { raw } = report;
  const out = [];
  const m = report.machine;
  out.push(
    `${report.quick ? 'QUICK RUN (smoke test: these figures mean nothing)\n\n' : ''}` +
      `${m.cpus} CPUs (${m.cpuModel}), Node ${m.node}, PostgreSQL ${report.server.version}, load ${m.loadAverageAtStart.toFixed(2)} at start, ${report.at}\n`,
  );
  if (report.throughput.length > 0) {
    out.push('\n### Throughput of no-op tasks, one launcher\n\n');
    out.push(
      table(
        [
          'mode',
          'tasks/s',
          'limit',
          'ratio',
          'launcher CPU µs/task',
          'statements/task',
          'transactions/task',
          'launcher peak RSS',
          'child peak RSS',
        ],
        report.throughput.map((r) => throughputRow(raw, r)),
      ),
    );
  }
  const pickups = Object.entries(report.pickup);
  if (pickups.length > 0) {
    out.push('\n### Pickup latency, idle runner (INSERT commit to task start)\n\n');
    out.push(
      table(
        ['mode', 'p50', 'p90', 'p99', 'max', 'floor p50 / p99', 'ratio p50 / p99'],
        pickups.map(([mode, p]) => {
          const floor = pickupFloor(raw, mode);
          return [
            `${mode} c=${p.concurrency}, ${p.count}/${p.jobs} jobs`,
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max),
            floor === null ? '—' : `${ms(floor.p50)} / ${ms(floor.p99)} (${floor.name})`,
            floor === null ? '—' : `${ratio(p.p50 / floor.p50)} / ${ratio(p.p99 / floor.p99)}`,
          ];
        }),
      ),
    );
  }
  if (report.enqueue !== null) {
    const e = report.enqueue;
    const insert = raw.insert ?? {};
    out.push('\n### Enqueue\n\n');
    out.push(
      table(
        ['how', 'figure', 'limit (bare INSERT)', 'ratio'],
        [
          [
            'schedule(), one at a time',
            rate(e.singlePerSecond),
            rate(insert.singlePerSecond),
            ratio(e.singlePerSecond / insert.singlePerSecond),
          ],
          [
            `schedule(), ${e.parallel} at once`,
            rate(e.concurrentPerSecond),
            rate(insert.concurrentPerSecond),
            ratio(e.concurrentPerSecond / insert.concurrentPerSecond),
          ],
          [
            `scheduleMany(${e.bulkRows.toLocaleString('en-US')}), median`,
            ms(e.bulkMs),
            ms(insert.bulkMs),
            ratio(insert.bulkMs / e.bulkMs),
          ],
        ],
      ),
    );
  }
  if (report.launchers.length > 0) {
    const one = report.launchers.find((r) => r.launchers === 1);
    out.push('\n### Launchers on one database (separate processes), aggregate\n\n');
    out.push(
      table(
        [
          'launchers',
          'tasks/s',
          '× one launcher',
          'limit',
          'ratio',
          'launcher CPU µs/task',
          'statements/task',
          'transactions/task',
        ],
        report.launchers.map((r) => {
          const limit = raw.claimPerSecondBatch;
          return [
            `${r.launchers} × ${r.mode} c=${r.concurrency}${r.capped ? ' (capped)' : ''}`,
            rate(r.tasksPerSecond),
            one === undefined ? '—' : ratio(r.tasksPerSecond / one.tasksPerSecond),
            limit === undefined ? '—' : `${rate(limit)} claim ${raw.claimBatch}/stmt`,
            limit === undefined ? '—' : ratio(r.tasksPerSecond / limit),
            num(r.cpuUsPerTask, 0),
            num(r.statementsPerTask, 2),
            num(r.transactionsPerTask, 2),
          ];
        }),
      ),
    );
  }
  if (report.memory !== null) {
    const r = report.memory;
    const q = r.launcherRssQuartersBytes;
    out.push(
      `\n### Launcher memory through ${r.completed.toLocaleString('en-US')} ${r.mode} tasks (c=${r.concurrency})\n\n`,
    );
    out.push(
      table(
        ['peak RSS', 'RSS at each quarter', 'last ÷ first quarter', 'tasks/s'],
        [
          [
            mb(r.launcherPeakRssBytes),
            q.map(mb).join(', '),
            q.length > 1 ? ratio(q[q.length - 1] / q[0]) : '—',
            rate(r.tasksPerSecond),
          ],
        ],
      ),
    );
  }
  if (Object.keys(raw).length > 0) {
    out.push('\n### Raw limits\n\n');
    const rows = [];
    for (const [c, v] of Object.entries(raw.forkPerSecond ?? {}))
      rows.push([`bare fork + exit, c=${c}, child env`, rate(v)]);
    for (const [c, v] of Object.entries(raw.taskLoadForkPerSecond ?? {})) {
      const bare = raw.forkPerSecond?.[c];
      rows.push([
        `bare fork + require() of the no-op ES task module + exit, c=${c}`,
        `${rate(v)}${bare === undefined ? '' : ` (${ratio(v / bare)} the bare fork)`}`,
      ]);
    }
    if (raw.childBootMs)
      rows.push([
        'child runtime boot (fork to ready), p50 / p99',
        `${ms(raw.childBootMs.p50)} / ${ms(raw.childBootMs.p99)}`,
      ]);
    for (const [c, v] of Object.entries(raw.childRoundTripPerSecond ?? {}))
      rows.push([`bare child round trip on fd 3, ${c} children`, rate(v)]);
    if (raw.threadRoundTripPerSecond !== undefined)
      rows.push([`bare thread round trip, ${report.config.maxThreads} threads`, rate(raw.threadRoundTripPerSecond)]);
    if (raw.claimPerSecond1 !== undefined)
      rows.push(['store claim statement, 1 row per statement', rate(raw.claimPerSecond1)]);
    if (raw.claimPerSecondBatch !== undefined)
      rows.push([`store claim statement, ${raw.claimBatch} rows per statement`, rate(raw.claimPerSecondBatch)]);
    for (const [batch, v] of Object.entries(raw.claimPerSecondByBatch ?? {}))
      rows.push([`store claim statement, ${batch} rows per statement`, rate(v)]);
    if (raw.pickupMs)
      rows.push([
        'NOTIFY + one-row claim after commit, p50 / p99',
        `${ms(raw.pickupMs.p50)} / ${ms(raw.pickupMs.p99)}`,
      ]);
    if (raw.insert) {
      rows.push(['bare INSERT, one at a time', rate(raw.insert.singlePerSecond)]);
      rows.push(['bare INSERT, concurrent', rate(raw.insert.concurrentPerSecond)]);
      rows.push(['bare INSERT … generate_series, bulk', ms(raw.insert.bulkMs)]);
    }
    out.push(table(['limit', 'figure'], rows));
  }
  return out.join('');
}
