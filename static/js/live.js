// live.js: the shared client of Truthboard's dashboards. It keeps one WebSocket to /v1/live
// (reconnecting forever with backoff and jitter), applies snapshots and updates to ECharts
// instances that are created once and updated in place, and drives the freshness badge.
// Protocol: docs/live-protocol.md. The KPI tiles and the judged changes are in judgement.js;
// the page's clear states (refused, no events, revoked) in status.js.

import {authHeaders, forgetToken, hadToken, token} from './credential.js';
import {EmptyCheck, StatusBanner, credentialEnded} from './status.js';

export const WINDOWS = ['1m', '5m', '15m', '1h', '24h', '7d', '30d'];
export const MOMENTS = ['zmot', 'fmot', 'smot', 'tmot', 'service'];
export const CHANNELS = ['web', 'app', 'store', 'voice', 'ivr', 'chat', 'messaging', 'email',
  'social', 'review_site', 'field_service'];
export const FILTERS = ['moment', 'channel', 'touchpoint', 'region', 'product', 'segment', 'agent_team'];

const BACKOFF_MIN = 1000;
const BACKOFF_MAX = 30000;

export {authHeaders, token} from './credential.js';
export {STORED_TOKEN} from './credential.js';
// subscriptionFromURL reads window and filters from the page's URL (comma-separated values).
export function subscriptionFromURL(view, defaultWindow = '5m') {
  const q = new URLSearchParams(location.search);
  const w = q.get('window');
  const filters = {};
  for (const f of FILTERS) {
    const vals = (q.get(f) || '').split(',').map((s) => s.trim()).filter(Boolean);
    if (vals.length) filters[f] = vals;
  }
  return {type: 'subscribe', view, window: WINDOWS.includes(w) ? w : defaultWindow, filters};
}

// hasECharts shows a clear message when the chart library did not load, instead of blank
// panels; the figures still update.
export function hasECharts() {
  if (window.echarts) return true;
  const div = document.createElement('div');
  div.className = 'banner error';
  div.id = 'no-echarts';
  div.textContent = 'The chart library (assets/vendor/echarts.min.js) is missing from this ' +
    'build, so charts cannot be drawn; the figures below still update. Rebuild with ' +
    'scripts/up.sh (or see static/vendor/README.md).';
  document.body.prepend(div);
  return false;
}

// ---- formatting ----

export function timeOf(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return s + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  return Math.round(s / 3600) + ' h';
}

// ---- charts ----

// ChartSet owns the ECharts instances of a page, one per element with data-chart="name". An
// instance is created at its first snapshot and then only updated: never re-created, never
// cleared (a message without charts leaves the last ones on screen).
export class ChartSet {
  // renderer 'svg' draws a chart's texts as DOM elements (the light pages: a test can check
  // that none overlaps another on a phone); the TV wall keeps ECharts' canvas.
  constructor({theme = null, decorate = null, renderer = 'canvas'} = {}) {
    this.theme = theme;
    this.renderer = renderer;
    this.decorate = decorate;
    this.charts = new Map();
    this.shapes = new Map(); // name → the last snapshot's options, for decorate on resize
    this.enabled = !!window.echarts;
    let pending = false;
    window.addEventListener('resize', () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        this.resize();
      });
    });
  }

  get(name) { return this.charts.get(name); }

  apply(msg) {
    if (!this.enabled || !msg.charts) return;
    for (const [name, opt] of Object.entries(msg.charts)) {
      const el = document.querySelector(`[data-chart="${name}"]`);
      if (!el) continue;
      let c = this.charts.get(name);
      if (msg.type === 'snapshot') {
        if (!c) {
          c = window.echarts.init(el, this.theme, {renderer: this.renderer});
          this.charts.set(name, c);
          if (this.onCreate) this.onCreate(name, c);
        }
        // With a decoration, both options are drawn together in the next frame: drawn alone
        // first, the plain options would be animated into the decorated ones (a trend's time
        // labels slid from ECharts' places to theirs for a second, over the value axis' 0).
        c.setOption(opt, {notMerge: true, lazyUpdate: !!this.decorate});
        this.shapes.set(name, opt);
        if (this.decorate) c.setOption(this.decorate(name, opt), {lazyUpdate: true});
      } else if (c) {
        c.setOption(opt);
      }
    }
  }

  resize() {
    for (const [name, c] of this.charts) {
      c.resize();
      if (this.decorate && this.shapes.has(name)) c.setOption(this.decorate(name, this.shapes.get(name)));
    }
  }
}

