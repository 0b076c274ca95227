// The dashboard page: draws each view the server pushes (server-sent events on /events). No framework and
// nothing from another origin; every value is set as text, never as HTML.

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const COLOURS = ['#1f4e99', '#8a1111', '#0b5d1e', '#6b4400'];
let lastPrimary;

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

/** Draws series ([t, v] points) as polylines over a shared scale; describes the newest values in words. */
function chart(svg, series, format) {
  for (const p of [...svg.querySelectorAll('polyline')]) p.remove();
  const all = Object.values(series).flat();
  const desc = svg.querySelector('desc');
  if (!all.length) {
    desc.textContent = 'no data (is Prometheus running?)';
    return;
  }
  const t0 = Math.min(...all.map((p) => p[0])),
    t1 = Math.max(...all.map((p) => p[0]));
  const max = Math.max(1e-9, ...all.map((p) => p[1]));
  Object.entries(series).forEach(([, points], i) => {
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('stroke', COLOURS[i % COLOURS.length]);
    line.setAttribute('points', points.map(([t, v]) => `${((t - t0) / Math.max(1, t1 - t0)) * 400},${116 - (v / max) * 110}`).join(' '));
    svg.append(line);
  });
  desc.textContent = Object.entries(series)
    .map(([name, points]) => `${name}: now ${format(points.at(-1)?.[1] ?? 0)}, highest ${format(Math.max(...points.map((p) => p[1])))}`)
    .join('; ');
}

function render(v) {
  $('cluster').textContent = `${v.cluster} (${v.profile})`;
  const health = $('health');
  health.textContent = v.healthy ? 'healthy' : `degraded: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}`;
  health.className = `badge ${v.healthy ? 'healthy' : 'degraded'}`;
  $('updated').textContent = new Date(v.at).toLocaleTimeString();
  $('updated').setAttribute('datetime', v.at);

  // Routing, and a spoken announcement when the primary moves.
  $('primary-route').textContent = v.routes.primary ? `→ ${v.routes.primary}` : `nobody (${v.routes.source})`;
  $('replicas-route').textContent = v.routes.replicas.length ? `→ ${v.routes.replicas.join(', ')}` : 'nobody';
  $('route-change').textContent = ago(v.routes.lastChangeAt);
  // Announced against the last member that held the route: a switchover passes through "nobody" for a moment.
  const primary = v.routes.primary;
  if (primary === null && lastPrimary !== undefined) $('announce').textContent = 'No member is routed as primary: writes wait until the new leader is.';
  else if (primary !== null && lastPrimary !== undefined && primary !== lastPrimary)
    $('announce').textContent = `The primary moved from ${lastPrimary ?? 'nobody'} to ${primary}.`;
  if (primary !== null || lastPrimary === undefined) lastPrimary = primary;

  $('members').tBodies[0].replaceChildren(
    ...v.members.map((m) =>
      h(
        'tr',
        { 'data-member': m.name, 'data-role': m.role },
        h('th', { scope: 'row' }, m.name),
        h('td', {}, m.host),
        h('td', { class: `role-${m.role}` }, m.role.replace('_', ' ')),
        h('td', {}, m.state),
        h('td', {}, m.timeline === null ? '—' : String(m.timeline)),
        h('td', {}, m.role === 'leader' ? '—' : bytes(m.lagBytes)),
      ),
    ),
  );
  // The pooler (local, pooler.enabled): serving or paused — a pause longer than a switchover's is a problem.
  const pooler = v.pooler;
  $('pooler-section').hidden = !pooler;
  if (pooler) {
    $('pooler').textContent = !pooler.reachable ? `does not answer: ${pooler.error ?? ''}` : pooler.paused ? 'paused: clients wait' : 'serving';
    $('pooler').className = `badge ${pooler.reachable && !pooler.paused ? 'healthy' : 'degraded'}`;
    $('pooler-databases').replaceChildren(
      ...pooler.databases.map((d) => h('li', {}, `${d.name}: ${d.serverConnections} server connection${d.serverConnections === 1 ? '' : 's'}`)),
    );
  }
  $('etcd').replaceChildren(
    ...v.etcd.map((e) => h('li', { class: e.healthy ? 'healthy' : 'degraded' }, `${e.name}: ${e.healthy ? 'healthy' : 'down'}${e.leader ? ' (leader)' : ''}`)),
  );

  const p = v.prometheus;
  $('prometheus-note').textContent =
    p.url === null ? p.error : p.error ? `Prometheus (${p.url}) does not answer: ${p.error}` : p.alerts.length ? '' : 'No alert is firing or pending.';
  $('alerts').replaceChildren(
    ...(p.url === null ? [] : p.alerts).map((a) =>
      h(
        'li',
        { 'data-alert': a.name, 'data-state': a.state, ...(a.member ? { 'data-member': a.member } : {}) },
        h('span', { class: `badge ${a.state === 'firing' ? a.severity : 'pending'}` }, `${a.state} · ${a.severity}`),
        ' ',
        h('strong', {}, a.name),
        ` — ${a.summary} (since ${ago(a.activeAt)})`,
      ),
    ),
  );
  chart($('commits-chart'), p.url === null ? {} : { commits: p.commitsPerSecond }, (x) => `${x.toFixed(1)}/s`);
  const lag = p.url === null ? {} : p.lagBytes;
  chart($('lag-chart'), lag, bytes);
  $('lag-legend').replaceChildren(
    ...Object.keys(lag).map((name, i) => {
      const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.background = COLOURS[i % COLOURS.length]; // through the CSSOM, which the CSP allows
      return h('li', {}, swatch, name);
    }),
  );

  $('decisions').replaceChildren(
    ...[...v.decisions].reverse().map((d) => h('li', {}, h('time', { datetime: d.at }, new Date(d.at).toLocaleTimeString()), ` ${d.text}`)),
  );
  $('problems').replaceChildren(...(v.problems.length ? v.problems : ['none']).map((t) => h('li', {}, t)));

  const chaos = v.chaos;
  $('chaos').hidden = !chaos;
  $('chaos-note').textContent = chaos ? `Report ${chaos.dir}` : 'No fault test has run on this cluster yet.';
  $('chaos').tBodies[0].replaceChildren(
    ...(chaos ? chaos.runs : []).map((r) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, r.scenario),
        h('td', { class: r.ok ? 'healthy' : 'degraded' }, r.ok ? 'passed' : 'failed'),
        h('td', {}, r.outageMs === null ? 'did not recover' : `${(r.outageMs / 1000).toFixed(1)} s`),
        h('td', {}, String(r.acknowledged)),
        h('td', {}, String(r.lost)),
      ),
    ),
  );
  $('chaos-charts').replaceChildren(
    ...(chaos ? chaos.runs.slice(0, 6) : []).map((r) => h('img', { src: `/chaos/${r.chart}`, alt: `Writes over time during ${r.scenario}: ${r.fault}` })),
  );
}

function connect() {
  const events = new EventSource('/events');
  events.addEventListener('view', (e) => {
    $('connection').textContent = 'live';
    render(JSON.parse(e.data));
  });
  events.addEventListener('error', () => {
    $('connection').textContent = 'connection lost; reconnecting…';
  });
}

connect();
