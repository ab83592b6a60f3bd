// judgement.js: how the dashboards show a figure, its change against the previous period and
// the server's judgement of that change (data.kpis.judgement, the heatmap's cells, the
// touchpoints' rows). A change is coloured only when the server says it is better or worse:
// significant, large enough to matter and on enough answers. Everything else is grey, with
// its n. The page never decides this itself.

const num = (v, d = 0) => v.toLocaleString([], {minimumFractionDigits: d, maximumFractionDigits: d});
const sign = (v) => (v > 0 ? '+' : v < 0 ? '−' : '±');

// duration writes milliseconds for a screen: 850 ms, 48 s, 4.6 min, 3.2 h.
export function duration(ms) {
  const a = Math.abs(ms);
  if (a < 1000) return num(ms, 0) + ' ms';
  if (a < 120000) return num(ms / 1000, a < 10000 ? 1 : 0) + ' s';
  if (a < 7200000) return num(ms / 60000, 1) + ' min';
  return num(ms / 3600000, 1) + ' h';
}

const pct = (v) => num(v * 100, 1) + '%';
const pts = (d) => sign(d) + num(Math.abs(d * 100), 1) + ' pts';

// FIGURES are the figures of the tiles and tooltips, by their JSON name: label, short label
// (heatmap cells), value format and change format.
export const FIGURES = {
  nps: {label: 'NPS', short: 'NPS', fmt: (v) => num(v, 0), delta: (d) => sign(d) + num(Math.abs(d), 1)},
  csat: {label: 'CSAT', short: 'CSAT', fmt: pct, delta: pts},
  ces: {label: 'CES', short: 'CES', fmt: (v) => num(v, 2), delta: (d) => sign(d) + num(Math.abs(d), 2)},
  events: {label: 'Volume', short: 'volume', fmt: (v) => num(v, 0), delta: (d) => sign(d) + num(Math.abs(d), 0)},
  negative_rate: {label: 'Negative moments', short: 'negative', fmt: pct, delta: pts},
  abandonment: {label: 'Abandonment', short: 'abandon', fmt: pct, delta: pts},
  wait_p50_ms: {label: 'Wait p50', short: 'wait p50', fmt: duration, delta: (d) => sign(d) + duration(Math.abs(d))},
  wait_p90_ms: {label: 'Wait p90', short: 'wait p90', fmt: duration, delta: (d) => sign(d) + duration(Math.abs(d))},
};

// TILES are the KPI tiles, in order.
export const TILES = ['nps', 'csat', 'ces', 'events', 'negative_rate', 'abandonment', 'wait_p90_ms'];

const TESTS = {
  two_proportions: 'two-proportion test',
  mean_difference: 'difference of means',
  share_above_previous: 'share of waits above the previous percentile',
  poisson_rate: 'Poisson rate test',
};

// pText writes a p-value as a screen shows it.
export function pText(p) {
  if (p === null || p === undefined) return '';
  // Two significant digits below 0.01, so that a p of 0.0014 does not read as the 0.001 a
  // colour needs.
  if (p < 0.001) return 'p < 0.001';
  return 'p = ' + (p < 0.01 ? p.toPrecision(2) : p.toFixed(2));
}

// verdictClass is the class of a change: good, bad or flat (neutral, grey).
export function verdictClass(j) {
  if (!j) return 'flat';
  return j.verdict === 'better' ? 'good' : j.verdict === 'worse' ? 'bad' : 'flat';
}

// why is one short line on a judgement: what the colour (or its absence) rests on.
export function why(j) {
  if (!j) return '';
  switch (j.reason) {
    case 'significant':
      return (j.verdict === 'neutral' ? 'real change · ' : j.verdict + ' · ') + pText(j.p);
    case 'too_small':
      return 'too small to matter · ' + pText(j.p);
    case 'not_significant':
      return 'not significant · ' + pText(j.p);
    case 'too_few':
      return `too few to judge · n ${num(j.n || 0)} / ${num(j.n_previous || 0)} before`;
    case 'untestable':
      return 'cannot be tested';
  }
  return '';
}

// explain is the full sentence of a judgement, for a title or a tooltip.
export function explain(j) {
  if (!j) return 'no comparison with the previous period';
  const test = TESTS[j.test] || j.test;
  const ns = `n = ${num(j.n || 0)} now, ${num(j.n_previous || 0)} before`;
  switch (j.reason) {
    case 'significant':
      return (j.verdict === 'neutral' ? 'A real change (neither good nor bad)' : `Significantly ${j.verdict}`) +
        ` than the previous period: ${test}, ${pText(j.p)}; ${ns}.`;
    case 'too_small':
      return `A real change, but too small to matter: ${test}, ${pText(j.p)}; ${ns}.`;
    case 'not_significant':
      return `Within chance: ${test}, ${pText(j.p)}; ${ns}.`;
    case 'too_few':
      return `Too few answers to judge the change (${ns}).`;
    case 'untestable':
      return `The change cannot be tested (${ns}).`;
  }
  return ns;
}

