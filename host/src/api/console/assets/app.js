// The console's shell: sign-in, the tenant picker, and hash routing (#/events, #/events/<id>,
// ...). Pages live in pages/*.js; each exports `render(ctx)` and draws into ctx.root.

import { api, session, ApiError } from './api.js';
import { h, replace, toast } from './dom.js';
import * as overview from './pages/overview.js';
import * as events from './pages/events.js';
import * as event from './pages/event.js';
import * as dead from './pages/dead.js';
import * as destinations from './pages/destinations.js';
import * as routes from './pages/routes.js';
import * as plugins from './pages/plugins.js';

const PAGES = { overview, events, event, dead, destinations, routes, plugins };

const $ = (id) => document.getElementById(id);

/** `#/events/evt_1?type=x` -> { page: 'event', arg: 'evt_1', query: URLSearchParams } */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?');
  const [first = 'overview', arg] = path.split('/').map(decodeURIComponent);
  const page = first === 'events' && arg ? 'event' : (first === 'plugins' && arg ? 'plugins' : first);
  return { page: PAGES[page] ? page : 'overview', nav: first, arg, query: new URLSearchParams(q) };
}

let renderSeq = 0;

async function render() {
  const root = $('page');
  if (!session.token) return showSignIn();
  const { page, nav, arg, query } = parseHash();
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === nav);
  const seq = ++renderSeq;
  const hash = location.hash;
  const ctx = {
    tenant: session.tenant,
    arg,
    query,
    root,
    /** True while this render is still the current one (a slow request must not draw over a newer page). */
    current: () => seq === renderSeq,
    go: (hash) => { if (location.hash === hash) render(); else location.hash = hash; },
    refresh: () => render(),
  };
  replace(root, h('p', { class: 'muted' }, 'Loading…'));
  // Says which page, at which hash, is fully drawn. Tests and scripts wait for both: a link
  // on the page before a filter is also on the page after it, so a selector alone can match
  // the old page in the moment before the new render starts.
  delete root.dataset.ready;
  delete root.dataset.hash;
  try {
    await PAGES[page].render(ctx);
    if (ctx.current()) {
      root.dataset.hash = hash;
      root.dataset.ready = page;
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { session.signOut(); return showSignIn('Your token is no longer accepted; sign in again.'); }
    if (ctx.current()) replace(root, h('div', { class: 'card' }, h('p', { class: 'error' }, e.message)));
  }
}

function showSignIn(message = '') {
  $('nav').hidden = true;
  $('who').hidden = true;
  replace($('page'));
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  $('token').focus();
}

/** Loads the tenants this token may see and fills the picker; false if the token is refused. */
async function loadTenants() {
  const { tenants } = await api('GET', '/v1/tenants');
  const select = $('tenant');
  replace(select, tenants.map((t) => h('option', { value: t.name }, t.name)));
  if (!tenants.length) {
    session.tenant = '';
  } else if (!tenants.some((t) => t.name === session.tenant)) {
    session.tenant = tenants[0].name;
  }
  select.value = session.tenant;
  $('role').textContent = session.role;
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  return tenants;
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  try {
    await api('GET', '/v1/tenants', undefined, token);
  } catch (e) {
    $('sign-in-error').textContent = e instanceof ApiError && e.status === 401 ? 'That token is not accepted.' : e.message;
    return;
  }
  session.signIn(token);
  $('token').value = '';
  await loadTenants();
  if (!location.hash || location.hash === '#/') location.hash = '#/overview'; else render();
}

async function start() {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => { session.signOut(); location.hash = ''; showSignIn(); });
  $('tenant').addEventListener('change', (e) => { session.tenant = e.target.value; toast(`Tenant ${e.target.value}`); render(); });
  window.addEventListener('hashchange', render);
  if (!session.token) return showSignIn();
  try {
    await loadTenants();
  } catch (e) {
    session.signOut();
    return showSignIn(e.message);
  }
  render();
}

start();
