// credential.js: where a page keeps the credential it was opened with. A TV wall or a script
// may open a page with ?token=; the page moves it into this tab's sessionStorage and removes it
// from the address at once (history.replaceState), so that no link copied or shared from the
// page, and no drill-down link it builds, carries a credential. Signed-in people need none: their
// session cookie is sent by the browser.

const KEY = 'truthboard.token';

function takeFromURL() {
  const u = new URL(location.href);
  const t = u.searchParams.get('token');
  if (t === null) return;
  if (t) sessionStorage.setItem(KEY, t);
  u.searchParams.delete('token');
  history.replaceState(history.state, '', u.pathname + u.search + u.hash);
}
takeFromURL();

// STORED_TOKEN is where a paired TV keeps the display credential it received over its
// pairing connection (tv.js): in localStorage, so that it survives the TV's restarts; never in
// a URL or a link.
export const STORED_TOKEN = 'truthboard.display-token';

// storedToken is the display credential of a paired TV ('' on every other page).
function storedToken() {
  try {
    return document.body.classList.contains('tv') ? (localStorage.getItem(STORED_TOKEN) || '') : '';
  } catch (e) {
    return '';
  }
}

// token is the page's credential, if it was opened with one, else a paired TV's own; otherwise
// '' (the session cookie).
export function token() {
  return sessionStorage.getItem(KEY) || storedToken();
}

// hadToken tells whether this tab was given a credential (to say it was revoked, not missing).
export function hadToken() { return token() !== ''; }

// forgetToken drops the credential, once it no longer works.
export function forgetToken() { sessionStorage.removeItem(KEY); }

// authHeaders are the headers of a REST call: the page's token as a bearer token.
export function authHeaders() {
  const t = token();
  return t ? {Authorization: 'Bearer ' + t} : {};
}

// csrfHeaders are the headers a state-changing call needs when the session cookie signs it in:
// the CSRF cookie's value (double submit).
export function csrfHeaders() {
  const m = /(?:^|;\s*)tb_csrf=([^;]+)/.exec(document.cookie);
  return m ? {'X-Csrf-Token': decodeURIComponent(m[1])} : {};
}