// deltaText is a change with its arrow: ▲ +3.3 pts, or "—" when unknown.
export function deltaText(name, d) {
  if (d === null || d === undefined) return '—';
  return (d > 0 ? '▲ ' : d < 0 ? '▼ ' : '') + FIGURES[name].delta(d);
}

// ---- KPI tiles ----

// tilesHTML is the markup of the tiles, filled by renderTiles.
export function tilesHTML(names = TILES) {
  return names.map((k) => `<div class="tile" data-kpi="${k}"><div class="label">${FIGURES[k].label}</div>` +
    '<div class="value nodata">…</div><div class="meta"><span class="n"></span>' +
    '<span class="delta flat"></span></div><div class="why"></div></div>').join('');
}

// renderTiles fills the .tile[data-kpi] elements inside root from data.kpis: the value (or
// "not enough data"), its n, the change coloured by its judgement, and what that rests on.
export function renderTiles(root, kpis) {
  if (!kpis) return;
  for (const tile of root.querySelectorAll('.tile[data-kpi]')) {
    const k = tile.dataset.kpi;
    const f = FIGURES[k];
    let value;
    let n;
    if (k === 'events') {
      value = kpis.events;
    } else {
      value = kpis[k] ? kpis[k].value : null;
      n = kpis[k] ? kpis[k].n : 0;
    }
    const v = tile.querySelector('.value');
    const nodata = value === null || value === undefined;
    v.textContent = nodata ? 'not enough data' : f.fmt(value);
    v.classList.toggle('nodata', nodata);
    tile.querySelector('.n').textContent = k === 'events' ? num(kpis.rate_per_s || 0, 2) + ' / s' : 'n = ' + num(n || 0, 0);
    const d = kpis.delta ? kpis.delta[k] : null;
    const j = kpis.judgement ? kpis.judgement[k] : null;
    const dEl = tile.querySelector('.delta');
    const cls = d === null || d === undefined ? 'flat' : verdictClass(j);
    dEl.textContent = d === null || d === undefined ? 'vs previous: —' : deltaText(k, d);
    dEl.classList.remove('good', 'bad', 'flat');
    dEl.classList.add(cls);
    tile.dataset.verdict = j ? j.verdict : 'neutral';
    const w = tile.querySelector('.why');
    w.textContent = d === null || d === undefined ? 'no value in the previous period' : why(j);
    tile.title = explain(j);
  }
}

// ---- charts ----

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

// changeLine is one figure's line of a heatmap tooltip.
function changeLine(c, withValue) {
  const f = FIGURES[c.figure];
  const value = c.value === null ? `not enough data (n = ${num(c.n)})` : `${f.fmt(c.value)} (n = ${num(c.n)})`;
  const cls = verdictClass(c);
  const colour = cls === 'good' ? '#1a7f37' : cls === 'bad' ? '#c62828' : '#5b6776';
  const change = c.by === null ? 'no change known (no value in the previous period)'
    : `<span style="color:${colour};font-weight:600">${esc(deltaText(c.figure, c.by))}</span> vs n = ${num(c.n_previous || 0)} before: ${esc(why(c))}`;
  return `${esc(f.label)}${withValue ? ' ' + esc(value) : ''}<br>&nbsp;&nbsp;${change}`;
}

// heatmapTooltip is the tooltip of a heatmap cell: its CSAT with n, CSAT's change and every
// other significant change.
export function heatmapTooltip(p, moment, channel) {
  const d = p.data || {};
  const v = d.value || [];
  const title = `<b>${esc(moment)} · ${esc(channel)}</b>`;
  if (!d.csat) return `${title}<br>no events in this window`;
  const lines = [`${title} · ${num(d.events || 0)} events`];
  lines.push(changeLine(d.csat, true));
  for (const c of d.changes || []) {
    if (c.figure !== 'csat') lines.push(changeLine(c, true));
  }
  if (v[3] === 2) lines.push(`<span style="color:#5b6776">too few answers to judge any change (needs 30 a period)</span>`);
  return lines.join('<br>');
}

// compact is a change in few characters, for a heatmap cell: whole points of a share.
function compact(name, d) {
  if (FIGURES[name].fmt === pct) return sign(d) + num(Math.abs(d * 100), 0) + ' pts';
  return FIGURES[name].delta(d);
}

