// The operator's page: polls /api/cluster about once a second and redraws.
// Plain JavaScript, no libraries; every text from the cluster goes in with
// textContent (node and list names are data, never markup). Charts are
// inline SVG. The router serves this file (router/web/, embedded at build).
'use strict';

const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 3000;
const SVG = 'http://www.w3.org/2000/svg';
const STATES = ['ok', 'catching_up', 'under_replicated', 'moving', 'unavailable'];
const STATE_LABELS = {
  ok: 'ok', catching_up: 'catching up', under_replicated: 'under-replicated',
  moving: 'moving', unavailable: 'unavailable',
};
const ERROR_CODES = ['bad_request', 'unknown_op', 'not_found', 'overloaded', 'unavailable',
  'timeout', 'internal'];

let partitionDetail = 'all';
let updates = 0;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

function fmt(n, digits) {
  if (n === null || n === undefined) return '–';
  if (typeof n !== 'number') return String(n);
  if (digits !== undefined) return n.toFixed(digits);
  return n.toLocaleString('en-US');
}

function ago(ms) {
  if (ms === null || ms === undefined) return 'never';
  if (ms < 1000) return ms + ' ms ago';
  if (ms < 120000) return (ms / 1000).toFixed(1) + ' s ago';
  return Math.round(ms / 60000) + ' min ago';
}

// --- Header and cluster facts ---

function renderHeader(d) {
  $('router-name').textContent = d.router.name;
  $('mode').textContent = d.router.mode;
  $('mode').dataset.mode = d.router.mode;
  document.body.dataset.mode = d.router.mode;
  $('updated').textContent = 'updated ' + new Date(d.router.time_ms).toLocaleTimeString() +
      (d.router.serving ? '' : ' · router stopping');
}

function renderCluster(d) {
  const c = d.cluster;
  const facts = $('cluster-facts');
  clear(facts);
  if (!c) return;
  const add = (k, v) => { facts.appendChild(el('dt', {}, k)); facts.appendChild(el('dd', {}, v)); };
  add('cluster', c.name);
  if (!c.has_map) {
    add('map', c.map_error ? 'malformed: ' + c.map_error : 'none yet (todo-admin init)');
  } else {
    add('partitions', fmt(c.partition_count));
    add('replicas (R)', fmt(c.replicas));
    add('min in sync', fmt(c.min_insync));
    add('map version', fmt(c.map_version));
  }
  add('controller', c.controller || '(none)');
  const chips = $('partition-states');
  clear(chips);
  if (!c.has_map) return;
  for (const s of STATES) {
    const n = c.partition_states[s] || 0;
    if (n === 0 && s !== 'ok') continue;
    chips.appendChild(el('span', {class: 'chip state-' + s, 'data-state': s},
        n + ' ' + STATE_LABELS[s]));
  }
}

// --- Nodes ---

function renderNodes(d) {
  const body = $('nodes').tBodies[0];
  clear(body);
  for (const n of d.nodes) {
    const tr = el('tr', {'data-node': n.name, 'data-status': n.status});
    tr.appendChild(el('td', {class: 'name'}, n.name + (n.member ? '' : ' (not a member)')));
    const st = el('td');
    st.appendChild(el('span', {class: 'pill status-' + n.status}, n.status));
    if (n.leaving) st.appendChild(el('span', {class: 'pill leaving'}, 'leaving'));
    tr.appendChild(st);
    tr.appendChild(el('td', {class: 'replicated-only'},
        n.lease === null ? '–' : (n.lease ? 'held' : 'expired')));
    tr.appendChild(el('td', {}, n.heartbeat === null ? '–' :
        n.heartbeat + (n.heard_ms_ago !== null ? ', ' + ago(n.heard_ms_ago) : '')));
    tr.appendChild(el('td', {class: 'mono'}, n.endpoint || '–'));
    const s = n.stats;
    for (const v of [n.primaries, n.backups, n.not_in_sync,
      s ? s.inflight : null, s ? s.live_actors : null]) {
      tr.appendChild(el('td', {class: 'replicated-only num'}, fmt(v)));
    }
    if (s && !s.ok && s.error) tr.title = 'stats: ' + s.error;
    body.appendChild(tr);
  }
}

// --- Partitions by node ---

