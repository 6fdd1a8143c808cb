// The dashboard page. Every value from the server goes into the DOM through textContent or an
// attribute set by setAttribute: nothing is ever parsed as HTML, so a task name or a result that
// holds markup or a <script> shows as text. Routes live in the hash; the current view is
// re-read from the JSON API once a second.
'use strict';

const csrf = document.querySelector('meta[name="cw-csrf"]').getAttribute('content');
const view = document.getElementById('view');
const live = document.getElementById('live');
const notice = document.getElementById('notice');
const states = ['waiting', 'held', 'running', 'finished', 'failed', 'crashed', 'parked', 'cancelled'];
let readOnly = true;
let timer = null;
let generation = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'onclick' || key === 'onsubmit' || key === 'onchange') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function say(text, isError) {
  notice.textContent = text;
  notice.className = isError ? 'error' : '';
  notice.hidden = !text;
}

async function api(path, options) {
  const response = await fetch(path, {
    ...options,
    headers: { 'content-type': 'application/json', 'x-cw-csrf': csrf },
    credentials: 'same-origin',
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function age(iso, now) {
  if (!iso) return '-';
  const ms = Math.max(0, now - new Date(iso).getTime());
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1000)} s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
  return `${Math.floor(ms / 86_400_000)} d`;
}

// A table made by Rails allows a NULL task_class_name: such a row ends FAILED, no task to run.
function taskName(name) {
  return name === null ? '(no task)' : name;
}

function stateBadge(state) {
  return el('span', { class: `state ${state}`, 'data-state': state }, state);
}

function table(headers, rows, attrs) {
  return el(
    'table',
    attrs || {},
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows),
  );
}

async function act(path, question, after) {
  if (!window.confirm(question)) return;
  try {
    const result = await api(path, { method: 'POST', body: '{}' });
    say(after(result), false);
    refresh();
  } catch (error) {
    say(error.message, true);
  }
}

// ---- overview ----

function barChart(minutes) {
  const width = 480,
    height = 120,
    n = minutes.length || 1,
    w = width / n;
  const max = Math.max(1, ...minutes.map((m) => m.finished + m.failed + m.crashed + m.other));
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  chart.append(svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }));
  minutes.forEach((m, i) => {
    let y = height;
    for (const kind of ['finished', 'failed', 'crashed', 'other']) {
      const h = (m[kind] / max) * (height - 4);
      if (h <= 0) continue;
      y -= h;
      const rect = svg('rect', { x: i * w + 0.5, y, width: Math.max(1, w - 1), height: h, class: `bar-${kind}` });
      const title = svg('title', {});
      title.textContent = `${new Date(m.minute).toLocaleTimeString()}: ${m[kind]} ${kind}`;
      rect.append(title);
      chart.append(rect);
    }
  });
  return el(
    'div',
    { class: 'chart' },
    el('div', { class: 'title' }, `Tries ended per minute, last hour (max ${max})`),
    chart,
  );
}

function lineChart(minutes) {
  const width = 480,
    height = 120;
  const values = minutes.map((m) => m.pickupP50Ms);
  const max = Math.max(1, ...values.filter((v) => v !== null));
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  chart.append(svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }));
  const step = width / Math.max(1, values.length - 1);
  // A line through each run of minutes that have data (no line across a minute without any), and
  // a dot on every such minute: a minute alone, such as the first one after a start, is a dot.
  let run = [];
  const flush = () => {
    if (run.length > 1)
      chart.append(svg('polyline', { points: run.map(([x, y]) => `${x},${y}`).join(' '), class: 'line' }));
    run = [];
  };
  values.forEach((v, i) => {
    if (v === null) return flush();
    const x = Math.min(width - 3, Math.max(3, i * step)).toFixed(1),
      y = (height - 3 - (v / max) * (height - 8)).toFixed(1);
    run.push([x, y]);
    const dot = svg('circle', { cx: x, cy: y, r: 3, class: 'dot', 'data-minute': minutes[i].minute });
    const title = svg('title', {});
    title.textContent = `${new Date(minutes[i].minute).toLocaleTimeString()}: median pickup ${v} ms`;
    dot.append(title);
    chart.append(dot);
  });
  flush();
  return el(
    'div',
    { class: 'chart' },
    el('div', { class: 'title' }, `Pickup latency of first tries, median per minute (max ${max} ms)`),
    chart,
  );
}

