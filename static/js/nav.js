// nav.js: the header's links that depend on who is signed in: the admin page for admins.

import {authHeaders} from './credential.js';

// adminLink adds a link to the admin page to the page's header when the credential may use it.
export async function adminLink() {
  try {
    const r = await fetch('/v1/me', {headers: authHeaders(), credentials: 'same-origin', cache: 'no-store'});
    if (!r.ok) return;
    const me = await r.json();
    if (!me.can_admin) return;
    const header = document.querySelector('header');
    const nav = document.createElement('nav');
    nav.className = 'user';
    const a = document.createElement('a');
    a.href = '/admin';
    a.id = 'admin-link';
    a.textContent = 'Admin';
    nav.append(a);
    header.querySelector('h1').after(nav);
  } catch (e) { /* offline: no link */ }
}
