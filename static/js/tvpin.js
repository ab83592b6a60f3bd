// tvpin.js: the TV wall pins a breach. While an alert fires, the wall stops its rotation on the
// moments × channels panel, frames the breaching cell and shows the alert in type large enough
// to read from 5 m; several firing alerts take turns at the rotation's pace. When none fires
// any more, the rotation resumes where it was.

import {describe, firing} from './alerts.js';
import {timeOf} from './live.js';

export class BreachPin {
  // panelIndex is the moments × channels panel; show(i) displays panel i; charts is the page's
  // ChartSet (its "heatmap" chart gets the frame); card is the element the alert is written in.
  constructor({panelIndex, show, charts, card}) {
    this.panelIndex = panelIndex;
    this.show = show;
    this.charts = charts;
    this.card = card;
    this.alerts = [];
    this.turn = 0;
    this.framed = '';
  }

  // pinned reports whether a breach holds the wall (the rotation then stays still).
  get pinned() {
    return this.alerts.length > 0;
  }

  // update takes the alerts of a live message.
  update(alerts) {
    const before = this.alerts.map((a) => a.fingerprint).join();
    this.alerts = firing(alerts);
    if (!this.pinned) {
      if (before) this.release();
      return;
    }
    if (this.alerts.map((a) => a.fingerprint).join() !== before) this.turn = 0;
    this.render();
  }

  // next moves to the next firing alert (called at the rotation's pace).
  next() {
    if (!this.pinned) return;
    this.turn = (this.turn + 1) % this.alerts.length;
    this.render();
  }

  render() {
    const a = this.alerts[this.turn % this.alerts.length];
    this.show(this.panelIndex);
    document.body.dataset.breach = 'on';
    if (this.card.hidden) {
      this.card.hidden = false;
      // The card takes room from the heatmap: size it again once the page has laid out.
      requestAnimationFrame(() => this.charts.resize());
    }
    this.frame(a.labels || {});
    // Rewrite the card only when what it says changes: no flicker at every tick.
    const key = JSON.stringify([a.fingerprint, a.annotations, this.turn, this.alerts.length, a.acknowledged_by]);
    if (key === this.cardKey) return;
    this.cardKey = key;
    this.card.replaceChildren();
    const head = document.createElement('div');
    head.className = 'what';
    head.textContent = '⚠ ' + describe(a);
    const summary = document.createElement('div');
    summary.className = 'summary';
    summary.textContent = (a.annotations && a.annotations.summary) || '';
    const meta = document.createElement('div');
    meta.className = 'meta';
    let text = 'firing since ' + timeOf(a.fired_at || a.active_at);
    if (this.alerts.length > 1) text += ` · ${this.turn % this.alerts.length + 1} of ${this.alerts.length} alerts`;
    if (a.acknowledged_by) text += ' · acknowledged by ' + a.acknowledged_by;
    meta.textContent = text;
    this.card.append(head, summary, meta);
  }

  // frame draws a box around the alert's cell of the heatmap (channels across, moments down).
  frame(labels) {
    const c = this.charts.get('heatmap');
    if (!c) return;
    const opt = c.getOption();
    const xs = (opt.xAxis && opt.xAxis[0] && opt.xAxis[0].data) || [];
    const ys = (opt.yAxis && opt.yAxis[0] && opt.yAxis[0].data) || [];
    const name = (v) => (typeof v === 'object' && v !== null ? v.value : v);
    let x = xs.map(name).indexOf(labels.channel);
    let y = ys.map(name).indexOf(labels.moment);
    if (x < 0 || y < 0) {
      // Axes the other way round.
      x = xs.map(name).indexOf(labels.moment);
      y = ys.map(name).indexOf(labels.channel);
    }
    if (x < 0 || y < 0) {
      this.unframe();
      return;
    }
    // The cell's size: the distance to a neighbouring cell on each axis.
    const at = (i, j) => c.convertToPixel({xAxisIndex: 0, yAxisIndex: 0}, [i, j]);
    const p = at(x, y);
    const px = at(x > 0 ? x - 1 : x + 1, y);
    const py = at(x, y > 0 ? y - 1 : y + 1);
    if (!p || !px || !py) return;
    const w = Math.abs(px[0] - p[0]) || 40;
    const h = Math.abs(py[1] - p[1]) || 40;
    const lineWidth = Math.max(4, window.innerWidth / 400);
    c.setOption({graphic: [{
      id: 'breach', type: 'rect', z: 100, silent: true,
      shape: {x: p[0] - w / 2, y: p[1] - h / 2, width: w, height: h},
      style: {fill: 'transparent', stroke: '#f85149', lineWidth},
    }]});
    this.framed = labels.moment + '|' + labels.channel;
  }

  unframe() {
    const c = this.charts.get('heatmap');
    if (c && this.framed) c.setOption({graphic: [{id: 'breach', $action: 'remove'}]});
    this.framed = '';
  }

  release() {
    this.unframe();
    this.card.hidden = true;
    this.card.replaceChildren();
    this.cardKey = '';
    requestAnimationFrame(() => this.charts.resize());
    delete document.body.dataset.breach;
  }
}
