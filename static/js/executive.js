import {ChartSet, Live, badgeHTML, hasECharts, subscriptionFromURL, WINDOWS} from './live.js';
import {AlertBanner} from './alerts.js';
import {AnnotationLayer} from './annotations.js';
import {bindExport, metricsQuery} from './export.js';
import {adminLink} from './nav.js';
import {heatmapDecoration, hideTooltips, renderTiles, tilesHTML, trendTooltip} from './judgement.js';

hasECharts();
const kpis = document.getElementById('kpis');
kpis.innerHTML = tilesHTML();
const badge = document.getElementById('badge');
badge.innerHTML = badgeHTML;

// decorate adds what JSON cannot carry: the heatmap's cell texts and tooltips, and trend
// tooltips that list a moment once although its partial buckets are a series of their own.
function decorate(name, opt) {
  const el = document.querySelector(`[data-chart="${name}"]`);
  if (name === 'heatmap') return Object.assign({toolbox: {show: false}}, heatmapDecoration(opt, el));
  // The first time label starts at its tick instead of centring on it, so that it stays clear
  // of the value axis' 0 when a tick falls at the window's start; midnight reads "Dec 7", not "7".
  if (name.startsWith('trend_')) return {toolbox: {show: false}, tooltip: {formatter: trendTooltip}, xAxis: [{axisLabel: {margin: 14, alignMinLabel: 'left', formatter: {day: '{MMM} {d}'}}}]};
  return {toolbox: {show: false}};
}

const charts = new ChartSet({decorate, renderer: 'svg'});
const banner = new AlertBanner();
const annotations = new AnnotationLayer(charts);
const live = new Live({
  subscription: subscriptionFromURL('executive'),
  badge,
  onAlerts: (alerts) => banner.render(alerts),
  onMessage(m) {
    if (m.data) renderTiles(kpis, m.data.kpis);
    if (m.type === 'snapshot') hideTooltips(charts);
    charts.apply(m);
    annotations.render(m.annotations, m);
  },
});

const sel = document.getElementById('window');
sel.value = live.sub.window;
sel.addEventListener('change', () => {
  if (!WINDOWS.includes(sel.value)) return;
  const u = new URL(location.href);
  u.searchParams.set('window', sel.value);
  history.replaceState(null, '', u);
  live.resubscribe(subscriptionFromURL('executive'));
});
// Export: the heatmap's cells with their changes, the total as the last row.
bindExport(document.getElementById('export'), () => metricsQuery(live.sub, ['moment', 'channel']));
live.start();
adminLink();
window.truthboard = {live, charts, annotations};
