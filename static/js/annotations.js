// annotations.js: the annotations on the trend charts (docs/api.md#annotations). Each live
// message carries the annotations of the feed's window and scope (docs/live-protocol.md,
// "annotations"); AnnotationLayer draws them on every trend chart as a dashed line (a mark) or
// a shaded band (a region), in a series of their own that the server's updates never touch.
// Clicking one opens a panel with its text and its impact: the figures of its scope before
// against during and after it, each change with its test (GET /v1/annotations/{id}/impact).
// On the drill-down, enableAnnotating lets an admin add one by clicking a trend chart's time
// axis. Text only: nothing of an annotation is ever parsed as HTML.

import {authHeaders, timeOf} from './live.js';

const SERIES_ID = 'annotations';
const MARK_COLOUR = '#d9480f';
const AREA_COLOUR = 'rgba(217, 72, 15, 0.12)';

// The stylesheet of the panel and the form, loaded once by whichever page imports this.
(() => {
  if (document.querySelector('link[data-annotations]')) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/assets/css/annotations.css';
  link.dataset.annotations = '';
  document.head.append(link);
})();

function short(s, n) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

// annotationSeries is the series that carries the marks and regions of list, their labels in
// px of fontSize on a box of the page's background (labelBackground), so that a trend line
// crossing a label does not cut through its text.
export function annotationSeries(list, fontSize = 11, labelBackground = 'rgba(255, 255, 255, 0.85)') {
  const box = {backgroundColor: labelBackground, padding: [1, 3], borderRadius: 3};
  const marks = list.filter((a) => a.timeEnd <= a.time);
  const regions = list.filter((a) => a.timeEnd > a.time); // AnnotationLayer.render splits them the same way
  return {
    id: SERIES_ID,
    name: SERIES_ID,
    type: 'line',
    data: [],
    silent: false,
    animation: false,
    // Above the trend lines (z 2), so that a line never runs through a label; the regions'
    // fill is translucent and the lines show through it.
    z: 3,
    tooltip: {show: false},
    markLine: {
      silent: false,
      symbol: ['none', 'none'],
      animation: false,
      lineStyle: {color: MARK_COLOUR, type: 'dashed', width: 1.5},
      label: {show: true, position: 'insideEndTop', color: MARK_COLOUR, fontSize, ...box,
        formatter: (p) => short(p.name || '', 24)},
      emphasis: {lineStyle: {width: 3}},
      data: marks.map((a) => ({xAxis: a.time, name: a.text, annotationId: a.id})),
    },
    markArea: {
      silent: false,
      animation: false,
      itemStyle: {color: AREA_COLOUR, borderColor: MARK_COLOUR, borderWidth: 1, borderType: 'dashed'},
      label: {show: true, position: 'insideTop', color: MARK_COLOUR, fontSize, ...box,
        formatter: (p) => short(p.name || '', 24)},
      data: regions.map((a) => [{xAxis: a.time, name: a.text, annotationId: a.id}, {xAxis: a.timeEnd}]),
    },
  };
}

// AnnotationLayer keeps the annotations of the latest message on every trend chart of charts
// (a ChartSet of live.js); labelSize gives their labels' size in px when they are drawn (the
// TV wall's scale with the screen, to be read from afar), labelBackground the colour behind them.
export class AnnotationLayer {
  constructor(charts, {isTrend = (name) => name.startsWith('trend_'), labelSize = () => 11, labelBackground} = {}) {
    this.charts = charts;
    this.isTrend = isTrend;
    this.labelSize = labelSize;
    this.labelBackground = labelBackground;
    this.list = [];
    this.key = '';
    this.marks = [];
    this.regions = [];
    this.hooked = new WeakSet();
    this.panel = null;
  }

  // render draws list after the message m has been applied to the charts: always after a
  // snapshot (which replaces every option), else only when the annotations changed.
  render(list, m) {
    list = list || [];
    const key = JSON.stringify(list);
    if (key === this.key && !(m && m.type === 'snapshot')) return;
    this.key = key;
    this.list = list;
    this.marks = list.filter((a) => a.timeEnd <= a.time);
    this.regions = list.filter((a) => a.timeEnd > a.time);
    const series = annotationSeries(list, this.labelSize(), this.labelBackground);
    for (const [name, c] of this.charts.charts) {
      if (!this.isTrend(name)) continue;
      c.setOption({series: [series]});
      if (!this.hooked.has(c)) {
        this.hooked.add(c);
        c.on('click', (p) => {
          // The series lists marks and regions apart, in the order of annotationSeries.
          const from = p.componentType === 'markLine' ? this.marks : p.componentType === 'markArea' ? this.regions : null;
          const a = from && from[p.dataIndex];
          if (a) this.open(a);
        });
      }
    }
    document.body.dataset.annotations = String(list.length);
  }

