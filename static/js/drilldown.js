import {
  CHANNELS, ChartSet, FILTERS, Live, MOMENTS, authHeaders, badgeHTML, hasECharts, subscriptionFromURL,
} from './live.js';
import {AlertBanner} from './alerts.js';
import {AnnotationLayer, enableAnnotating} from './annotations.js';
import {bindExport, metricsQuery} from './export.js';
import {adminLink} from './nav.js';
import {FIGURES, deltaText, explain, heatmapDecoration, hideTooltips, renderTiles, tilesHTML, verdictClass} from './judgement.js';

hasECharts();
const $ = (id) => document.getElementById(id);
const kpis = $('kpis');
kpis.innerHTML = tilesHTML();
$('badge').innerHTML = badgeHTML;
$('channels').innerHTML = MOMENTS.map((m) =>
  `<div class="panel"><div class="chart" data-chart="channels_${m}"></div><p class="cci" data-cci="${m}"></p></div>`).join('');

const form = $('filters');
for (const [name, values] of [['moment', MOMENTS], ['channel', CHANNELS]]) {
  form.elements[name].insertAdjacentHTML('beforeend', values.map((v) => `<option>${v}</option>`).join(''));
}

// The drill path lives in the URL: every step is a history entry, so Back walks back up.
function navigate(changes) {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(changes)) {
    if (v) u.searchParams.set(k, v);
    else u.searchParams.delete(k);
  }
  if (u.search === location.search) return;
  history.pushState(null, '', u);
  fromURL();
}

function fromURL() {
  const sub = subscriptionFromURL('drilldown');
  const q = new URLSearchParams(location.search);
  form.elements.window.value = sub.window;
  for (const f of FILTERS) if (form.elements[f]) form.elements[f].value = q.get(f) || '';
  renderPath(q);
  live.resubscribe(sub);
  refreshBelow(true);
}

function renderPath(q) {
  const steps = [['All moments', {moment: '', channel: '', touchpoint: ''}]];
  if (q.get('moment')) steps.push([q.get('moment'), {channel: '', touchpoint: ''}]);
  if (q.get('channel')) steps.push([q.get('channel'), {touchpoint: ''}]);
  if (q.get('touchpoint')) steps.push([q.get('touchpoint'), {}]);
  const nav = $('path');
  nav.replaceChildren();
  steps.forEach(([label, clear], i) => {
    if (i) nav.append(' › ');
    if (i === steps.length - 1) {
      const s = document.createElement('strong');
      s.textContent = label;
      nav.append(s);
      return;
    }
    const a = document.createElement('a');
    const u = new URL(location.href);
    for (const k of Object.keys(clear)) u.searchParams.delete(k);
    a.href = u.pathname + u.search;
    a.textContent = label;
    a.addEventListener('click', (e) => {
      e.preventDefault();
      navigate(clear);
    });
    nav.append(a);
  });
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const changes = {window: form.elements.window.value};
  for (const f of FILTERS) if (form.elements[f]) changes[f] = form.elements[f].value.trim();
  navigate(changes);
});
for (const name of ['window', 'moment', 'channel']) {
  form.elements[name].addEventListener('change', () => form.requestSubmit());
}

// barsDecoration lays out a moment's channel bars for the width of its element: eleven
// channels in a narrow chart (a phone, or five charts side by side) stand upright so that no
// name runs into the next, inside the chart, above the legend; labels do not animate between
// the two angles.
function barsDecoration(el) {
  const narrow = el.clientWidth / CHANNELS.length < 44;
  return {
    animation: false,
    xAxis: [{axisLabel: {rotate: narrow ? 90 : 30, fontSize: narrow ? 11 : 12}}],
    grid: [{left: 8, right: 8, top: 60, bottom: 30, containLabel: true}],
    legend: [{bottom: 0, top: 'auto'}],
  };
}

