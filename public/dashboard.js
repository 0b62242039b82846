// Relay dashboard: fetches the API with an operator token (or the admin token) and draws it. The
// token comes from the URL fragment (#token=...) or the form, and is kept in sessionStorage for
// this tab only. GET /v1/me says what the token may do; what it may not is hidden (the server
// refuses it anyway).
const SERIES = [
  ['accepted', 'var(--accepted)', 'Accepted'],
  ['delivered', 'var(--delivered)', 'Delivered'],
  ['bounced', 'var(--bounced)', 'Bounced'],
];
const $ = (id) => document.getElementById(id);

function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem('relay-token', fromHash);
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem('relay-token');
}

async function api(path, method = 'GET', payload) {
  const headers = { authorization: `Bearer ${token()}`, ...(payload && { 'content-type': 'application/json' }) };
  const response = await fetch(path, { method, headers, body: payload && JSON.stringify(payload) });
  const body = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return body;
}

/** The token's grants, from GET /v1/me: the roles whose routes it may call ("app" for an app's API key). */
let grants = [];
const may = (role) => grants.includes(role);

function applyRoles() {
  for (const el of document.querySelectorAll('[data-role]')) el.hidden = !el.dataset.role.split(' ').some(may);
}

function button(label, action) {
  const td = document.createElement('td');
  const b = document.createElement('button');
  b.textContent = label;
  b.addEventListener('click', () => action().then(refresh, showError));
  td.append(b);
  return td;
}

function showError(err) {
  $('error').textContent = err.message;
  $('error').hidden = false;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text ?? '–';
  if (className) td.className = className;
  return td;
}

function fillTable(id, rows) {
  const body = $(id).querySelector('tbody');
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    tr.append(...cells);
    return tr;
  }));
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell('nothing yet', 'muted');
    td.colSpan = $(id).querySelectorAll('th').length;
    tr.append(td);
    body.append(tr);
  }
}

const svg = (name, attrs = {}) => {
  const el = document.createElementNS('http://www.w3.org/2000/svg', name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  return el;
};

/** A line per series over the hourly buckets, with a y axis from 0 to the maximum. */
function drawChart(series) {
  const width = 900, height = 220, left = 40, bottom = 24, top = 10;
  const max = Math.max(1, ...series.flatMap((point) => SERIES.map(([key]) => point[key])));
  const x = (i) => left + (i * (width - left - 10)) / Math.max(1, series.length - 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'messages per hour' });
  for (const v of [0, max / 2, max]) {
    chart.append(svg('line', { x1: left, x2: width - 10, y1: y(v), y2: y(v), stroke: '#e3e6ec' }));
    const label = svg('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#6b7385' });
    label.textContent = Math.round(v);
    chart.append(label);
  }
  series.forEach((point, i) => {
    if (i % 4 !== 0) return;
    const label = svg('text', { x: x(i), y: height - 6, 'text-anchor': 'middle', 'font-size': 11, fill: '#6b7385' });
    label.textContent = point.start.slice(11, 16);
    chart.append(label);
  });
  for (const [key, color] of SERIES) {
    const points = series.map((point, i) => `${x(i)},${y(point[key])}`).join(' ');
    chart.append(svg('polyline', { points, fill: 'none', stroke: color, 'stroke-width': 2, class: `series-${key}` }));
  }
  const legend = document.createElement('div');
  legend.className = 'legend';
  for (const [, color, label] of SERIES) {
    const item = document.createElement('span');
    const swatch = document.createElement('i');
    swatch.style.background = color;
    item.append(swatch, label);
    legend.append(item);
  }
  $('chart').replaceChildren(chart, legend);
}

