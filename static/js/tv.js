import {ChartSet, Live, badgeHTML, hasECharts, subscriptionFromURL} from './live.js';
import {BreachPin} from './tvpin.js';
import {AnnotationLayer} from './annotations.js';
import {heatmapDecoration, renderTiles, tilesHTML} from './judgement.js';

// The TV wall: no controls; the URL sets window, filters and rotate (e.g. rotate=30s, rotate=0
// to stay on the first panel).
hasECharts();
const $ = (id) => document.getElementById(id);
$('kpis').innerHTML = tilesHTML();
$('badge').innerHTML = badgeHTML;

function rotateMs() {
  const r = new URLSearchParams(location.search).get('rotate');
  if (r === null || r === '') return 20000;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(r.trim());
  if (!m) return 20000;
  const ms = parseFloat(m[1]) * ({ms: 1, s: 1000, m: 60000}[m[2] || 's']);
  return ms === 0 ? 0 : Math.max(3000, ms);
}

// Type and chart text scale with the screen's width: the same layout on 1080p and 4K.
const unit = () => Math.max(12, Math.min(64, window.innerWidth / 80));
const fg = '#e6edf3';
const dim = '#9aa7b4';
// The heatmap's judgement colours on the dark theme, by the cell's code (see chart.Heatmap):
// red and green stay, "no significant change" and "too few to judge" become dark.
const dark = {'-1': '#da3633', 0: '#3b4654', 1: '#2ea043', 2: '#262d38'};

function decorate(name, opt) {
  const f = unit();
  const series = (opt.series || []).map((s) => {
    if (s.type === 'heatmap') return {itemStyle: {borderColor: '#0d1117', borderWidth: Math.max(2, f / 8)}};
    if (s.type === 'line') return {lineStyle: {width: Math.max(2, f / 8)}, symbolSize: f / 3};
    return {label: {fontSize: f * 0.8}};
  });
  // Axis figures and names at 2.5% of a 16:9 screen's height (f is 2.2%), read from 5 m.
  const axis = {axisLabel: {fontSize: f * 1.15, color: dim, margin: f * 0.6}, nameTextStyle: {fontSize: f * 1.15}};
  const o = {
    backgroundColor: 'transparent',
    animationDurationUpdate: 600,
    toolbox: {show: false},
    textStyle: {fontSize: f},
    title: {textStyle: {fontSize: f * 1.1, color: fg}, left: f * 0.5, top: f * 0.3, itemGap: f * 0.4},
    legend: {textStyle: {fontSize: f * 0.8, color: dim}, itemWidth: f * 1.2, itemHeight: f * 0.7, top: f * 0.3, right: f},
    tooltip: {show: false},
    series,
  };
  if (opt.xAxis) o.xAxis = axis;
  if (opt.yAxis) o.yAxis = axis;
  // A heatmap narrower than 44 px a channel (the wall's link opened on a phone): the channels
  // stand upright and the colour legend is a column, as on the light pages.
  const el = document.querySelector(`[data-chart="${name}"]`);
  const narrow = name === 'heatmap' && el.clientWidth / opt.xAxis[0].data.length < 44;
  if (narrow) o.xAxis = Object.assign({}, axis, {axisLabel: Object.assign({}, axis.axisLabel, {rotate: 90})});
  if (opt.grid) o.grid = {top: f * 3.5, left: f * 1.5, right: f * 2, bottom: name === 'heatmap' ? f * (narrow ? 8 : 5) : f * 1.5, containLabel: true};
  if (opt.visualMap) {
    const vm = opt.visualMap[0];
    o.visualMap = {itemWidth: f * 1.4, itemHeight: f * 0.9, itemGap: narrow ? f * 0.3 : f, textStyle: {fontSize: f * 0.8, color: dim}, bottom: 0,
      orient: narrow ? 'vertical' : 'horizontal', left: narrow ? 0 : 'center',
      pieces: (vm.pieces || []).map((p) => Object.assign({}, p, {color: dark[p.value] || p.color}))};
  }
  if (name === 'heatmap') {
    // Cell texts, with the change that coloured a cell; no tooltips without a pointer.
    const h = heatmapDecoration(opt, el, {
      tooltip: false, minCell: 110, fontSize: f * 1.25, small: 0.56, style: {color: fg, textBorderColor: '#000', textBorderWidth: 2},
    });
    Object.assign(o.series[0], h.series[0]);
    o.title.subtextStyle = {fontSize: f * 0.75, color: dim};
  }
  return o;
}

const charts = new ChartSet({theme: 'dark', decorate});
const annotations = new AnnotationLayer(charts);
const live = new Live({
  subscription: subscriptionFromURL('tv'),
  badge: $('badge'),
  onAlerts: (alerts) => pin.update(alerts),
  onMessage(m) {
    if (m.data) renderTiles($('kpis'), m.data.kpis);
    charts.apply(m);
    annotations.render(m.annotations, m);
  },
});

// Rotation: panels are stacked and cross-faded; every chart stays alive and sized, so a
// panel coming back shows the latest data without being redrawn from scratch.
const panels = [...document.querySelectorAll('#panels > .panel')];
const dots = $('dots');
dots.innerHTML = panels.map(() => '<span></span>').join('');
let current = 0;
function show(i) {
  current = i;
  panels.forEach((p, j) => p.classList.toggle('active', i === j));
  [...dots.children].forEach((d, j) => d.classList.toggle('on', i === j));
  $('panel-title').textContent = panels[i].dataset.title;
}
show(0);

// A firing alert holds the wall on the moments × channels panel, its cell framed (tvpin.js);
// several take turns at the rotation's pace (every 10 s when the rotation is off).
const pin = new BreachPin({
  panelIndex: Math.max(0, panels.findIndex((p) => p.querySelector('[data-chart="heatmap"]'))),
  show, charts, card: $('breach'),
});
const every = rotateMs();
setInterval(() => {
  if (pin.pinned) pin.next();
  else if (every > 0) show((current + 1) % panels.length);
}, every || 10000);

function tickClock() {
  $('clock').textContent = new Date().toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', hour12: false});
}
tickClock();
setInterval(tickClock, 1000);

live.start();
window.truthboard = {live, charts, show, pin, annotations};