// ---- the connection ----

const LABELS = {
  connecting: 'Connecting',
  refused: 'Refused',
  fresh: 'Live',
  degraded: 'Degraded',
  stale: 'Stale',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
};

// Live keeps a screen subscribed to /v1/live. onMessage(msg) gets every snapshot and update;
// the badge element (if any) and document.body's data-live attribute show the freshness.
export class Live {
  constructor({subscription, onMessage, badge, onAlerts, onCommand, onUnauthorized, heartbeat}) {
    this.sub = subscription;
    // onCommand(msg) gets the commands of a paired screen (docs/live-protocol.md, "Screens").
    this.onCommand = onCommand;
    // onUnauthorized() replaces the sign-in form when the credential is refused or revoked.
    this.onUnauthorized = onUnauthorized;
    // heartbeat() returns what a paired screen reports every 5 s.
    this.heartbeat = heartbeat;
    this.onMessage = onMessage;
    // onAlerts(alerts) gets the server's pending and firing alerts with every message.
    this.onAlerts = onAlerts;
    this.badge = badge;
    this.ws = null;
    this.open = false;
    this.failures = 0; // connections in a row that ended without a message
    this.tickMs = 1000;
    this.last = null; // the last snapshot or update
    this.lastAt = 0; // when it arrived (ms)
    this.retryAt = 0;
    this.problem = '';
    this.refused = ''; // the server's reason for refusing the subscription, until one is accepted
    this.state = 'connecting';
    this.status = new StatusBanner();
    this.empty = new EmptyCheck(this.status, filterHref);
  }

  start() {
    this.connect();
    setInterval(() => this.watch(), 500);
    if (this.heartbeat) {
      setInterval(() => this.beat(), 5000);
    }
    this.render();
  }

  // resubscribe moves the screen to another window or filters; the next message is a snapshot.
  resubscribe(sub) {
    this.sub = sub;
    this.refused = '';
    this.status.clear('refused');
    if (this.open) this.ws.send(JSON.stringify(sub));
  }

