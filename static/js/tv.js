import {ChartSet, Live, STORED_TOKEN, badgeHTML, hasECharts, subscriptionFromURL} from './live.js';
import {BreachPin} from './tvpin.js';
import {AnnotationLayer} from './annotations.js';
import {heatmapDecoration, renderTiles, tilesHTML} from './judgement.js';

// The TV wall: no controls; the URL sets window, filters and rotate (e.g. rotate=30s, rotate=0
// to stay on the first panel). A TV opened without a credential shows a pairing code
// (pairing.js); once paired it keeps its own display credential, reports a heartbeat, and
// follows the commands of the screens page: what to show (a view or a playlist), reload,
// identify, unpair.
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
  // A trend's time labels a little lower than the value axis' figures are apart from it, so
  // that the first time never touches the value axis' 0 (half a figure's height below the axis);
  // midnight reads "Dec 7", not "7".
  if (opt.xAxis) o.xAxis = name.startsWith('trend_') ? Object.assign({}, axis, {axisLabel: Object.assign({}, axis.axisLabel, {margin: f * 0.9, formatter: {day: '{MMM} {d}'}})}) : axis;
  if (opt.yAxis) o.yAxis = axis;
  // A heatmap narrower than 44 px a channel (the wall's link opened on a phone): the channels
  // stand upright and the colour legend is a column, as on the light pages.
  const el = document.querySelector(`[data-chart="${name}"]`);
  const narrow = name === 'heatmap' && el.clientWidth / opt.xAxis[0].data.length < 44;
  if (narrow) o.xAxis = Object.assign({}, axis, {axisLabel: Object.assign({}, axis.axisLabel, {rotate: 90})});
  // Every chart with axes gets a grid scaled like its texts: the trends come without one, and
  // ECharts' default (60 px from the top) put a 4K wall's title on the value axis' top figure.
  if (opt.grid || opt.xAxis) o.grid = {top: f * 3.5, left: f * 1.5, right: f * 2, bottom: name === 'heatmap' ? f * (narrow ? 8 : 5) : f * 1.5, containLabel: true};
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
// Annotation labels as large as the legend's text: read from the room, like every chart text.
const annotations = new AnnotationLayer(charts, {labelSize: () => unit() * 0.8, labelBackground: 'rgba(13, 17, 23, 0.85)'});
const errors = []; // the page's last errors, reported by heartbeat
window.addEventListener('error', (e) => remember(e.message));
window.addEventListener('unhandledrejection', (e) => remember(String(e.reason)));
function remember(msg) {
  errors.push(String(msg).slice(0, 200));
  if (errors.length > 5) errors.shift();
}
let version = '';
fetch(location.pathname, {method: 'HEAD', cache: 'no-store'}).then((r) => { version = r.headers.get('ETag') || ''; }).catch(() => {});

const live = new Live({
  subscription: subscriptionFromURL('tv'),
  badge: $('badge'),
  onAlerts: (alerts) => pin.update(alerts),
  onMessage(m) {
    if (m.data) renderTiles($('kpis'), m.data.kpis);
    charts.apply(m);
    annotations.render(m.annotations, m);
  },
  onCommand: command,
  onUnauthorized: startPairing,
  heartbeat: () => ({
    resolution: Math.round(innerWidth * devicePixelRatio) + 'x' + Math.round(innerHeight * devicePixelRatio),
    version,
    errors: errors.slice(),
  }),
});

// Rotation: panels are stacked and cross-faded; every chart stays alive and sized, so a
// panel coming back shows the latest data without being redrawn from scratch.
const panels = [...document.querySelectorAll('#panels > .panel')];
const PANELS = ['overview', 'heatmap', 'trends', 'journey']; // the views of docs/api.md, in order
const dots = $('dots');
dots.innerHTML = panels.map(() => '<span></span>').join('');
let current = 0;
function show(i) {
  current = i;
  panels.forEach((p, j) => p.classList.toggle('active', i === j));
  [...dots.children].forEach((d, j) => d.classList.toggle('on', i === j));
  $('panel-title').textContent = panels[i].dataset.title;
  document.body.dataset.panel = PANELS[i];
}
show(0);

