// admin.js: the admin page. Accounts, ingest keys and display tokens through the admin API
// (docs/api.md), signed in by the session cookie with its CSRF token, or by a ?token= the page
// was opened with (kept out of the address, see credential.js). A new key or token is shown
// once, never again.

import {authHeaders, csrfHeaders} from './credential.js';
import {credentialEnded} from './status.js';

const $ = (id) => document.getElementById(id);

// api calls the admin API and returns the parsed answer; a refusal throws an Error with the
// server's message and the field it names.
async function api(method, path, body) {
  const headers = Object.assign({}, authHeaders(), csrfHeaders());
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body)});
  const data = r.status === 204 ? {} : await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(data.error || `${method} ${path}: ${r.status}`);
    e.status = r.status;
    e.field = data.field;
    e.reason = data.reason;
    throw e;
  }
  return data;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function button(text, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

const day = (iso) => new Date(iso).toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'});

// formError shows a refusal under its form and marks the field it names.
function formError(form, err) {
  const p = form.querySelector('.form-error');
  for (const el of form.elements) el.removeAttribute('aria-invalid');
  if (!err) {
    p.hidden = true;
    return;
  }
  p.textContent = err.message;
  p.hidden = false;
  if (err.field && form.elements[err.field]) form.elements[err.field].setAttribute('aria-invalid', 'true');
}

// ---- accounts ----

async function loadAccounts() {
  const {accounts} = await api('GET', '/v1/accounts');
  const body = $('account-list').tBodies[0];
  body.replaceChildren(...accounts.map((a) => {
    const tr = document.createElement('tr');
    tr.dataset.username = a.username;
    const other = a.role === 'admin' ? 'viewer' : 'admin';
    const actions = cell('', 'actions');
    actions.append(
      button('Make ' + other, 'quiet', () => act(() => api('PATCH', '/v1/accounts/' + a.id, {role: other}), loadAccounts)),
      ' ',
      button('Delete', 'danger', () => {
        if (confirm('Delete the account ' + a.username + '? Its sessions end at once.')) act(() => api('DELETE', '/v1/accounts/' + a.id), loadAccounts);
      }));
    tr.append(cell(a.username), cell(a.role, 'role'), cell(day(a.created_at)), actions);
    return tr;
  }));
}

// act runs a change and reloads its list; a refusal is shown at the top of the page.
async function act(change, reload) {
  try {
    await change();
    refusal('');
  } catch (e) {
    refusal(e.message);
  }
  await reload().catch((e) => refusal(e.message));
}

function refusal(text) {
  $('refusal').textContent = text;
  $('refusal').hidden = !text;
}

$('account-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    await api('POST', '/v1/accounts', {username: f.elements.username.value.trim(), role: f.elements.role.value, password: f.elements.password.value});
    formError(f, null);
    f.reset();
  } catch (e) {
    formError(f, e);
  }
  await loadAccounts();
});

// ---- ingest keys and display tokens: the same API, another path ----

function credentials(path, list, secretField, section) {
  const el = $(section);
  const load = async () => {
    const data = await api('GET', path);
    el.querySelector('table tbody').replaceChildren(...data[list].map((c) => {
      const tr = document.createElement('tr');
      if (c.revoked) tr.className = 'revoked';
      const actions = cell('', 'actions');
      if (!c.revoked) {
        actions.append(button('Revoke', 'danger', () => {
          if (confirm('Revoke ' + c.name + '? It stops working within seconds on every server.')) act(() => api('DELETE', path + '/' + c.id), load);
        }));
      }
      tr.append(cell(c.name), cell(day(c.created_at)), cell(c.revoked ? 'revoked ' + day(c.revoked_at) : 'active'), actions);
      return tr;
    }));
  };
  el.querySelector('form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const secret = el.querySelector('.secret');
    try {
      const c = await api('POST', path, {name: f.elements.name.value});
      formError(f, null);
      f.reset();
      const code = document.createElement('code');
      code.textContent = c[secretField];
      secret.replaceChildren('New ' + (secretField === 'key' ? 'ingest key' : 'display token') + ' "' + c.name + '", shown only now: ', code);
      secret.hidden = false;
    } catch (e) {
      formError(f, e);
    }
    await load();
  });
  return load;
}

const loadIngestKeys = credentials('/v1/ingest-keys', 'ingest_keys', 'key', 'ingest-keys');
const loadDisplayTokens = credentials('/v1/display-tokens', 'display_tokens', 'token', 'display-tokens');

// ---- who is here ----

async function start() {
  const r = await fetch('/v1/me', {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
  if (r.status === 401) {
    const body = await r.json().catch(() => ({}));
    if (body.reason === 'revoked') credentialEnded('revoked');
    else location.assign('/login?next=/admin');
    return;
  }
  const me = await r.json();
  $('who').textContent = me.username ? 'Signed in as ' + me.username + ' (' + me.role + ')' : 'Signed in with the ' + me.credential;
  if (!me.can_admin) {
    $('admin-nav').hidden = true;
    refusal('This page is for admins. Your ' + (me.credential === 'session' ? 'account' : me.credential) + ' (' + me.role +
      ') can only read the dashboards: ask an admin if you need more.');
    return;
  }
  $('sections').hidden = false;
  await Promise.all([loadAccounts(), loadIngestKeys(), loadDisplayTokens()]).catch((e) => refusal(e.message));
  document.body.dataset.ready = 'true';
}

// The sign-out form carries the CSRF cookie's value, set by the admin API's first answer.
$('signout').addEventListener('submit', (ev) => {
  const h = csrfHeaders()['X-Csrf-Token'];
  if (h) ev.target.elements._csrf.value = h;
});

start().catch((e) => refusal(e.message)).finally(() => { document.body.dataset.loaded = 'true'; });