  beat() {
    if (this.open) this.ws.send(JSON.stringify(Object.assign({type: 'heartbeat'}, this.heartbeat())));
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const t = token();
    const url = `${scheme}://${location.host}/v1/live` + (t ? '?token=' + encodeURIComponent(t) : '');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.closed(false);
      return;
    }
    this.ws = ws;
    let opened = false;
    let heard = false;
    ws.onopen = () => {
      opened = true;
      this.open = true;
      ws.send(JSON.stringify(this.sub));
      if (this.heartbeat) this.beat();
      this.render();
    };
    ws.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (m.type === 'command') {
        if (this.onCommand) this.onCommand(m);
        return;
      }
      if (m.type === 'error') {
        // A refused subscription: say why on the page, not only in the console.
        this.problem = m.error;
        this.refused = m.error;
        this.status.refused(m.error);
        this.render();
        return;
      }
      if (this.refused && m.type === 'snapshot') {
        this.refused = '';
        this.status.clear('refused');
      }
      if (!heard) {
        heard = true;
        this.failures = 0;
      }
      if (this.last && this.last.tick && m.tick) {
        const dt = Date.parse(m.tick) - Date.parse(this.last.tick);
        if (dt >= 100 && dt <= 60000) this.tickMs = dt;
      }
      if (m.data || m.charts || !this.last) this.last = m;
      else this.last = Object.assign({}, this.last, {tick: m.tick, degraded: m.degraded, problem: m.problem});
      this.lastAt = Date.now();
      this.problem = m.degraded ? (m.problem || 'the server reports degraded data') : '';
      this.degraded = !!m.degraded;
      if (m.data || m.charts) this.onMessage(m);
      if (m.data) this.empty.update(this.sub, m.data);
      if (this.onAlerts && m.alerts) this.onAlerts(m.alerts);
      this.render();
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.open = false;
      if (e.code === 4401) { // the credential was revoked or the sign-in ended while open
        forgetToken();
        credentialEnded('revoked');
        return;
      }
      if (e.code === 1009) console.error('truthboard live: subscribe message too big');
      if (e.code === 4401 && this.onUnauthorized) {
        this.onUnauthorized();
        return;
      }
      this.closed(opened, heard);
    };
    ws.onerror = () => {}; // onclose follows
  }

  async closed(opened, heard) {
    if (!heard) this.failures++;
    if (!opened) {
      // A refused handshake looks like any network error: ask a REST route whether the
      // credentials are the reason, and send the user to sign in if so.
      try {
        const r = await fetch('/v1/me', {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
        if (r.status === 401 && this.onUnauthorized) {
          this.onUnauthorized();
          return;
        }
        if (r.status === 401) {
          const body = await r.json().catch(() => ({}));
          if (body.reason === 'revoked' || hadToken()) {
            forgetToken();
            credentialEnded('revoked');
          } else {
            location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
          }
          return;
        }
      } catch (e) { /* offline: retry below */ }
    }
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** Math.max(0, this.failures - 1));
    const delay = base * (0.5 + Math.random() / 2);
    this.retryAt = Date.now() + delay;
    this.render();
    setTimeout(() => this.connect(), delay);
  }

  // watch re-evaluates freshness, and drops a socket that looks open but has been silent for
  // 10 ticks (at least 15 s): the server ticks even when degraded, so silence means a dead link.
  watch() {
    if (this.open && this.lastAt && Date.now() - this.lastAt > Math.max(15000, 10 * this.tickMs)) {
      const ws = this.ws;
      this.ws = null;
      this.open = false;
      try { ws.close(); } catch (e) { /* already closed */ }
      this.closed(true, false);
    }
    this.render();
  }

  computeState() {
    const now = Date.now();
    if (this.refused && !this.lastAt) return 'refused';
    if (this.open) {
      if (!this.lastAt) return 'connecting';
      if (now - this.lastAt > 3 * this.tickMs + 250) return 'stale';
      return this.degraded ? 'degraded' : 'fresh';
    }
    if (!this.lastAt && this.failures <= 1) return 'connecting';
    return this.failures <= 1 ? 'reconnecting' : 'offline';
  }

  render() {
    const state = this.computeState();
    this.state = state;
    document.body.dataset.live = state;
    const greyed = state === 'stale' || state === 'reconnecting' || state === 'offline';
    document.body.classList.toggle('greyed', greyed && !!this.last);
    if (!this.badge) return;
    this.badge.dataset.state = state;
    this.badge.querySelector('.label').textContent = LABELS[state];
    let detail = '';
    const m = this.last;
    if (state === 'refused') {
      detail = this.refused;
    } else if (state === 'fresh' || state === 'degraded') {
      detail = 'data ' + timeOf(m.newest_event || m.tick);
      if (m.newest_event) detail += ' · ' + ago(Date.parse(m.tick) - Date.parse(m.newest_event)) + ' old';
      if (state === 'degraded') detail += ' · ' + this.problem;
    } else if (m) {
      detail = 'last data ' + timeOf(m.tick);
      if (!this.open && this.retryAt > Date.now()) detail += ' · retry in ' + ago(this.retryAt - Date.now());
    } else if (!this.open && this.retryAt > Date.now()) {
      detail = 'retry in ' + ago(this.retryAt - Date.now());
    }
    this.badge.querySelector('.detail').textContent = detail;
    this.badge.title = this.problem || '';
  }
}

// filterHref is the link to the page with filter f set to value, other filters kept.
function filterHref(f, value) {
  const u = new URL(location.href);
  u.searchParams.set(f, value);
  return u.pathname + u.search;
}

// badgeHTML is the markup of the freshness badge.
export const badgeHTML = '<span class="dot"></span><span class="label">Connecting</span><span class="detail"></span>';