function partitionTitle(p) {
  const reps = p.replicas.map((r, i) => r + (i === 0 ? ' (primary)' : '') +
      (p.in_sync.includes(r) ? '' : ' not in sync')).join(', ');
  let t = 'partition ' + p.partition + ', epoch ' + p.epoch + ', ' + STATE_LABELS[p.state] +
      '\nreplicas: ' + reps;
  if (p.handoff) t += '\nhand-off to ' + p.handoff;
  if (p.seq !== null) t += '\nseq ' + p.seq;
  for (const b of p.backups || []) {
    if (b.lag !== undefined) t += '\n' + b.name + ': ' + b.mode + ', lag ' + b.lag;
  }
  return t;
}

function renderPartitions(d) {
  const rows = $('partition-rows');
  clear(rows);
  const legend = $('legend');
  if (!legend.firstChild) {
    for (const s of STATES) legend.appendChild(el('span', {class: 'chip state-' + s}, STATE_LABELS[s]));
  }
  if (!d.cluster || !d.cluster.has_map) return;
  if (d.partitions_included !== 'all') {
    rows.appendChild(el('p', {class: 'muted'}, 'Too many partitions to draw (' +
        d.cluster.partition_count + '); the tables below list the ones that need attention.'));
    return;
  }
  const cell = 10, gap = 2, perLine = 64;
  for (const n of d.nodes) {
    if (!n.member && n.primaries + n.backups === 0) continue;
    const mine = [];
    for (const p of d.partitions) {
      const i = p.replicas.indexOf(n.name);
      if (i >= 0) mine.push({p, primary: i === 0});
    }
    mine.sort((a, b) => (b.primary - a.primary) || (a.p.partition - b.p.partition));
    const row = el('div', {class: 'prow', 'data-node': n.name});
    row.appendChild(el('div', {class: 'plabel'}, n.name));
    const lines = Math.max(1, Math.ceil(mine.length / perLine));
    const w = perLine * (cell + gap), h = lines * (cell + gap);
    const g = svg('svg', {width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: 'pgrid'});
    mine.forEach((m, k) => {
      const x = (k % perLine) * (cell + gap), y = Math.floor(k / perLine) * (cell + gap);
      const inSync = m.p.in_sync.includes(n.name);
      const r = svg('rect', {
        x: x + 0.5, y: y + 0.5, width: cell - 1, height: cell - 1, rx: 2,
        class: 'sq state-' + m.p.state + (m.primary ? ' primary' : ' backup') +
            (inSync ? '' : ' nis'),
      });
      r.appendChild(svg('title', {}, partitionTitle(m.p)));
      g.appendChild(r);
    });
    row.appendChild(g);
    row.appendChild(el('div', {class: 'pcount muted'},
        n.primaries + ' primary, ' + n.backups + ' backup'));
    rows.appendChild(row);
  }
}

// --- Moves and replicas not in sync ---

function renderMoves(d) {
  const mb = $('moves').tBodies[0];
  clear(mb);
  for (const m of d.moves) {
    const tr = el('tr', {'data-partition': m.partition});
    tr.appendChild(el('td', {class: 'num'}, m.partition));
    tr.appendChild(el('td', {class: 'num'}, m.epoch));
    tr.appendChild(el('td', {}, m.replicas.join(', ')));
    tr.appendChild(el('td', {}, m.in_sync.join(', ')));
    tr.appendChild(el('td', {}, m.handoff || '–'));
    tr.appendChild(el('td', {}, m.reasons.join(', ').replace(/_/g, ' ')));
    mb.appendChild(tr);
  }
  $('moves').hidden = d.moves.length === 0;
  $('moves-none').hidden = d.moves.length !== 0;
  const nb = $('not-in-sync').tBodies[0];
  clear(nb);
  const shown = d.not_in_sync.slice(0, 200);
  for (const r of shown) {
    const tr = el('tr', {'data-partition': r.partition, 'data-replica': r.replica});
    tr.appendChild(el('td', {class: 'num'}, r.partition));
    tr.appendChild(el('td', {}, r.replica));
    tr.appendChild(el('td', {}, r.alive ? 'yes' : 'no'));
    tr.appendChild(el('td', {}, r.mode || '–'));
    tr.appendChild(el('td', {class: 'num'}, fmt(r.lag)));
    tr.appendChild(el('td', {class: 'num'}, fmt(r.acked)));
    nb.appendChild(tr);
  }
  if (d.not_in_sync.length > shown.length) {
    const tr = el('tr');
    tr.appendChild(el('td', {colspan: 6, class: 'muted'},
        '… and ' + (d.not_in_sync.length - shown.length) + ' more (see /api/cluster)'));
    nb.appendChild(tr);
  }
  $('not-in-sync').hidden = d.not_in_sync.length === 0;
  $('nis-none').hidden = d.not_in_sync.length !== 0;
}

