import {ChartSet, Live, badgeHTML, hasECharts, kpiTilesHTML, renderKPIs, subscriptionFromURL, WINDOWS} from './live.js';

hasECharts();
const kpis = document.getElementById('kpis');
kpis.innerHTML = kpiTilesHTML();
const badge = document.getElementById('badge');
badge.innerHTML = badgeHTML;

const charts = new ChartSet({decorate: () => ({toolbox: {show: false}})});
const live = new Live({
  subscription: subscriptionFromURL('executive'),
  badge,
  onMessage(m) {
    if (m.data) renderKPIs(kpis, m.data.kpis);
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
window.truthboard = {live, charts};
