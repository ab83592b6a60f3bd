// status.js: the clear states every page shows, in one place: a subscription the server
// refused (its message, instead of "Connecting"), filters that match no events (and the values
// that exist), and a credential that stopped working (to the sign-in page, saying why).
// The credential itself never stays in a link: see credential.js.

import {authHeaders} from './credential.js';

// FREE_FILTERS are the filters whose values exist only in the data (GET /v1/filter-values).
const FREE_FILTERS = ['touchpoint', 'region', 'product', 'segment', 'agent_team'];

// revokedHandler decides what a page does when its credential is revoked or its sign-in ends;
// by default it goes to the sign-in page with the reason. A page may replace it (the TV wall
// can return to showing its pairing code instead) with onRevoked.
let revokedHandler = (reason) => {
  const next = location.pathname + location.search;
  location.assign('/login?reason=' + encodeURIComponent(reason) + '&next=' + encodeURIComponent(next));
};

// onRevoked replaces what happens when the page's credential stops working: fn(reason), with
// reason "revoked" (an admin revoked or changed it) or "expired".
export function onRevoked(fn) { revokedHandler = fn; }

// credentialEnded runs the page's handler once.
let ended = false;
export function credentialEnded(reason) {
  if (ended) return;
  ended = true;
  revokedHandler(reason);
}

// StatusBanner is the line under a page's header that says what is wrong, in the server's words.
export class StatusBanner {
  constructor() {
    this.el = document.getElementById('status');
    if (!this.el) {
      this.el = document.createElement('div');
      this.el.id = 'status';
      this.el.setAttribute('role', 'status');
      const header = document.querySelector('header');
      if (header) header.after(this.el);
      else document.body.prepend(this.el);
    }
    this.el.hidden = true;
    this.kind = '';
  }

  // show replaces the banner's content: kind is "refused" or "empty"; parts are strings and
  // elements.
  show(kind, ...parts) {
    this.kind = kind;
    this.el.className = 'banner ' + (kind === 'refused' ? 'error' : 'notice');
    this.el.dataset.kind = kind;
    this.el.replaceChildren(...parts);
    this.el.hidden = false;
  }

  clear(kind) {
    if (kind && this.kind !== kind) return;
    this.kind = '';
    this.el.hidden = true;
    this.el.replaceChildren();
    delete this.el.dataset.kind;
  }

  // refused shows the server's reason for refusing the page's subscription.
  refused(message) {
    this.show('refused', 'The server refused this view: ' + message + '. Fix the address (its filters) or pick the view again from ',
      link('/', 'the start page'), '.');
  }
}

function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  return a;
}

// filterValuesCache holds one answer of /v1/filter-values per window for a minute.
const filterValuesCache = new Map();

async function filterValues(window) {
  const hit = filterValuesCache.get(window);
  if (hit && Date.now() - hit.at < 60000) return hit.values;
  const r = await fetch('/v1/filter-values?window=' + encodeURIComponent(window),
    {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
  if (!r.ok) return null;
  const body = await r.json();
  filterValuesCache.set(window, {at: Date.now(), values: body.values});
  return body.values;
}

// EmptyCheck says so when a page's filters match no events in its window, and offers the
// values that have events. hrefFor(filter, value) is the page's link to those filters.
export class EmptyCheck {
  constructor(banner, hrefFor) {
    this.banner = banner;
    this.hrefFor = hrefFor;
    this.key = '';
  }

  // update looks at a message's figures for the subscription sub.
  async update(sub, data) {
    if (!data || !data.kpis) return;
    const filters = Object.entries(sub.filters || {}).filter(([, v]) => v && v.length);
    if (data.kpis.events !== 0 || !filters.length) {
      this.key = '';
      this.banner.clear('empty');
      return;
    }
    const key = JSON.stringify([sub.window, filters]);
    if (key === this.key) return; // already shown
    this.key = key;
    const words = filters.map(([f, v]) => f + '=' + v.join(',')).join(' and ');
    const parts = ['No events for ' + words + ' in the last ' + sub.window + '.'];
    const values = await filterValues(sub.window).catch(() => null);
    if (this.key !== key) return; // the filters changed meanwhile
    for (const [f, chosen] of filters) {
      if (!FREE_FILTERS.includes(f) || !values || !values[f]) continue;
      const others = values[f].filter((v) => !chosen.includes(v.value)).slice(0, 8);
      if (!others.length) {
        parts.push(' No ' + f + ' has events in this window.');
        continue;
      }
      parts.push(' Values of ' + f + ' with events: ');
      others.forEach((v, i) => {
        if (i) parts.push(', ');
        const a = link(this.hrefFor(f, v.value), v.value);
        a.dataset.filter = f;
        a.title = v.events + ' events';
        parts.push(a);
      });
      parts.push('.');
    }
    this.banner.show('empty', ...parts);
  }
}