// --- Charts (inline SVG, 320 x 140 user units) ---

const CH = {w: 320, h: 140, left: 40, right: 8, top: 8, bottom: 20};

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function axes(g, maxY, t0, t1) {
  const {w, h, left, right, top, bottom} = CH;
  for (const f of [0, 0.5, 1]) {
    const y = top + (h - top - bottom) * (1 - f);
    g.appendChild(svg('line', {x1: left, x2: w - right, y1: y, y2: y, class: 'grid'}));
    const v = maxY * f;
    g.appendChild(svg('text', {x: left - 4, y: y + 3, class: 'tick', 'text-anchor': 'end'},
        v >= 100 ? Math.round(v) : +v.toPrecision(2)));
  }
  const span = Math.round((t1 - t0) / 1000);
  g.appendChild(svg('text', {x: left, y: h - 5, class: 'tick'}, '-' + span + ' s'));
  g.appendChild(svg('text', {x: w - right, y: h - 5, class: 'tick', 'text-anchor': 'end'}, 'now'));
}

function scaler(maxY, t0, t1) {
  const {w, h, left, right, top, bottom} = CH;
  return {
    x: (t) => left + (w - left - right) * (t1 > t0 ? (t - t0) / (t1 - t0) : 1),
    y: (v) => top + (h - top - bottom) * (1 - Math.min(v, maxY) / maxY),
  };
}

// The last minute up to the router's clock.
function timeRange(nowMs) {
  return [nowMs - 60000, nowMs];
}

function lineChart(id, slots, nowMs, series) {
  const g = $(id);
  clear(g);
  let max = 0;
  for (const s of series) for (const sl of slots) { const v = s.value(sl); if (v !== null) max = Math.max(max, v); }
  const maxY = niceMax(max);
  const [t0, t1] = timeRange(nowMs);
  axes(g, maxY, t0, t1);
  const sc = scaler(maxY, t0, t1);
  for (const s of series) {
    let d = '';
    let pen = false;
    for (const sl of slots) {
      const v = s.value(sl);
      if (v === null || sl.t_ms < t0) { pen = false; continue; }
      const x = sc.x(sl.t_ms).toFixed(1), y = sc.y(v).toFixed(1);
      d += (pen ? 'L' : 'M') + x + ' ' + y;
      pen = true;
      // A dot per second, so a lone point (a quiet minute) still shows.
      const dot = svg('circle', {cx: x, cy: y, r: 1.6, class: 'dot ' + s.cls});
      dot.appendChild(svg('title', {}, fmt(v, v < 10 ? 2 : 0)));
      g.appendChild(dot);
    }
    if (d) g.appendChild(svg('path', {d, class: 'line ' + s.cls}));
  }
  if (slots.length === 0) {
    g.appendChild(svg('text', {x: CH.w / 2, y: CH.h / 2, class: 'tick', 'text-anchor': 'middle'},
        'no data yet'));
  }
}

function errorsChart(slots, nowMs) {
  const g = $('chart-errors');
  clear(g);
  let max = 0;
  const seen = new Set();
  for (const sl of slots) {
    let sum = 0;
    for (const c of ERROR_CODES) {
      const n = sl.replies[c] || 0;
      if (n > 0) seen.add(c);
      sum += n / sl.seconds;
    }
    max = Math.max(max, sum);
  }
  const maxY = niceMax(max);
  const [t0, t1] = timeRange(nowMs);
  axes(g, maxY, t0, t1);
  const sc = scaler(maxY, t0, t1);
  const bw = Math.max(1, (CH.w - CH.left - CH.right) / 60 - 1);
  for (const sl of slots) {
    if (sl.t_ms < t0) continue;
    let acc = 0;
    for (const c of ERROR_CODES) {
      const v = (sl.replies[c] || 0) / sl.seconds;
      if (v <= 0) continue;
      const y0 = sc.y(acc), y1 = sc.y(acc + v);
      const r = svg('rect', {x: (sc.x(sl.t_ms) - bw).toFixed(1), y: y1.toFixed(1), width: bw.toFixed(1),
        height: Math.max(0.5, y0 - y1).toFixed(1), class: 'bar code-' + c});
      r.appendChild(svg('title', {}, c + ': ' + (sl.replies[c] || 0)));
      g.appendChild(r);
      acc += v;
    }
  }
  const keys = $('error-keys');
  clear(keys);
  for (const c of ERROR_CODES) {
    if (seen.has(c)) keys.appendChild(el('span', {class: 'key code-' + c}, c));
  }
  if (seen.size === 0) keys.appendChild(el('span', {class: 'muted'}, '(none)'));
}