async function overview(mine) {
  const data = await api('/api/overview');
  if (mine !== generation) return;
  readOnly = data.readOnly;
  document.getElementById('table-name').textContent = data.table;
  const now = new Date(data.now).getTime();
  const c = data.counts;
  const cards = [
    ['waiting', c.waiting],
    ['delayed', c.delayed],
    ['running', c.running],
    ['held', c.held],
    ['finished', c.finished],
    ['given up', c.givenUp],
    ['cancelled', c.cancelled],
    ['parked', c.parked],
  ].map(([k, n]) =>
    el('div', { class: 'card', 'data-count': k }, el('div', { class: 'n' }, n), el('div', { class: 'k' }, k)),
  );
  const oldest =
    data.open.oldestWaitingMs === null
      ? 'nothing waits'
      : `oldest waiting: ${age(new Date(now - data.open.oldestWaitingMs).toISOString(), now)}`;
  const depth = data.open.depth.map((d) =>
    el(
      'tr',
      {},
      el('td', {}, d.queue),
      el('td', {}, taskName(d.taskClassName)),
      el('td', { class: 'num' }, d.waiting),
      el('td', { class: 'num' }, d.delayed),
      el('td', { class: 'num' }, d.running),
      el('td', { class: 'num' }, d.held),
    ),
  );
  const launchers = data.launchers.map((l) =>
    el(
      'tr',
      {},
      el('td', {}, l.host),
      el('td', { class: 'num' }, l.pid),
      el('td', { class: 'num running' }, `${l.running} / ${l.concurrency}`),
      el('td', { class: 'num held' }, l.held),
      el('td', {}, l.queues ? l.queues.join(', ') : 'all'),
      el('td', {}, age(l.startedAt, now)),
      el('td', {}, `${(l.heartbeatAgeMs / 1000).toFixed(1)} s`),
    ),
  );
  view.replaceChildren(
    el('div', { class: 'cards' }, ...cards),
    el('p', { class: 'muted', id: 'oldest' }, oldest),
    el('div', { class: 'charts' }, barChart(data.minutes), lineChart(data.minutes)),
    el('h2', {}, 'Open requests by queue and task'),
    depth.length
      ? table(['queue', 'task', 'waiting', 'delayed', 'running', 'held'], depth)
      : el('p', { class: 'muted' }, 'none'),
    el('h2', {}, 'Launchers alive'),
    launchers.length
      ? table(['host', 'pid', 'running / concurrency', 'held', 'queues', 'up', 'last heartbeat'], launchers, {
          id: 'launchers',
        })
      : el('p', { class: 'muted' }, 'no launcher has heart-beaten lately'),
  );
}

// ---- requests ----

function parseQuery(text) {
  const params = new URLSearchParams(text);
  return {
    state: params.get('state') || '',
    task: params.get('task') || '',
    queue: params.get('queue') || '',
    text: params.get('text') || '',
    before: params.get('before') || '',
  };
}

function filterForm(filter) {
  const input = (name, label) => el('label', {}, label, el('input', { name, value: filter[name] }));
  const select = el(
    'select',
    { name: 'state' },
    el('option', { value: '' }, 'any'),
    ...states.map((s) => el('option', { value: s, selected: filter.state === s }, s)),
  );
  const form = el(
    'form',
    {
      class: 'filters',
      id: 'filters',
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const params = new URLSearchParams();
        for (const key of ['state', 'task', 'queue', 'text']) if (data.get(key)) params.set(key, String(data.get(key)));
        location.hash = `#/requests?${params}`;
      },
    },
    el('label', {}, 'state', select),
    input('task', 'task'),
    input('queue', 'queue'),
    input('text', 'text in result'),
    el('button', { type: 'submit' }, 'Filter'),
  );
  return form;
}