const charts = new ChartSet({
  renderer: 'svg',
  decorate: (name, opt) => {
    const el = document.querySelector(`[data-chart="${name}"]`);
    // Trends: the first time label starts at its tick instead of centring on it, so that it
    // stays clear of the value axis' 0 when a tick falls at the window's start; midnight reads
    // "Dec 7", not "7".
    const extra = name === 'heatmap' ? heatmapDecoration(opt, el) : name.startsWith('channels_') ? barsDecoration(el)
      : name.startsWith('trend_') ? {xAxis: [{axisLabel: {margin: 14, alignMinLabel: 'left', formatter: {day: '{MMM} {d}'}}}]} : {};
    return Object.assign({toolbox: {show: false}}, extra);
  },
});
charts.onCreate = (name, c) => {
  if (name !== 'heatmap') return;
  c.on('click', (p) => {
    const v = p.data && p.data.value ? p.data.value : p.value;
    if (!Array.isArray(v)) return;
    const o = c.getOption();
    const channel = o.xAxis[0].data[v[0]];
    const moment = o.yAxis[0].data[v[1]];
    if (moment && channel) navigate({moment, channel, touchpoint: ''});
  });
};

// TABLE_FIGURES are the comparison tables' figure columns, each with its change against the
// previous period, coloured only when the server judged it better or worse.
const TABLE_FIGURES = ['csat', 'nps', 'ces', 'negative_rate', 'abandonment', 'wait_p90_ms'];

// figureCell is the cell of one figure of a row: value, n in the title, and the change with
// its judgement. Volume ('events') is a count, its own n.
function figureCell(r, name) {
  const td = document.createElement('td');
  td.className = 'num';
  const f = name === 'events' ? {value: r.events, n: r.events} : r[name];
  const v = document.createElement('span');
  v.textContent = f && f.value !== null ? FIGURES[name].fmt(f.value) : '—';
  v.title = f ? `n = ${f.n}` + (f.value === null ? ': not enough data' : '') : '';
  td.append(v);
  const d = r.delta ? r.delta[name] : null;
  if (d !== null && d !== undefined) {
    const j = r.judgement ? r.judgement[name] : null;
    const c = document.createElement('span');
    c.className = 'change ' + verdictClass(j);
    c.textContent = deltaText(name, d);
    c.title = explain(j);
    td.append(c);
  }
  return td;
}

// sortKey is what a row sorts by in a column: a name, the volume, or a figure's value (a
// figure without enough data sorts after every value, whichever the direction).
function sortKey(r, key) {
  if (key === 'events') return r.events;
  if (FIGURES[key]) return r[key] && r[key].value !== null ? r[key].value : null;
  return r[key] || '';
}

// SortedTable keeps a table's order: the column (its th's data-key) and direction, shown by
// aria-sort on the headers; a click on a header (or Enter on it) sorts by that column,
// descending first for figures, ascending for names, and a second click reverses.
class SortedTable {
  constructor(table, render) {
    this.table = table;
    this.key = 'events';
    this.dir = 'descending';
    this.rows = [];
    this.render = render;
    const pick = (th) => {
      if (!th || !th.dataset.key) return;
      const k = th.dataset.key;
      if (k === this.key) this.dir = this.dir === 'ascending' ? 'descending' : 'ascending';
      else this.dir = th.classList.contains('num') ? 'descending' : 'ascending';
      this.key = k;
      this.show(this.rows);
    };
    table.tHead.addEventListener('click', (e) => pick(e.target.closest('th')));
    table.tHead.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        pick(e.target.closest('th'));
      }
    });
  }

  // show renders rows in the table's order (at most 100 of them).
  show(rows) {
    this.rows = rows || [];
    for (const th of this.table.tHead.querySelectorAll('th[data-key]')) {
      th.setAttribute('aria-sort', th.dataset.key === this.key ? this.dir : 'none');
    }
    const sign = this.dir === 'ascending' ? 1 : -1;
    const sorted = this.rows.slice().sort((a, b) => {
      const x = sortKey(a, this.key);
      const y = sortKey(b, this.key);
      if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
      const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
      return c * sign || b.events - a.events;
    });
    this.render(sorted.slice(0, 100));
  }
}

