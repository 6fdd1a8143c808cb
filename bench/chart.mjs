// The chart of docs/performance.md, written by hand as SVG (no dependency): per throughput run
// a bar of tasks/s on a log scale with a tick at its raw limit, then pickup p50/p99 per mode beside their floor.
import { pickupFloor, throughputLabel, throughputLimit } from './report.mjs';

const width = 760;
const labelWidth = 150;
const plotWidth = width - labelWidth - 170;
const rowHeight = 22;

const escape = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function logScale(min, max) {
  const lo = Math.log10(min);
  const hi = Math.log10(max);
  return (v) => labelWidth + (Math.max(0, Math.log10(Math.max(v, min)) - lo) / (hi - lo)) * plotWidth;
}

function axis(y, min, max, unit, x) {
  const parts = [];
  for (let decade = Math.ceil(Math.log10(min)); 10 ** decade <= max; decade++) {
    const at = x(10 ** decade);
    parts.push(`<line x1="${at}" y1="${y}" x2="${at}" y2="${y + 4}" stroke="#555"/>`);
    parts.push(
      `<text x="${at}" y="${y + 16}" text-anchor="middle" class="small">${(10 ** decade).toLocaleString('en-US')}${unit}</text>`,
    );
  }
  parts.push(`<line x1="${labelWidth}" y1="${y}" x2="${labelWidth + plotWidth}" y2="${y}" stroke="#555"/>`);
  return parts.join('');
}

function panel(title, rows, unit, top) {
  // rows: { label, bars: [{ value, color, text }], limit, limitText }
  const values = rows
    .flatMap((r) => [...r.bars.map((b) => b.value), r.limit ?? null])
    .filter((v) => Number.isFinite(v) && v > 0);
  if (values.length === 0) return { svg: '', height: 0 };
  const min = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const max = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const x = logScale(min, max);
  const parts = [`<text x="8" y="${top + 16}" class="title">${escape(title)}</text>`];
  let y = top + 28;
  for (const row of rows) {
    const barHeight = (rowHeight - 6) / row.bars.length;
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + rowHeight / 2 + 1}" text-anchor="end" class="label">${escape(row.label)}</text>`,
    );
    row.bars.forEach((bar, i) => {
      if (!Number.isFinite(bar.value) || bar.value <= 0) return;
      const by = y + 3 + i * barHeight;
      parts.push(
        `<rect x="${labelWidth}" y="${by}" width="${Math.max(1, x(bar.value) - labelWidth)}" height="${barHeight - 1}" fill="${bar.color}"/>`,
      );
    });
    if (Number.isFinite(row.limit) && row.limit > 0) {
      const lx = x(row.limit);
      parts.push(
        `<line x1="${lx}" y1="${y + 1}" x2="${lx}" y2="${y + rowHeight - 1}" stroke="#000" stroke-width="2"/>`,
      );
    }
    parts.push(
      `<text x="${labelWidth + plotWidth + 6}" y="${y + rowHeight / 2 + 1}" class="small">${escape(row.text)}</text>`,
    );
    y += rowHeight;
  }
  parts.push(axis(y + 2, min, max, unit, x));
  return { svg: parts.join('\n'), height: y + 26 - top };
}

const fmtRate = (n) => `${Math.round(n).toLocaleString('en-US')}/s`;

export function renderChart(report) {
  const colors = { reused: '#2f6db5', thread: '#2a9d5c', fresh: '#c8553d', spare: '#e0a030' };
  const throughputRows = [
    ...report.throughput.map((r) => ({ r, label: throughputLabel(r), shared: false })),
    ...report.launchers.map((r) => ({
      r,
      label: `${r.launchers} launcher${r.launchers > 1 ? 's' : ''}, ${r.mode} c=${r.concurrency}`,
      shared: true,
    })),
  ].map(({ r, label, shared }) => {
    // Launchers side by side share the database: their limit is the claim statement's rate.
    const limit = shared ? report.raw.claimPerSecondBatch : throughputLimit(report.raw, r.mode, r.concurrency)?.value;
    return {
      label,
      bars: [{ value: r.tasksPerSecond, color: colors[r.mode] ?? '#777' }],
      limit,
      text: `${fmtRate(r.tasksPerSecond)}${Number.isFinite(limit) ? ` · ${(r.tasksPerSecond / limit).toFixed(2)}× limit` : ''}`,
    };
  });
  const pickupRows = Object.entries(report.pickup).map(([mode, p]) => {
    const floor = pickupFloor(report.raw, mode);
    return {
      label: `${mode} pickup`,
      bars: [
        { value: p.p50, color: colors[mode] ?? '#777' },
        { value: p.p99, color: '#999' },
      ],
      limit: floor?.p50,
      text: `p50 ${p.p50.toFixed(1)} ms · p99 ${p.p99.toFixed(1)} ms`,
    };
  });
  const first = panel('No-op tasks per second (log scale; black tick: the raw limit)', throughputRows, '/s', 0);
  const second = panel(
    'Pickup latency, idle runner (log scale; upper bar p50, lower p99; tick: floor p50)',
    pickupRows,
    ' ms',
    first.height + 10,
  );
  const height = first.height + second.height + 40;
  const m = report.machine;
  const footer = `${m.cpus} CPUs, Node ${m.node}, PostgreSQL ${report.server.version}, ${report.at.slice(0, 10)}${report.quick ? ' (quick smoke run)' : ''}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<style>.title{font-size:13px;font-weight:bold}.label{font-size:12px}.small{font-size:11px;fill:#333}</style>
<rect width="100%" height="100%" fill="#fff"/>
${first.svg}
${second.svg}
<text x="8" y="${height - 10}" class="small">${escape(footer)}</text>
</svg>
`;
}
