// screens.js: the screens page. Pair a TV by the code it shows, see every screen's state
// (online, last seen, resolution, version, errors, from their heartbeats; the alert of a screen
// gone silent), set their group and time zone, send commands (identify, reload, show, rename,
// unpair) to one screen or a group, and edit playlists. API: docs/api.md, "Screens".
// Nothing a screen reports is parsed as HTML.

import {WINDOWS} from './live.js';

const $ = (id) => document.getElementById(id);
const VIEWS = {tv: 'All panels, rotating', overview: 'Overview', heatmap: 'Moments × channels', trends: 'Trends', journey: 'Journey'};
let playlists = [];

// csrf is the double-submit token the server set in the tb_csrf cookie on the first GET.
function csrf() {
  const m = /(?:^|;\s*)tb_csrf=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : '';
}

async function api(method, path, body) {
  const headers = {'X-Csrf-Token': csrf()};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body)});
  if (r.status === 401) {
    location.assign('/login?next=' + encodeURIComponent(location.pathname));
    throw new Error('sign in first');
  }
  const text = await r.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = {error: text}; }
  if (!r.ok) throw new Error(data.error || `${method} ${path}: ${r.status}`);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// showOptions fills a <select> with the views and the playlists ("playlist:<name>").
function showOptions(select, current) {
  const keep = current || select.value;
  select.replaceChildren(...Object.entries(VIEWS).map(([v, label]) => el('option', {value: v}, label)),
    ...playlists.map((p) => el('option', {value: 'playlist:' + p.name}, 'Playlist · ' + p.name)));
  if (keep) select.value = keep;
}

function showOf(value, window) {
  if (value.startsWith('playlist:')) return {playlist: value.slice('playlist:'.length)};
  return {view: value, window};
}

function describeShow(s) {
  if (!s) return '';
  if (s.playlist) return 'Playlist · ' + s.playlist;
  let t = VIEWS[s.view] || s.view;
  if (s.window) t += ' · ' + s.window;
  const f = Object.entries(s.filters || {}).map(([k, v]) => `${k}=${v.join(',')}`);
  if (f.length) t += ' · ' + f.join(' ');
  return t;
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 90) return s + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  return new Date(iso).toLocaleString();
}

function say(id, text, ok) {
  const m = $(id);
  m.textContent = text;
  m.className = 'message ' + (ok ? 'ok' : 'error');
}

async function send(screen, body, label) {
  try {
    const c = await api('POST', `/v1/screens/${encodeURIComponent(screen.id)}/commands`, body);
    $('problem').hidden = true;
    flash(screen.id, `${label}: ${c.state}`);
  } catch (e) {
    flash(screen.id, `${label} refused: ${e.message}`, true);
  }
  refresh();
}

const notes = new Map(); // screen id → the answer to its last command, shown under its name
function flash(id, text, bad) {
  notes.set(id, {text, bad});
}