// A firing alert holds the wall on the moments × channels panel, its cell framed (tvpin.js);
// several take turns at the rotation's pace (every 10 s when the rotation is off).
const pin = new BreachPin({
  panelIndex: Math.max(0, panels.findIndex((p) => p.querySelector('[data-chart="heatmap"]'))),
  show, charts, card: $('breach'),
});

// What the wall shows: the URL's rotation, or what the screens page sent: one view held, all
// panels rotating, or a playlist whose panels each bring their window, filters and dwell.
const state = {every: rotateMs(), hold: -1, playlist: null, item: -1, timer: 0, timezone: ''};
function step() {
  clearTimeout(state.timer);
  let wait = state.every || 10000;
  if (pin.pinned) {
    pin.next();
  } else if (state.playlist) {
    const items = state.playlist.items;
    state.item = (state.item + 1) % items.length; // an edited playlist is followed from here
    const it = items[state.item];
    live.resubscribe({type: 'subscribe', view: 'tv', window: it.window || '5m', filters: it.filters || {}});
    show(Math.max(0, PANELS.indexOf(it.view)));
    wait = durationMs(it.dwell) || 30000;
  } else if (state.hold >= 0) {
    show(state.hold);
  } else if (state.every > 0) {
    show((current + 1) % panels.length);
  }
  state.timer = setTimeout(step, wait);
}
state.timer = setTimeout(step, state.every || 10000);

function durationMs(d) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(d || '').trim());
  return m ? parseFloat(m[1]) * {ms: 1, s: 1000, m: 60000, h: 3600000}[m[2]] : 0;
}

// apply takes what the screens page set: a show {view, window, filters} or a playlist.
function apply(showSpec, playlist) {
  if (showSpec.playlist && playlist) {
    const same = state.playlist && state.playlist.name === playlist.name;
    state.playlist = playlist;
    state.hold = -1;
    if (!same) {
      state.item = -1;
      step();
    }
    document.body.dataset.playlist = playlist.name;
    return;
  }
  state.playlist = null;
  delete document.body.dataset.playlist;
  live.resubscribe({type: 'subscribe', view: 'tv', window: showSpec.window || '5m', filters: showSpec.filters || {}});
  state.hold = PANELS.indexOf(showSpec.view);
  if (state.hold >= 0) show(state.hold);
  document.body.dataset.view = showSpec.view || 'tv';
}

let screenName = '';
let identifyTimer = 0;
function command(m) {
  switch (m.command) {
    case 'reload':
      location.reload();
      break;
    case 'show':
      state.timezone = m.timezone || '';
      apply(m.show || {}, m.playlist);
      scheduled();
      break;
    case 'rename':
      screenName = m.name || '';
      document.body.dataset.screen = screenName;
      break;
    case 'identify':
      $('identify-name').textContent = m.name || screenName;
      $('identify').hidden = false;
      clearTimeout(identifyTimer);
      identifyTimer = setTimeout(() => { $('identify').hidden = true; }, 8000);
      break;
    case 'unpair':
      try { localStorage.removeItem(PAIRED_AT); } catch (e) { /* see startPairing */ }
      startPairing();
      break;
  }
}