function requestsShell(filter) {
  const body = el('div', { id: 'requests' });
  const filtered = filter.state || filter.task || filter.queue || filter.text;
  const bulk =
    !readOnly && filtered
      ? el(
          'button',
          {
            id: 'retry-matching',
            onclick: () => {
              const payload = { state: filter.state, task: filter.task, queue: filter.queue, text: filter.text };
              if (!window.confirm('Retry every ended request that matches this filter?')) return;
              api('/api/retry-matching', { method: 'POST', body: JSON.stringify(payload) }).then(
                (r) => {
                  say(`${r.retried} request(s) made runnable again`, false);
                  refresh();
                },
                (e) => say(e.message, true),
              );
            },
          },
          'Retry all matching',
        )
      : null;
  view.replaceChildren(filterForm(filter), bulk ? el('div', { class: 'actions' }, bulk) : '', body);
}

async function requests(mine, filter) {
  const params = new URLSearchParams();
  for (const key of ['state', 'task', 'queue', 'text', 'before']) if (filter[key]) params.set(key, filter[key]);
  const page = await api(`/api/requests?${params}`);
  if (mine !== generation) return;
  const now = Date.now();
  const rows = page.requests.map((r) =>
    el(
      'tr',
      { 'data-id': r.id },
      el('td', { class: 'num' }, el('a', { href: `#/request/${r.id}` }, r.id)),
      el('td', { class: 'task' }, taskName(r.taskClassName)),
      el('td', {}, r.queue),
      el('td', {}, stateBadge(r.state)),
      el('td', { class: 'num' }, `${r.tries}/${r.tryLimit}`),
      el('td', {}, age(r.createdAt, now)),
      el('td', { class: 'preview' }, r.resultPreview ?? ''),
    ),
  );
  const next = new URLSearchParams(params);
  if (page.nextBefore) next.set('before', page.nextBefore);
  const pager = el(
    'div',
    { class: 'pager' },
    filter.before
      ? el(
          'a',
          {
            href: `#/requests?${(() => {
              const p = new URLSearchParams(params);
              p.delete('before');
              return p;
            })()}`,
          },
          '« newest',
        )
      : null,
    page.nextBefore ? el('a', { href: `#/requests?${next}`, id: 'older' }, 'older »') : null,
  );
  // A text search reads a window of ids per page (no index serves it): say how far it looked.
  if (page.searchedDownTo && page.nextBefore) {
    pager.prepend(el('span', { class: 'muted', id: 'searched' }, `text searched down to id ${page.searchedDownTo}; `));
  }
  document
    .getElementById('requests')
    .replaceChildren(
      rows.length
        ? table(['id', 'task', 'queue', 'state', 'tries', 'age', 'result'], rows, { id: 'request-list' })
        : el('p', { class: 'muted' }, 'no request matches'),
      pager,
    );
}

// ---- one request ----