// rowOf is a table row: its text cells, then the volume and the figures with their changes.
function rowOf(r, texts) {
  const row = document.createElement('tr');
  for (const t of texts) {
    const td = document.createElement('td');
    td.textContent = t;
    row.append(td);
  }
  for (const name of ['events', ...TABLE_FIGURES]) row.append(figureCell(r, name));
  return row;
}

// emptyBody says that a table has no rows.
function emptyBody(body, columns, text) {
  body.innerHTML = `<tr><td colspan="${columns}" class="empty"></td></tr>`;
  body.querySelector('td').textContent = text;
}

const touchpoints = new SortedTable($('touchpoints'), (rows) => {
  const body = $('touchpoints').tBodies[0];
  if (!rows.length) return emptyBody(body, 4 + TABLE_FIGURES.length, 'no events in this window');
  const chosen = new URLSearchParams(location.search).get('touchpoint');
  body.replaceChildren(...rows.map((r) => {
    const row = rowOf(r, [r.moment, r.channel, r.touchpoint]);
    row.dataset.moment = r.moment;
    row.dataset.channel = r.channel;
    row.dataset.touchpoint = r.touchpoint;
    row.classList.toggle('current', r.touchpoint === chosen);
    return row;
  }));
});
const renderTouchpoints = (rows) => touchpoints.show(rows);

// ---- the level below the drill path, compared ----

const LEVELS = {moment: 'Moments', channel: 'Channels', touchpoint: 'Touchpoints'};
let level = 'moment';

// membersTitle says what the comparison table compares, from the drill path in the URL.
function membersTitle(lvl) {
  const q = new URLSearchParams(location.search);
  const of = lvl === 'channel' ? ` of ${q.get('moment')}` : lvl === 'touchpoint' && q.get('channel') ? ` of ${q.get('channel')}` : '';
  return `${LEVELS[lvl]}${of}, compared with the previous period`;
}

const memberTable = new SortedTable($('members'), (rows) => {
  const body = $('members').tBodies[0];
  if (!rows.length) return emptyBody(body, 2 + TABLE_FIGURES.length, 'no events in this window');
  const chosen = new URLSearchParams(location.search).get('touchpoint');
  body.replaceChildren(...rows.map((r) => {
    const row = rowOf(r, [r[level]]);
    row.dataset.member = r[level];
    if (level === 'touchpoint') {
      row.dataset.moment = r.moment;
      row.dataset.channel = r.channel;
    }
    row.classList.toggle('current', level === 'touchpoint' && r.touchpoint === chosen);
    return row;
  }));
});

function renderMembers(m) {
  if (!m) return;
  level = m.level;
  $('members-title').textContent = membersTitle(level);
  $('members').tHead.querySelector('th[data-key]').textContent = level[0].toUpperCase() + level.slice(1);
  $('members').tHead.querySelector('th[data-key]').dataset.key = level;
  if (memberTable.key !== 'events' && !FIGURES[memberTable.key]) memberTable.key = level;
  memberTable.show(m.rows.map((r) => Object.assign({name: r[level]}, r)));
}
$('members').addEventListener('click', (e) => {
  const row = e.target.closest('tbody tr[data-member]');
  if (!row) return;
  const v = row.dataset.member;
  if (level === 'moment') navigate({moment: v, channel: '', touchpoint: ''});
  else if (level === 'channel') navigate({channel: v, touchpoint: ''});
  else navigate({moment: row.dataset.moment, channel: row.dataset.channel, touchpoint: v});
});

// ---- below a touchpoint: its regions and its teams ----

