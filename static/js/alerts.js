// alerts.js: the alerts every view shows. Each live message carries the server's pending and
// firing alerts (docs/live-protocol.md, "alerts"); AlertBanner lists the firing ones under the
// page's header — which moment and channel, which metric, the value against its baseline or
// target with n, since when — and counts the pending ones. Text only: nothing of an alert is
// ever parsed as HTML.

import {timeOf} from './live.js';

const METRIC_NAMES = {
  csat: 'CSAT', nps: 'NPS', ces: 'CES', negative_rate: 'Negative moments',
  abandonment: 'Abandonment', wait_p90: 'Wait p90', volume: 'Volume',
};

// metricName is the label people know a metric by.
export function metricName(m) {
  return METRIC_NAMES[m] || m;
}

// firing returns the firing alerts of a message, in the server's order.
export function firing(alerts) {
  return (alerts || []).filter((a) => a.state === 'firing');
}

// describe is one alert in words: "service › voice · Abandonment".
export function describe(a) {
  const l = a.labels || {};
  return `${l.moment || 'all moments'} › ${l.channel || 'all channels'} · ${metricName(l.metric)}`;
}

export class AlertBanner {
  // root is the element the banner fills (created after the page's header when not given).
  constructor(root) {
    if (!root) {
      root = document.createElement('section');
      root.id = 'alerts';
      const header = document.querySelector('header');
      if (header) header.after(root);
      else document.body.prepend(root);
    }
    this.root = root;
    this.root.classList.add('alerts');
    this.key = '';
  }

  render(alerts) {
    const fire = firing(alerts);
    const pending = (alerts || []).length - fire.length;
    // Redraw only when something shown changed: a tick with the same alerts leaves the DOM be.
    const key = JSON.stringify([fire.map((a) => [a.fingerprint, a.annotations && a.annotations.summary, a.acknowledged_by, a.silenced]), pending]);
    if (key === this.key) return;
    this.key = key;
    this.root.replaceChildren();
    this.root.hidden = fire.length === 0 && pending === 0;
    document.body.dataset.alerts = fire.length > 0 ? 'firing' : pending > 0 ? 'pending' : 'none';
    for (const a of fire) {
      const item = document.createElement('div');
      item.className = 'alert firing';
      item.dataset.fingerprint = a.fingerprint;
      const what = document.createElement('strong');
      what.textContent = describe(a);
      const summary = document.createElement('span');
      summary.className = 'summary';
      summary.textContent = (a.annotations && a.annotations.summary) || '';
      const since = document.createElement('span');
      since.className = 'since';
      let meta = 'firing since ' + timeOf(a.fired_at || a.active_at);
      if (a.acknowledged_by) meta += ' · acknowledged by ' + a.acknowledged_by;
      if (a.silenced) meta += ' · silenced';
      since.textContent = meta;
      item.append(what, summary, since);
      this.root.append(item);
    }
    if (pending > 0) {
      const p = document.createElement('div');
      p.className = 'alert pending';
      p.textContent = `${pending} pending: a significant change that has not lasted long enough to fire`;
      this.root.append(p);
    }
  }
}