function row(s) {
  const showSel = el('select', {'aria-label': 'what to show'});
  showOptions(showSel, s.show.playlist ? 'playlist:' + s.show.playlist : s.show.view);
  const winSel = el('select', {'aria-label': 'window'}, ...WINDOWS.map((w) => el('option', {}, w)));
  winSel.value = s.show.window || '5m';
  const rename = el('input', {'aria-label': 'new name', placeholder: 'new name', maxlength: '64', size: '10'});
  let armed = false;
  const unpair = el('button', {class: 'danger', 'data-command': 'unpair', onclick: async () => {
    if (!armed) {
      armed = true;
      unpair.textContent = 'Confirm unpair';
      return;
    }
    try {
      await api('DELETE', `/v1/screens/${encodeURIComponent(s.id)}`);
    } catch (e) {
      flash(s.id, 'Unpair refused: ' + e.message, true);
    }
    refresh();
  }}, 'Unpair');
  const note = notes.get(s.id);
  const group = el('input', {'aria-label': 'group', placeholder: 'group', maxlength: '64', size: '8', value: s.group || '', list: 'group-names'});
  const zone = el('input', {'aria-label': 'time zone', placeholder: 'time zone', maxlength: '64', size: '10', value: s.timezone || '', spellcheck: 'false'});
  const place = el('button', {class: 'secondary', 'data-command': 'place', onclick: async () => {
    try {
      await api('PATCH', `/v1/screens/${encodeURIComponent(s.id)}`, {group: group.value.trim(), timezone: zone.value.trim()});
      flash(s.id, 'Group and time zone saved');
    } catch (e) {
      flash(s.id, 'Group or time zone refused: ' + e.message, true);
    }
    refresh();
  }}, 'Save');
  const state = el('span', {class: 'state ' + s.state}, s.state === 'online' ? 'Online' : 'Offline');
  const alerted = s.alert ? el('span', {class: 'alert-mark', title: s.alert.annotations.summary},
    'Alert since ' + new Date(s.alert.annotations.since || s.alert.active_at).toLocaleString()) : '';
  const hours = s.hours === 'blank' || s.hours === 'dim' ? ` · ${s.hours} now, outside opening hours` : '';
  const tr = el('tr', {'data-screen': s.id, 'data-state': s.state, 'data-group': s.group || '', 'data-alert': s.alert ? 'firing' : ''},
    el('td', {class: 'name', 'data-label': 'Screen'}, s.name, el('span', {class: 'id'}, s.id),
      note ? el('span', {class: 'id ' + (note.bad ? 'note-bad' : 'note')}, note.text) : ''),
    el('td', {'data-label': 'State'}, state, alerted),
    el('td', {'data-label': 'Group', class: 'place'}, group, zone, place),
    el('td', {'data-label': 'Shows', class: 'shows'}, describeShow(s.show) + hours),
    el('td', {'data-label': 'Last seen', title: s.last_seen || ''}, ago(s.last_seen)),
    el('td', {'data-label': 'Resolution'}, s.resolution || '—'),
    el('td', {'data-label': 'Version'}, (s.version || '—').replace(/"/g, '')),
    el('td', {'data-label': 'Errors', class: 'errors'}, (s.errors || []).join(' · ') || '—'),
    el('td', {class: 'commands'},
      el('button', {class: 'secondary', 'data-command': 'identify', onclick: () => send(s, {command: 'identify'}, 'Identify')}, 'Identify'),
      el('button', {class: 'secondary', 'data-command': 'reload', onclick: () => send(s, {command: 'reload'}, 'Reload')}, 'Reload'),
      showSel, winSel,
      el('button', {'data-command': 'show', onclick: () => send(s, {command: 'show', show: showOf(showSel.value, winSel.value)}, 'Show')}, 'Show'),
      rename,
      el('button', {class: 'secondary', 'data-command': 'rename', onclick: () => send(s, {command: 'rename', name: rename.value}, 'Rename')}, 'Rename'),
      unpair));
  return tr;
}

let editing = false; // a control in the table has focus: do not redraw under the user's hands
async function refresh() {
  let data;
  try {
    data = await api('GET', '/v1/screens');
    $('problem').hidden = true;
  } catch (e) {
    $('problem').textContent = 'Screens cannot be listed: ' + e.message;
    $('problem').hidden = false;
    return;
  }
  const all = data.screens || [];
  const groups = [...new Set(all.map((s) => s.group).filter(Boolean))].sort();
  const filter = $('group-filter');
  const chosen = groups.includes(filter.value) ? filter.value : '';
  filter.replaceChildren(el('option', {value: ''}, 'Every group'), ...groups.map((g) => el('option', {value: g}, g)));
  filter.value = chosen;
  $('group-names').replaceChildren(...groups.map((g) => el('option', {value: g})));
  $('reload-all').textContent = chosen ? `Reload group ${chosen}` : 'Reload every screen';
  const screens = chosen ? all.filter((s) => s.group === chosen) : all;
  const online = screens.filter((s) => s.state === 'online').length;
  const alerts = screens.filter((s) => s.alert).length;
  $('summary').textContent = `${screens.length} screen${screens.length === 1 ? '' : 's'} · ${online} online · ${screens.length - online} offline` +
    (alerts ? ` · ${alerts} alert${alerts === 1 ? '' : 's'}` : '');
  $('no-screens').hidden = screens.length > 0;
  if (editing) return;
  $('screens').tBodies[0].replaceChildren(...screens.map(row));
}
$('group-filter').addEventListener('change', () => refresh());
$('screens').addEventListener('focusin', () => { editing = true; });
$('screens').addEventListener('focusout', () => { editing = false; });

async function loadPlaylists() {
  try {
    playlists = (await api('GET', '/v1/playlists')).playlists || [];
  } catch (e) {
    say('playlist-message', e.message);
    return;
  }
  $('playlist-list').replaceChildren(...playlists.map((p) => el('li', {},
    el('a', {href: '#', onclick: (ev) => {
      ev.preventDefault();
      $('playlist-name').value = p.name;
      const body = Object.assign({}, p);
      delete body.name;
      $('playlist-body').value = JSON.stringify(body, null, 1);
    }}, p.name),
    ` · ${p.items.length} panel${p.items.length === 1 ? '' : 's'}: ` + p.items.map((i) => `${VIEWS[i.view] || i.view} ${i.dwell}`).join(', ') +
      (p.schedule ? ` · open ${p.schedule.open}–${p.schedule.close}` : ''))));
  showOptions($('pair-show'));
}

$('reload-all').addEventListener('click', async () => {
  try {
    const group = $('group-filter').value;
    const r = await api('POST', '/v1/screens/commands', group ? {command: 'reload', group} : {command: 'reload'});
    const bad = r.undeliverable.map((u) => `${u.screen}: ${u.error}`).join('; ');
    say('all-message', `Reload queued for ${r.queued} screen${r.queued === 1 ? '' : 's'}` + (bad ? `; not for ${bad}` : '.'), !bad);
  } catch (e) {
    say('all-message', 'Reload refused: ' + e.message);
  }
});

$('pair-window').replaceChildren(...WINDOWS.map((w) => el('option', {}, w)));
$('pair-window').value = '5m';
$('pair-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const code = $('pair-code').value;
  say('pair-message', 'Pairing… (the TV receives its credential)', true);
  try {
    const s = await api('POST', '/v1/screens/pair', {code, name: $('pair-name').value,
      show: showOf($('pair-show').value, $('pair-window').value),
      group: $('pair-group').value.trim(), timezone: $('pair-timezone').value.trim()});
    say('pair-message', `Paired: ${s.name} now shows ${describeShow(s.show)}.`, true);
    $('pair-code').value = '';
    $('pair-name').value = '';
  } catch (err) {
    say('pair-message', err.message);
  }
  refresh();
});

$('playlist-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('playlist-name').value.trim();
  let body;
  try {
    body = JSON.parse($('playlist-body').value);
  } catch (err) {
    say('playlist-message', 'The playlist is not valid JSON: ' + err.message);
    return;
  }
  try {
    await api('PUT', '/v1/playlists/' + encodeURIComponent(name), body);
    say('playlist-message', `Saved ${name}; walls showing it follow from their next panel.`, true);
  } catch (err) {
    say('playlist-message', err.message);
  }
  loadPlaylists();
});

await loadPlaylists();
await refresh();
setInterval(refresh, 3000);
window.truthboard = {refresh};