// They come from the metrics API (GET /v1/metrics?by=region, by=agent_team with the drill
// path's filters), not from the live feed: only a drill-down with a touchpoint chosen needs
// them, and the feed's tick would otherwise run two more queries for every drill-down screen.
// Read when the path changes, then again with the feed's messages every BELOW_REFRESH, and as
// soon as their window has moved on (its end is past: the next minute or hour), so that their
// window is the one the live tables above show.
const BELOW = [['region', 'regions'], ['agent_team', 'teams']];
const BELOW_REFRESH = 15000;
const belowTables = Object.fromEntries(BELOW.map(([dim, id]) => [dim, new SortedTable($(id), (rows) => {
  const body = $(id).tBodies[0];
  if (!rows.length) return emptyBody(body, 2 + TABLE_FIGURES.length, 'no events in this window');
  body.replaceChildren(...rows.map((r) => {
    const row = rowOf(r, [r.name || 'not given']);
    row.dataset.member = r.name;
    return row;
  }));
})]));
let belowKey = '';
let belowAt = 0;
let belowTo = 0; // the end of the window of the last answer (ms)
let belowAsked = 0; // the number of the latest reading: an older answer is dropped

async function refreshBelow(pathChanged) {
  const sub = live.sub;
  const chosen = sub.filters && sub.filters.touchpoint;
  $('below').hidden = !chosen;
  if (!chosen) {
    belowKey = '';
    return;
  }
  const key = JSON.stringify([sub.window, sub.filters]);
  // At most every 2 s whatever the window says (a client clock ahead of the server's would
  // otherwise see every window as past).
  const since = Date.now() - belowAt;
  if (!pathChanged && key === belowKey && (since < 2000 || since < BELOW_REFRESH && Date.now() < belowTo)) return;
  if (key !== belowKey) {
    for (const [, id] of BELOW) emptyBody($(id).tBodies[0], 2 + TABLE_FIGURES.length, 'waiting for data…');
  }
  belowKey = key;
  belowAt = Date.now();
  const asked = ++belowAsked;
  $('below-title').textContent = `Regions and teams of ${chosen.join(', ')}, compared with the previous period`;
  await Promise.all(BELOW.map(async ([dim, id]) => {
    try {
      const r = await fetch(metricsQuery(sub, [dim], 'json'), {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
      const res = await r.json();
      if (!r.ok) throw new Error(`HTTP ${r.status}: ${res.error || ''}`);
      if (asked !== belowAsked) return;
      belowTo = Date.parse(res.to);
      belowTables[dim].show(res.rows.map((x) => Object.assign({name: x[dim] || ''}, x)));
    } catch (e) {
      if (asked !== belowAsked) return;
      belowTo = Infinity; // tried again after BELOW_REFRESH
      emptyBody($(id).tBodies[0], 2 + TABLE_FIGURES.length, 'could not read: ' + e.message);
    }
  }));
}

$('touchpoints').addEventListener('click', (e) => {
  const row = e.target.closest('tr[data-touchpoint]');
  if (row) navigate({moment: row.dataset.moment, channel: row.dataset.channel, touchpoint: row.dataset.touchpoint});
});

// ---- latest negative moments ----

const pad = (n, w = 2) => String(n).padStart(w, '0');
function clockMs(iso) {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
const opt = (v, f = String) => (v === null || v === undefined ? '—' : f(v));
const waitText = (ms) => (ms < 1000 ? ms + ' ms' : ms < 120000 ? (ms / 1000).toFixed(1) + ' s' : (ms / 60000).toFixed(1) + ' min');

// negativeCells are the cells of a negative moment's row: [text, class, title].
function negativeCells(n) {
  return [
    [clockMs(n.occurred_at), 'time', n.occurred_at],
    [`${n.moment} · ${n.channel} · ${n.touchpoint}`, '', ''],
    [(n.reasons && n.reasons.length ? n.reasons : ['negative']).join(', '), 'reason', ''],
    [opt(n.csat), 'num', ''],
    [opt(n.nps), 'num', ''],
    [opt(n.ces), 'num', ''],
    [opt(n.sentiment, (v) => v.toFixed(2)), 'num', ''],
    [opt(n.wait_ms, waitText), 'num', ''],
    [[n.region, n.segment, n.agent_team].map((v) => v || '—').join(' · '), '', n.journey_id ? 'journey ' + n.journey_id : ''],
  ];
}

// renderNegatives shows the latest negative moments, newest first. Rows are keyed by event_id
// and kept across ticks: a row is created once, its cells are written only when they change,
// and it is moved only when the order changes, so the list updates in place without flicker.
// A snapshot (first message, or a new drill path) marks no row as arrived.
const negativeRows = new Map(); // event_id → <tr>
function renderNegatives(list, snapshot) {
  const body = $('negatives').tBodies[0];
  list = list || [];
  const keep = new Set(list.map((n) => n.event_id));
  for (const [id, row] of negativeRows) {
    if (!keep.has(id)) {
      row.remove();
      negativeRows.delete(id);
    }
  }
  let placeholder = body.querySelector('tr.placeholder');
  if (!list.length) {
    if (!placeholder) {
      placeholder = document.createElement('tr');
      placeholder.className = 'placeholder';
      placeholder.innerHTML = '<td colspan="9" class="empty"></td>';
      body.append(placeholder);
    }
    placeholder.firstChild.textContent = 'no negative moments in this window';
    return;
  }
  if (placeholder) placeholder.remove();
  list.forEach((n, i) => {
    let row = negativeRows.get(n.event_id);
    if (!row) {
      row = document.createElement('tr');
      row.dataset.eventId = n.event_id;
      if (!snapshot) row.classList.add('arrived');
      negativeCells(n).forEach(() => row.append(document.createElement('td')));
      negativeRows.set(n.event_id, row);
    }
    negativeCells(n).forEach(([text, cls, title], j) => {
      const td = row.cells[j];
      if (td.textContent !== text) td.textContent = text;
      if (td.className !== cls) td.className = cls;
      if (td.title !== title) td.title = title;
    });
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
  });
}

function renderConsistency(list) {
  for (const m of MOMENTS) {
    const el = document.querySelector(`[data-cci="${m}"]`);
    const c = (list || []).find((x) => x.moment === m);
    el.textContent = c && c.cci && c.cci.value !== null
      ? `CCI ${c.cci.value.toFixed(2)} (n = ${c.cci.n})`
      : `CCI: not enough data${c && c.cci ? ` (n = ${c.cci.n})` : ''}`;
  }
}

const banner = new AlertBanner();
const annotations = new AnnotationLayer(charts);
// An admin adds an annotation by clicking the trend's time axis, scoped to the drilled cell.
const annotating = enableAnnotating(charts, () => {
  const q = new URLSearchParams(location.search);
  return {moment: q.get('moment') || '', channel: q.get('channel') || ''};
});
const live = new Live({
  subscription: subscriptionFromURL('drilldown'),
  badge: $('badge'),
  onAlerts: (alerts) => banner.render(alerts),
  onMessage(m) {
    if (m.data) {
      renderTiles(kpis, m.data.kpis);
      renderTouchpoints(m.data.touchpoints);
      renderMembers(m.data.members);
      renderNegatives(m.data.negatives, m.type === 'snapshot');
      renderConsistency(m.data.consistency);
      refreshBelow(false);
    }
    if (m.type === 'snapshot') hideTooltips(charts);
    charts.apply(m);
    annotations.render(m.annotations, m);
    annotating.hook();
  },
});
// Export: the drill path's touchpoints with their changes, the path's total as the last row.
bindExport($('export'), () => metricsQuery(live.sub, ['moment', 'channel', 'touchpoint']));
// and below a touchpoint, each table: its regions, its teams.
for (const [dim] of BELOW) bindExport($(`export-${dim}`), () => metricsQuery(live.sub, [dim]));
window.addEventListener('popstate', fromURL);
fromURL();
live.start();
adminLink();
window.truthboard = {live, charts, annotations, annotating};