async function loadOverview() {
  const [stats, domains] = await Promise.all([api('/v1/stats?granularity=hour'), may('viewer') ? api('/v1/domains') : { domains: [] }]);
  const { totals, queue } = stats;
  $('accepted').textContent = totals.accepted;
  $('delivered').textContent = totals.delivered;
  $('bounced').textContent = totals.bounced;
  const finished = totals.delivered + totals.bounced + totals.expired;
  $('bounce-rate').textContent = finished ? `${((100 * (totals.bounced + totals.expired)) / finished).toFixed(1)} %` : '–';
  // Complaints per delivered message: the figure mailbox providers judge a sender by (Gmail: keep it under 0.3 %).
  $('complaint-rate').textContent = totals.delivered ? `${((100 * totals.complained) / totals.delivered).toFixed(2)} %` : '–';
  $('complaints').textContent = `${totals.complained} complaints, ${totals.unsubscribed} unsubscribes`;
  if (queue) {
    $('queue-depth').textContent = `${queue.recipients_pending} pending`;
    $('queue-oldest').textContent = queue.oldest_received_at ? `oldest since ${queue.oldest_received_at.replace('T', ' ').slice(0, 19)}Z` : 'empty';
  }
  drawChart(stats.series);
  fillTable('tags', Object.entries(stats.by_tag).sort(([a], [b]) => a.localeCompare(b)).map(([tag, c]) => [
    cell(tag), cell(c.accepted), cell(c.delivered), cell(c.bounced), cell(c.deferred),
  ]));
  fillTable('failing', stats.failing_domains.map((d) => [cell(d.domain), cell(d.bounced), cell(d.deferred), cell(d.last_response, 'reply')]));
  const check = (d, name) => {
    const status = d.checks?.[name]?.status;
    return cell(status ?? 'not checked', status === 'found' ? 'ok' : status ? 'bad' : 'muted');
  };
  const verify = (d) => (may('sender-admin') ? [button('Verify', () => api(`/v1/domains/${encodeURIComponent(d.name)}/verify`, 'POST'))] : []);
  fillTable('domains', domains.domains.map((d) => [
    cell(d.name), cell(d.verified ? 'yes' : 'no', d.verified ? 'ok' : 'bad'), check(d, 'dkim'), check(d, 'spf'), check(d, 'dmarc'), ...verify(d),
  ]));
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

const rate = (l) => [l.messages_per_second && `${l.messages_per_second}/s`, l.messages_per_minute && `${l.messages_per_minute}/m`,
  l.messages_per_hour && `${l.messages_per_hour}/h`].filter(Boolean).join(', ') || null;
const ofConfigured = (now, configured) => (configured == null ? null : now === configured ? `${configured}` : `${now} of ${configured}`);

/** Each shaping destination's budget now against its configured one; a cut level or a suspension stands out. */
async function loadShaping() {
  if (!may('viewer')) return;
  const { destinations } = await api('/v1/shaping');
  fillTable('shaping', destinations.map(({ name, configured, current }) => {
    const change = current.last_change;
    return [
      cell(name),
      cell(String(current.level), current.level < 1 ? 'bad' : 'ok'),
      cell(ofConfigured(current.max_connections, configured.max_connections)),
      cell(ofConfigured(rate(current), rate(configured))),
      cell(current.in_flight),
      cell(current.suspended_until?.replace('T', ' ').slice(0, 19) ?? 'no', current.suspended_until ? 'bad' : 'muted'),
      cell(change && `${change.reason} ${change.from_level} → ${change.to_level} at ${change.at.slice(11, 19)}${change.reply ? `: ${change.reply}` : ''}`, 'reply'),
    ];
  }));
}

async function loadEvents() {
  const recipient = $('recipient').value.trim();
  const query = new URLSearchParams({ order: 'desc', limit: '50', ...(recipient && { recipient }) });
  const { events } = await api(`/v1/events?${query}`);
  fillTable('events', events.map((e) => [
    cell(e.at.replace('T', ' ').slice(0, 19)), cell(e.recipient), cell(e.status, `status-${e.status}`), cell(e.response, 'reply'), cell(e.queue_id),
  ]));
}

async function loadSuppressions() {
  const { suppressions } = await api('/v1/suppressions');
  const remove = (s) => {
    if (!may('sender-admin') && !may('app')) return [];
    const query = s.credential && !may('app') ? `?credential=${encodeURIComponent(s.credential)}` : '';
    return [button('Remove', () => api(`/v1/suppressions/${encodeURIComponent(s.address)}${query}`, 'DELETE'))];
  };
  fillTable('suppressions', suppressions.map((s) => [cell(s.address), cell(s.credential ?? 'all'), cell(s.reason), ...remove(s)]));
}

async function loadTemplates() {
  if (!may('viewer')) return;
  const { templates } = await api('/v1/templates');
  const remove = (t) => (may('template-editor') ? [button('Remove', () => api(`/v1/templates/${encodeURIComponent(t.name)}`, 'DELETE'))] : []);
  fillTable('templates', templates.map((t) => [cell(t.name), cell(t.version), cell(t.subject), ...remove(t)]));
}

async function refresh() {
  try {
    const me = await api('/v1/me');
    grants = me.grants;
    $('whoami').textContent = `${me.name} (${me.role})`;
    applyRoles();
    await Promise.all([loadOverview(), loadEvents(), loadSuppressions(), loadTemplates(), loadShaping()]);
    $('error').hidden = true;
    $('main').hidden = false;
  } catch (err) {
    $('error').textContent = err.message;
    $('error').hidden = false;
  }
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem('relay-token', $('token').value);
  $('login').hidden = true;
  refresh();
});
$('suppress').addEventListener('submit', (event) => {
  event.preventDefault();
  api('/v1/suppressions', 'POST', { address: $('suppress-address').value.trim(), reason: 'added on the dashboard' })
    .then(() => ($('suppress-address').value = ''))
    .then(refresh, showError);
});
$('search').addEventListener('submit', (event) => {
  event.preventDefault();
  loadEvents().catch((err) => ($('error').textContent = err.message));
});

if (token()) {
  refresh();
  setInterval(loadOverview, 30_000);
  setInterval(() => loadShaping().catch((err) => ($('error').textContent = err.message)), 10_000);
} else {
  $('login').hidden = false;
}
