import {
  CHANNELS, ChartSet, FILTERS, Live, MOMENTS, badgeHTML, hasECharts, subscriptionFromURL,
} from './live.js';
import {AlertBanner} from './alerts.js';
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

const charts = new ChartSet({
  decorate: (name, opt) => Object.assign({toolbox: {show: false}},
    name === 'heatmap' ? heatmapDecoration(opt, document.querySelector('[data-chart="heatmap"]')) : {}),
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

// TABLE_FIGURES are the touchpoints' figure columns, each with its change against the previous
// period, coloured only when the server judged it better or worse.
const TABLE_FIGURES = ['csat', 'nps', 'ces', 'negative_rate', 'abandonment', 'wait_p90_ms'];

// figureCell is the cell of one figure of a touchpoint row: value, n in the title, and the
// change with its judgement.
function figureCell(r, name) {
  const td = document.createElement('td');
  td.className = 'num';
  const f = r[name];
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

function renderTouchpoints(rows) {
  const body = $('touchpoints').tBodies[0];
  const columns = 4 + TABLE_FIGURES.length;
  rows = (rows || []).slice().sort((a, b) => b.events - a.events).slice(0, 100);
  if (!rows.length) {
    body.innerHTML = `<tr><td colspan="${columns}" class="empty">no events in this window</td></tr>`;
    return;
  }
  const tr = rows.map((r) => {
    const row = document.createElement('tr');
    row.dataset.moment = r.moment;
    row.dataset.channel = r.channel;
    row.dataset.touchpoint = r.touchpoint;
    [r.moment, r.channel, r.touchpoint, r.events.toLocaleString()].forEach((c, i) => {
      const td = document.createElement('td');
      td.textContent = c;
      if (i === 3) td.className = 'num';
      row.append(td);
    });
    for (const name of TABLE_FIGURES) row.append(figureCell(r, name));
    return row;
  });
  body.replaceChildren(...tr);
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
const live = new Live({
  subscription: subscriptionFromURL('drilldown'),
  badge: $('badge'),
  onAlerts: (alerts) => banner.render(alerts),
  onMessage(m) {
    if (m.data) {
      renderTiles(kpis, m.data.kpis);
      renderTouchpoints(m.data.touchpoints);
      renderNegatives(m.data.negatives, m.type === 'snapshot');
      renderConsistency(m.data.consistency);
    }
    if (m.type === 'snapshot') hideTooltips(charts);
    charts.apply(m);
  },
});
window.addEventListener('popstate', fromURL);
fromURL();
live.start();
adminLink();
window.truthboard = {live, charts};
