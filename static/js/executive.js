import {ChartSet, Live, badgeHTML, hasECharts, subscriptionFromURL, WINDOWS} from './live.js';
import {AlertBanner} from './alerts.js';
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
  if (name.startsWith('trend_')) return {toolbox: {show: false}, tooltip: {formatter: trendTooltip}};
  return {toolbox: {show: false}};
}

const charts = new ChartSet({decorate});
const banner = new AlertBanner();
const live = new Live({
  subscription: subscriptionFromURL('executive'),
  badge,
  onAlerts: (alerts) => banner.render(alerts),
  onMessage(m) {
    if (m.data) renderTiles(kpis, m.data.kpis);
    if (m.type === 'snapshot') hideTooltips(charts);
    charts.apply(m);
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
live.start();
adminLink();
window.truthboard = {live, charts};