function renderCharts(d) {
  const slots = d.rates.slots;
  const now = d.router.time_ms;
  lineChart('chart-rate', slots, now, [
    {cls: 'rate', value: (s) => s.requests / s.seconds},
  ]);
  lineChart('chart-latency', slots, now, [
    {cls: 'p50', value: (s) => s.p50_ms},
    {cls: 'p90', value: (s) => s.p90_ms},
    {cls: 'p99', value: (s) => s.p99_ms},
  ]);
  errorsChart(slots, now);
}

// --- The whole page ---

function render(d) {
  renderHeader(d);
  renderCluster(d);
  renderNodes(d);
  if (d.cluster) {
    renderPartitions(d);
    renderMoves(d);
  }
  renderCharts(d);
}

function setConn(state, text) {
  const c = $('conn');
  c.dataset.state = state;
  c.textContent = text;
  document.body.classList.toggle('stale', state !== 'live');
}

async function fetchJson(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(url, {cache: 'no-store', signal: ctl.signal});
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return {status: r.status, body};
  } finally {
    clearTimeout(timer);
  }
}

async function poll() {
  try {
    const r = await fetchJson('/api/cluster?partitions=' + partitionDetail);
    if (r.status !== 200 || !r.body) {
      const msg = r.body && r.body.error ? r.body.error.message : 'HTTP ' + r.status;
      setConn('error', 'router answered: ' + msg);
    } else {
      const c = r.body.cluster;
      partitionDetail = c && c.partition_count > 4096 ? 'problems' : 'all';
      render(r.body);
      updates += 1;
      document.body.dataset.updates = String(updates);
      setConn('live', 'live');
    }
  } catch (e) {
    setConn('unreachable', 'router unreachable; retrying');
  }
  setTimeout(poll, POLL_MS);
}

// --- List look-up ---

function lookupRow(table, key, value, id) {
  const tr = el('tr');
  tr.appendChild(el('th', {}, key));
  tr.appendChild(el('td', {id}, value));
  table.appendChild(tr);
}

async function lookup(ev) {
  ev.preventDefault();
  const name = $('lookup-name').value;
  const out = $('lookup-result');
  out.dataset.state = 'pending';
  clear(out);
  out.appendChild(el('p', {class: 'muted'}, 'asking…'));
  let r;
  try {
    r = await fetchJson('/api/list?name=' + encodeURIComponent(name));
  } catch (e) {
    r = {status: 0, body: null};
  }
  clear(out);
  if (r.status !== 200 || !r.body || r.body.error) {
    const msg = r.body && r.body.error ? r.body.error.code + ': ' + r.body.error.message
                                       : 'no answer from the router';
    out.appendChild(el('p', {class: 'error', id: 'lookup-error'}, msg));
    out.dataset.state = 'error';
    return;
  }
  const d = r.body;
  const t = el('table', {class: 'kv'});
  const mark = (n) => n + (d.alive && d.alive[n] === false ? ' (down)' : '') +
      (d.in_sync && !d.in_sync.includes(n) ? ' (not in sync)' : '');
  lookupRow(t, 'list', d.list, 'lookup-list');
  lookupRow(t, 'owner (primary)', d.node === null ? '–' : mark(d.node), 'lookup-owner');
  lookupRow(t, 'replicas', d.replicas.map(mark).join(', '), 'lookup-replicas');
  lookupRow(t, 'partition', fmt(d.partition), 'lookup-partition');
  lookupRow(t, 'epoch', fmt(d.epoch), 'lookup-epoch');
  lookupRow(t, 'entries', d.entries !== null ? fmt(d.entries)
      : 'unknown (' + d.entries_error.code + ': ' + d.entries_error.message + ')', 'lookup-entries');
  out.appendChild(t);
  out.dataset.state = 'done';
  out.dataset.owner = d.node || '';
  out.dataset.entries = d.entries === null ? '' : String(d.entries);
}

document.addEventListener('DOMContentLoaded', () => {
  $('lookup').addEventListener('submit', lookup);
  poll();
});