  // open shows the panel of annotation a and loads its impact.
  async open(a) {
    const panel = this.ensurePanel();
    panel.hidden = false;
    panel.dataset.id = a.id;
    const head = panel.querySelector('.head');
    head.replaceChildren();
    const title = document.createElement('strong');
    title.textContent = a.text;
    const when = document.createElement('span');
    when.className = 'when';
    when.textContent = describeTime(a) + (a.moment || a.channel ? ' · ' + [a.moment, a.channel].filter(Boolean).join(' › ') : '');
    const tags = document.createElement('span');
    tags.className = 'tags';
    tags.textContent = (a.tags || []).map((t) => '#' + t).join(' ');
    head.append(title, when, tags);
    const body = panel.querySelector('.impact');
    body.textContent = 'Measuring the change…';
    try {
      const r = await fetch(`/v1/annotations/${encodeURIComponent(a.id)}/impact`,
        {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
      const j = await r.json();
      if (panel.dataset.id !== a.id) return;
      if (!r.ok) {
        body.textContent = j.error || ('the impact could not be read (' + r.status + ')');
        return;
      }
      body.replaceChildren(impactTable(j));
    } catch (e) {
      body.textContent = 'the impact could not be read: ' + e.message;
    }
  }

  ensurePanel() {
    if (this.panel) return this.panel;
    const panel = document.createElement('aside');
    panel.id = 'annotation-panel';
    panel.className = 'annotation-panel';
    panel.hidden = true;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'close';
    close.textContent = '×';
    close.title = 'Close';
    close.addEventListener('click', () => { panel.hidden = true; });
    const head = document.createElement('div');
    head.className = 'head';
    const body = document.createElement('div');
    body.className = 'impact';
    panel.append(close, head, body);
    document.body.append(panel);
    this.panel = panel;
    return panel;
  }
}

function describeTime(a) {
  const day = (ms) => new Date(ms).toLocaleDateString([], {month: 'short', day: 'numeric'});
  const at = (ms) => day(ms) + ' ' + timeOf(new Date(ms).toISOString());
  return a.timeEnd > a.time ? at(a.time) + ' – ' + at(a.timeEnd) : at(a.time);
}

const FIGURES = {
  csat: ['CSAT', (v) => (v * 100).toFixed(1) + '%', (d) => (d * 100).toFixed(1) + ' pts'],
  nps: ['NPS', (v) => v.toFixed(0), (d) => d.toFixed(1)],
  ces: ['CES', (v) => v.toFixed(2), (d) => d.toFixed(2)],
  negative_rate: ['Negative', (v) => (v * 100).toFixed(1) + '%', (d) => (d * 100).toFixed(1) + ' pts'],
  abandonment: ['Abandoned', (v) => (v * 100).toFixed(1) + '%', (d) => (d * 100).toFixed(1) + ' pts'],
  events: ['Events/s', (v) => v.toFixed(2), (d) => d.toFixed(2)],
};

// impactTable is the impact as a table: one row per figure, a column pair per comparison.
function impactTable(imp) {
  const table = document.createElement('table');
  table.className = 'impact-table';
  const cell = (tag, text, cls) => {
    const c = document.createElement(tag);
    c.textContent = text;
    if (cls) c.className = cls;
    return c;
  };
  const head = document.createElement('tr');
  head.append(cell('th', ''), cell('th', 'before', 'num'));
  for (const c of imp.comparisons) head.append(cell('th', c.period + (c.span.complete ? '' : ' (so far)'), 'num'), cell('th', 'change', 'num'));
  table.append(head);
  for (const name of Object.keys(FIGURES)) {
    const [label, fmt, fmtDelta] = FIGURES[name];
    const tr = document.createElement('tr');
    tr.dataset.figure = name;
    tr.append(cell('th', label));
    const first = imp.comparisons[0] && imp.comparisons[0].changes.find((x) => x.figure === name);
    tr.append(cell('td', first ? figureText(first.before, fmt) : '—', 'num'));
    for (const c of imp.comparisons) {
      const x = c.changes.find((y) => y.figure === name);
      tr.append(cell('td', figureText(x.after, fmt), 'num'));
      const j = x.judgement;
      const delta = x.delta === null ? '—' : (x.delta > 0 ? '+' : '') + fmtDelta(x.delta);
      const d = cell('td', delta, 'num delta ' + j.verdict);
      d.dataset.verdict = j.verdict;
      d.title = j.p === null ? `not tested: ${j.reason.replace('_', ' ')} (n ${j.n_previous} → ${j.n})` :
        `p = ${j.p.toPrecision(2)} (${j.test.replace('_', ' ')}), n ${j.n_previous} → ${j.n}: ${j.reason.replace('_', ' ')}`;
      if (j.p !== null) d.append(cell('small', ' p ' + (j.p < 0.001 ? '< 0.001' : j.p.toFixed(3))));
      tr.append(d);
    }
    table.append(tr);
  }
  return table;
}

function figureText(f, fmt) {
  if (!f || f.value === null || f.value === undefined) return `— (n ${f ? f.n : 0})`;
  return `${fmt(f.value)} (n ${f.n})`;
}

// csrfToken returns the CSRF cookie's value, asking the server for one when there is none (a
// signed-in browser must send it back with every change).
async function csrfToken() {
  const read = () => (document.cookie.split('; ').find((c) => c.startsWith('tb_csrf=')) || '').slice(8);
  if (!read()) await fetch('/v1/annotations?limit=1', {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
  return decodeURIComponent(read());
}

// AXIS_BAND is the height, in pixels, under a trend chart's plot where a click annotates.
const AXIS_BAND = 36;

// enableAnnotating lets a click on a trend chart's time axis open a form that
// adds an annotation at that time; scope() gives the drill-down's moment and channel.
export function enableAnnotating(charts, scope, {isTrend = (name) => name.startsWith('trend_')} = {}) {
  const hooked = new WeakSet();
  const form = annotateForm(scope);
  const hook = () => {
    for (const [name, c] of charts.charts) {
      if (!isTrend(name) || hooked.has(c)) continue;
      hooked.add(c);
      // The band of the time axis: below the plot, above the legend. A click in the plot is
      // left to the marks (their panel) and the tooltip.
      c.getZr().on('click', (e) => {
        const [x, y] = [e.offsetX, e.offsetY];
        if (c.containPixel('grid', [x, y]) || !c.containPixel('grid', [x, y - AXIS_BAND])) return;
        const t = c.convertFromPixel({xAxisIndex: 0}, x);
        if (Number.isFinite(t)) form.open(Math.round(t));
      });
    }
  };
  return {hook, form};
}

function annotateForm(scope) {
  const f = document.createElement('form');
  f.id = 'annotate';
  f.className = 'annotation-panel annotate';
  f.hidden = true;
  f.autocomplete = 'off';
  const row = (label, input) => {
    const l = document.createElement('label');
    l.textContent = label + ' ';
    l.append(input);
    return l;
  };
  const title = document.createElement('strong');
  const text = Object.assign(document.createElement('input'), {name: 'text', required: true, maxLength: 1000, size: 30, placeholder: 'what happened'});
  const tags = Object.assign(document.createElement('input'), {name: 'tags', size: 20, placeholder: 'release, web'});
  const minutes = Object.assign(document.createElement('input'), {name: 'minutes', type: 'number', min: 0, value: 0, size: 4});
  const scoped = Object.assign(document.createElement('input'), {name: 'scoped', type: 'checkbox', checked: true});
  const scopeLabel = row('only', scoped);
  const save = Object.assign(document.createElement('button'), {type: 'submit', textContent: 'Add annotation'});
  const cancel = Object.assign(document.createElement('button'), {type: 'button', textContent: 'Cancel'});
  const status = document.createElement('p');
  status.className = 'status';
  f.append(title, row('Text', text), row('Tags', tags), row('Lasting (min)', minutes), scopeLabel, save, cancel, status);
  document.body.append(f);
  let at = 0;
  cancel.addEventListener('click', () => { f.hidden = true; });
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {time: at, text: text.value, tags: tags.value.split(',').map((s) => s.trim()).filter(Boolean)};
    const mins = Number(minutes.value) || 0;
    if (mins > 0) body.timeEnd = at + mins * 60000;
    const sc = scope();
    if (scoped.checked) {
      if (sc.moment) body.moment = sc.moment;
      if (sc.channel) body.channel = sc.channel;
    }
    status.textContent = 'Saving…';
    try {
      const headers = Object.assign({'Content-Type': 'application/json'}, authHeaders());
      const token = await csrfToken();
      if (token) headers['X-Csrf-Token'] = token;
      const r = await fetch('/v1/annotations', {method: 'POST', headers, credentials: 'same-origin', body: JSON.stringify(body)});
      const j = await r.json().catch(() => ({}));
      if (!r.ok) {
        status.textContent = (j.field ? j.field + ': ' : '') + (j.error || r.status);
        return;
      }
      status.textContent = '';
      f.hidden = true;
      text.value = '';
    } catch (err) {
      status.textContent = err.message;
    }
  });
  return {
    element: f,
    open(t) {
      at = t;
      const sc = scope();
      const where = [sc.moment, sc.channel].filter(Boolean).join(' › ');
      title.textContent = 'Annotate ' + new Date(t).toLocaleString([], {hour12: false});
      scopeLabel.hidden = !where;
      scopeLabel.firstChild.textContent = 'only ' + where + ' ';
      status.textContent = '';
      f.hidden = false;
      text.focus();
    },
  };
}