async function request(mine, id) {
  let r;
  try {
    r = await api(`/api/requests/${encodeURIComponent(id)}`);
  } catch (error) {
    if (mine === generation) view.replaceChildren(el('p', {}, error.message));
    return;
  }
  if (mine !== generation) return;
  const iso = (v) => (v ? new Date(v).toISOString() : '-');
  const fields = [
    ['task', taskName(r.taskClassName)],
    ['state', stateBadge(r.state)],
    ['result', r.result ?? '-'],
    ['queue', r.queue],
    ['priority', r.priority],
    ['tries', `${r.tries} of ${r.tryLimit} (crashes ${r.crashes})`],
    ['created', iso(r.createdAt)],
    ['delay until', iso(r.delayUntil)],
    ['started', iso(r.startedAt)],
    ['completed', iso(r.completedAt)],
    ['pid / thread', r.pid === null ? '-' : `${r.pid}${r.threadId === null ? '' : ` thread ${r.threadId}`}`],
    ['host', r.host ?? '-'],
    ['launcher', r.launcherId ?? '-'],
    ['timeout', r.timeoutMs === null ? '-' : `${r.timeoutMs} ms`],
    ['cancel asked', iso(r.cancelRequestedAt)],
    ['traceparent', r.traceparent ?? '-'],
  ];
  // A held row is claimed by a launcher like a running one: cancel it, but neither retry nor delete it.
  const claimed = r.state === 'running' || r.state === 'held';
  const actions = readOnly
    ? null
    : el(
        'div',
        { class: 'actions' },
        !claimed
          ? el(
              'button',
              {
                id: 'retry',
                onclick: () =>
                  act(
                    `/api/requests/${r.id}/retry`,
                    `Retry request ${r.id}?`,
                    () => `request ${r.id} is runnable again`,
                  ),
              },
              'Retry',
            )
          : null,
        claimed || r.state === 'waiting'
          ? el(
              'button',
              {
                id: 'cancel',
                class: 'danger',
                onclick: () =>
                  act(`/api/requests/${r.id}/cancel`, `Cancel request ${r.id}?`, (x) => `cancel: ${x.state}`),
              },
              'Cancel',
            )
          : null,
        !claimed
          ? el(
              'button',
              {
                id: 'delete',
                class: 'danger',
                onclick: () =>
                  act(`/api/requests/${r.id}/delete`, `Delete request ${r.id} and its history?`, () => {
                    location.hash = '#/requests';
                    return `request ${r.id} deleted`;
                  }),
              },
              'Delete',
            )
          : null,
      );
  const attempts = r.attempts.map((a) =>
    el(
      'tr',
      {},
      el('td', { class: 'num' }, a.try),
      el('td', {}, a.result),
      el('td', {}, a.mode ?? '-'),
      el('td', {}, a.pid === null ? '-' : `${a.pid}${a.threadId === null ? '' : ` t${a.threadId}`}`),
      el('td', {}, a.host ?? '-'),
      el('td', {}, a.signal ?? (a.exitCode === null ? '-' : `exit ${a.exitCode}`)),
      el('td', { class: 'num' }, a.peakMemoryBytes === null ? '-' : `${(a.peakMemoryBytes / 1048576).toFixed(1)} MiB`),
      el(
        'td',
        { class: 'num' },
        a.startedAt ? `${new Date(a.endedAt).getTime() - new Date(a.startedAt).getTime()} ms` : '-',
      ),
      el('td', { class: 'preview', title: a.resultText ?? '' }, (a.resultText ?? '').split('\n')[0]),
    ),
  );
  view.replaceChildren(
    el('h2', {}, `Request ${r.id}`),
    actions,
    el('dl', { class: 'fields' }, ...fields.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
    el('h2', {}, 'Options'),
    el('pre', { id: 'options' }, r.options ?? '(none)'),
    el('h2', {}, 'Result'),
    el('pre', { id: 'result-text' }, r.resultText ?? '(none yet)'),
    el('h2', {}, 'Attempts'),
    attempts.length
      ? table(['try', 'result', 'mode', 'pid', 'host', 'exit', 'peak memory', 'duration', 'error'], attempts, {
          id: 'attempts',
        })
      : el('p', { class: 'muted' }, 'no ended try yet'),
  );
}

// ---- running ----

async function running(mine) {
  const data = await api('/api/running');
  if (mine !== generation) return;
  const now = new Date(data.now).getTime();
  const rows = data.running.map((t) =>
    el(
      'tr',
      { 'data-id': t.id, 'data-state': t.held ? 'held' : 'running' },
      el('td', { class: 'num' }, el('a', { href: `#/request/${t.id}` }, t.id)),
      el('td', {}, taskName(t.taskClassName)),
      el('td', { class: 'num' }, t.tries),
      el('td', {}, t.pid === null ? '-' : `${t.pid}${t.threadId === null ? '' : ` thread ${t.threadId}`}`),
      el('td', {}, t.host ?? '-'),
      el('td', { class: 'elapsed' }, t.startedAt ? age(t.startedAt, now) : 'held'),
      el(
        'td',
        {},
        readOnly
          ? ''
          : t.cancelRequested
            ? 'cancelling…'
            : el(
                'button',
                {
                  class: 'danger',
                  onclick: () =>
                    act(`/api/requests/${t.id}/cancel`, `Cancel request ${t.id}?`, (x) => `cancel: ${x.state}`),
                },
                'Cancel',
              ),
      ),
    ),
  );
  const heldCount = data.running.filter((t) => t.held).length;
  view.replaceChildren(
    el('h2', {}, `Running tries (${rows.length - heldCount}) and held rows (${heldCount})`),
    rows.length
      ? table(['id', 'task', 'try', 'pid', 'host', 'elapsed', ''], rows, { id: 'running' })
      : el('p', { class: 'muted' }, 'nothing runs'),
  );
}

// ---- recurring ----

// How long until a future time, in age()'s words (age of the time as far in the past).
function until(iso, now) {
  return age(new Date(2 * now - new Date(iso).getTime()).toISOString(), now);
}

// Read-only: entries are declared in config files and runner.recurring(), not here.
async function recurring(mine) {
  const data = await api('/api/recurring');
  if (mine !== generation) return;
  const now = new Date(data.now).getTime();
  const when = (iso) => (iso ? new Date(iso).toISOString().replace('.000Z', 'Z') : '-');
  const rows = data.recurring.map((e) => {
    // Before its first run an entry's lastDueAt is its registration time, not a run: show none.
    const ran = e.lastRequestId !== null;
    const next = e.nextDueAt ? `${when(e.nextDueAt)} (in ${until(e.nextDueAt, now)})` : 'none';
    return el(
      'tr',
      { 'data-name': e.name },
      el('td', { class: 'name' }, e.name),
      el('td', { class: 'task' }, e.taskClassName),
      el('td', { class: 'cron' }, e.cron),
      el('td', {}, e.timezone),
      el('td', {}, e.queue),
      el('td', {}, e.backfill === 0 ? 'skip' : `backfill ${e.backfill}`),
      el(
        'td',
        { class: 'last-due', title: ran ? `${age(e.lastDueAt, now)} ago` : null },
        ran ? when(e.lastDueAt) : '-',
      ),
      el(
        'td',
        { class: 'num last-request' },
        ran ? el('a', { href: `#/request/${e.lastRequestId}` }, e.lastRequestId) : '-',
      ),
      el('td', { class: 'next-due' }, next),
      el('td', { title: when(e.registeredAt) }, `${age(e.registeredAt, now)} ago`),
    );
  });
  view.replaceChildren(
    el('h2', {}, `Recurring tasks (${rows.length})`),
    rows.length
      ? table(
          [
            'name',
            'task',
            'cron',
            'time zone',
            'queue',
            'missed runs',
            'last due',
            'last request',
            'next due',
            'declared',
          ],
          rows,
          { id: 'recurring' },
        )
      : el('p', { class: 'muted' }, 'no recurring task is registered'),
  );
}

// ---- routing and polling ----

function route() {
  const hash = location.hash.slice(1) || '/';
  const [path, query] = hash.split('?');
  if (path === '/requests') {
    const filter = parseQuery(query || '');
    return { shell: () => requestsShell(filter), load: (mine) => requests(mine, filter) };
  }
  const one = /^\/request\/(\d+)$/.exec(path);
  if (one) return { shell: null, load: (mine) => request(mine, one[1]) };
  if (path === '/running') return { shell: null, load: running };
  if (path === '/recurring') return { shell: null, load: recurring };
  return { shell: null, load: overview };
}

let current = route();

async function refresh() {
  const mine = generation;
  try {
    await current.load(mine);
    live.textContent = `live · ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    live.textContent = `offline: ${error.message}`;
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    await refresh();
    schedule();
  }, 1000);
}

async function navigate() {
  generation += 1;
  current = route();
  if (current.shell) current.shell();
  await refresh();
  schedule();
}

window.addEventListener('hashchange', () => {
  say('', false);
  navigate();
});
// The overview tells whether actions are allowed; read it first so buttons show from the start.
api('/api/overview')
  .then(
    (data) => {
      readOnly = data.readOnly;
      document.getElementById('table-name').textContent = data.table;
    },
    () => undefined,
  )
  .finally(navigate);