// heatmapLabel is a cell's text: its CSAT (rich text style v), and on a wide cell the change
// that coloured it (style c). A cell without CSAT answers says so, with its n. size is the
// cell's: 'wide', 'normal', or 'narrow' (a phone: the figure without its % sign).
export function heatmapLabel(p, size) {
  const d = p.data || {};
  const v = d.value || [];
  const wide = size === 'wide';
  let text;
  if (v[2] !== '-' && v[2] !== undefined) text = num(v[2], 0) + (size === 'narrow' ? '' : '%');
  else if (!wide) text = '·';
  else text = d.n ? `n = ${num(d.n)}` : 'no CSAT';
  text = `{v|${text}}`;
  const first = (d.changes || [])[0];
  if (wide && first && first.by !== null) text += `\n{c|${FIGURES[first.figure].short} ${compact(first.figure, first.by)}}`;
  return text;
}

// LIGHT_LABEL is the colour of cell texts on the light theme: dark with a light outline, which
// reads on every cell colour.
const LIGHT_LABEL = {color: '#111', textBorderColor: '#fff', textBorderWidth: 2};

// heatmapDecoration adds the cell texts and tooltips to the heatmap of options o, drawn in
// element el: fontSize is the size of the CSAT figure, small that of the second line relative
// to it, style the colours of the texts;
// tooltip false leaves tooltips out (the TV wall has no pointer). A cell at least minCell
// pixels wide gets a second, smaller line with the change that coloured it; one under 44
// pixels (a phone) a smaller figure.
export function heatmapDecoration(o, el, {tooltip = true, minCell = 90, fontSize = 13, small = 0.8, style = LIGHT_LABEL} = {}) {
  const channels = o.xAxis[0].data;
  const moments = o.yAxis[0].data;
  const cell = el.clientWidth / channels.length;
  const size = cell >= minCell ? 'wide' : cell < 44 ? 'narrow' : 'normal';
  const v = size === 'narrow' ? fontSize * 0.8 : fontSize;
  const rich = {
    v: Object.assign({fontSize: v, fontWeight: 'bold', lineHeight: v * 1.35, align: 'center'}, style),
    c: Object.assign({fontSize: fontSize * small, lineHeight: fontSize * 1.1, align: 'center'}, style),
  };
  const series = {label: Object.assign({formatter: (p) => heatmapLabel(p, size), rich}, style)};
  if (tooltip) {
    // The light pages' layout (the TV wall takes only the series): on a phone the channels
    // stand upright, so that no name runs into the next one, and the colour legend is a
    // column at the bottom left instead of a row wider than the screen. The desktop values
    // are restored when the window grows again.
    const narrow = size === 'narrow';
    // No animation: ECharts would turn the labels from one angle to the other over a second.
    const out = {
      animation: false,
      series: [series],
      xAxis: [{axisLabel: {rotate: narrow ? 90 : 30, fontSize: narrow ? 11 : 12}}],
      grid: [{bottom: narrow ? 92 : 40}],
      visualMap: [narrow ? {orient: 'vertical', left: 4, bottom: 0, itemGap: 4, itemHeight: 12, textStyle: {fontSize: 11}}
        : {orient: 'horizontal', left: 'center', bottom: 0, itemGap: 10, itemHeight: 14, textStyle: {fontSize: 12}}],
    };
    series.tooltip = {
      formatter: (p) => {
        const v = (p.data && p.data.value) || [];
        return heatmapTooltip(p, moments[v[1]], channels[v[0]]);
      },
    };
    return out;
  }
  return {series: [series]};
}

// hideTooltips hides the tooltips of a ChartSet's charts. Call it before a snapshot replaces
// their options: ECharts 5.6 re-shows a tooltip that is up when its chart is updated, and after
// a snapshot (options replaced, not merged) that re-show can reach a tooltip element it already
// removed, which throws (seen in the drill-down right after a click on a heatmap cell).
export function hideTooltips(charts) {
  for (const c of charts.charts.values()) c.dispatchAction({type: 'hideTip'});
}

// trendTooltip lists each moment once: the dashed (partial) series and the solid one share a
// name, and one of the two has a gap at every point.
export function trendTooltip(params) {
  const list = Array.isArray(params) ? params : [params];
  if (!list.length) return '';
  const seen = new Map();
  for (const p of list) {
    const y = Array.isArray(p.value) ? p.value[1] : p.value;
    if (y === '-' || y === null || y === undefined) continue;
    seen.set(p.seriesName, {marker: p.marker, y, partial: p.seriesIndex >= 5});
  }
  const t = new Date(Array.isArray(list[0].value) ? list[0].value[0] : list[0].axisValue);
  const head = t.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
  const rows = [...seen].map(([name, s]) => `${s.marker}${esc(name)} <b>${num(s.y, 1)}</b>${s.partial ? ' (partial)' : ''}`);
  return [head, ...rows].join('<br>');
}