// Opening hours of a playlist's schedule blank or dim the wall. They are read in the screen's
// time zone (set on the screens page; the TV's own clock without one), as the server reads them
// for the screens page (screen.Schedule.At).
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
function wallTime(now, tz) {
  if (!tz) return {hm: now.toTimeString().slice(0, 5), day: DAYS[now.getDay()]};
  const parts = {};
  for (const p of new Intl.DateTimeFormat('en-GB', {timeZone: tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23'}).formatToParts(now)) {
    parts[p.type] = p.value;
  }
  return {hm: parts.hour + ':' + parts.minute, day: parts.weekday.toLowerCase()};
}
// scheduleAt is what schedule s has the wall do at the instant now in zone tz: '' (open),
// 'blank' or 'dim'.
function scheduleAt(s, now, tz) {
  const {hm, day} = wallTime(now, tz);
  const open = s.open < s.close ? hm >= s.open && hm < s.close : hm >= s.open || hm < s.close;
  const onDay = !s.days || !s.days.length || s.days.map((d) => d.toLowerCase()).includes(day);
  return open && onDay ? '' : (s.outside === 'blank' ? 'blank' : 'dim');
}
function scheduled() {
  const s = state.playlist && state.playlist.schedule;
  document.body.classList.remove('blank', 'dim');
  if (!s) return;
  let outside = '';
  try {
    outside = scheduleAt(s, new Date(), state.timezone);
  } catch (e) { // a zone this browser does not know: its own clock, rather than a dark wall
    outside = scheduleAt(s, new Date(), '');
  }
  if (outside) document.body.classList.add(outside);
}
setInterval(scheduled, 30000);

// Pixel shift: a wall showing the same layout for weeks moves by up to 4 px every 3 minutes,
// unless its playlist turns it off.
let shift = 0;
setInterval(() => {
  if (state.playlist && state.playlist.pixel_shift === false) {
    document.body.style.transform = '';
    return;
  }
  shift = (shift + 1) % 8;
  const a = shift * Math.PI / 4;
  document.body.style.transform = `translate(${Math.round(4 * Math.cos(a))}px, ${Math.round(4 * Math.sin(a))}px)`;
}, 180000);

function tickClock() {
  $('clock').textContent = new Date().toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', hour12: false});
}
tickClock();
setInterval(tickClock, 1000);

// ---- pairing ----

const PAIRED_AT = 'truthboard.paired-at';

// startPairing forgets the screen's credential, if any, and shows a pairing code until an admin
// enters it; the TV then reloads with its new credential.
function startPairing() {
  try {
    const had = localStorage.getItem(STORED_TOKEN);
    // A node learns of a new credential within seconds (it reloads them from ClickHouse): a
    // refusal just after pairing is retried, not taken for a revocation.
    const pairedAt = Number(localStorage.getItem(PAIRED_AT) || 0);
    if (had && Date.now() - pairedAt < 20000) {
      setTimeout(() => live.connect(), 2000);
      return;
    }
    localStorage.removeItem(STORED_TOKEN);
    if (had) {
      location.reload(); // drop the revoked credential's connection and state
      return;
    }
  } catch (e) { /* no storage: the code is still shown */ }
  if (new URLSearchParams(location.search).get('token')) return; // a URL credential: keep the sign-in flow
  document.body.dataset.pairing = 'waiting';
  $('pairing').hidden = false;
  $('pair-url').textContent = location.origin + '/screens';
  // A laptop opening the wall may sign in instead; the link exists only while pairing, so the
  // wall itself has no controls.
  if (!document.querySelector('.pair-signin')) {
    const a = document.createElement('a');
    a.className = 'pair-signin';
    a.textContent = 'Sign in instead';
    a.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
    document.querySelector('.pair-box').append(a);
  }
  pairingSocket(0);
}

function pairingSocket(failures) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/v1/screens/pairing`);
  let expires = 0;
  const expiry = setInterval(() => {
    if (!expires) return;
    const s = Math.max(0, Math.round((expires - Date.now()) / 1000));
    $('pair-expiry').textContent = `This code changes in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }, 1000);
  let heard = false;
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch (err) { return; }
    heard = true;
    if (m.type === 'code') {
      $('pair-code').textContent = m.code;
      document.body.dataset.pairing = 'code';
      expires = Date.parse(m.expires_at);
    } else if (m.type === 'paired' && m.token) {
      try {
        localStorage.setItem(STORED_TOKEN, m.token);
        localStorage.setItem(PAIRED_AT, String(Date.now()));
      } catch (err) { /* a browser without storage cannot keep a credential */ }
      document.body.dataset.pairing = 'paired';
      $('pair-code').textContent = '✓';
      $('pair-help').textContent = 'Paired as ' + (m.screen && m.screen.name) + '. Starting…';
      setTimeout(() => location.reload(), 300);
    }
  };
  ws.onclose = (e) => {
    clearInterval(expiry);
    if (document.body.dataset.pairing === 'paired') return;
    // 4408: the code expired, a new one comes at once; otherwise back off up to 30 s.
    const n = heard ? 0 : failures + 1;
    if (!heard && n > 1) $('pair-help').textContent = 'Waiting for the server to give this screen a code…';
    const delay = e.code === 4408 ? 200 : Math.min(30000, 1000 * 2 ** Math.min(n, 5)) * (0.5 + Math.random() / 2);
    setTimeout(() => pairingSocket(n), delay);
  };
}

live.start();
window.truthboard = {live, charts, show, pin, state, annotations, scheduleAt};
