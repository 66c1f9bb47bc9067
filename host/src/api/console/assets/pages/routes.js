// Routes: the live document, its versions, a side-by-side diff of any two, and rollback
// (which stores the old document as a new version; history only grows).

import { api, tenantPath, query } from '../api.js';
import { h, replace, table, time, pre, toast, badge } from '../dom.js';

export async function render(ctx) {
  const [{ live, versions }, doc] = await Promise.all([
    api('GET', tenantPath(ctx.tenant, '/routes/versions')),
    api('GET', tenantPath(ctx.tenant, '/routes')).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
  ]);
  if (!ctx.current()) return;
  const newest = versions.length ? Math.max(...versions.map((v) => v.version)) : null;
  const from = ctx.query.get('from') || (versions.length > 1 ? String(newest - 1) : '');
  const to = ctx.query.get('to') || (live ? String(live) : '');

  const rollback = async (v) => {
    if (!window.confirm(`Make version ${v.version} live again (as a new version)?`)) return;
    try {
      const out = await api('POST', tenantPath(ctx.tenant, '/routes/rollback'), { version: v.version });
      toast(out.unchanged ? `Version ${v.version} is already live` : `Rolled back: version ${out.version} is live`);
      ctx.refresh();
    } catch (e) { toast(e.message, true); }
  };

  const options = (selected) => versions.map((v) => h('option', { value: v.version, selected: String(v.version) === selected }, `v${v.version}`));
  const pick = h('form', { class: 'filters', id: 'diff-form' },
    h('label', {}, 'From', h('select', { name: 'from' }, options(from))),
    h('label', {}, 'To', h('select', { name: 'to' }, options(to))),
    h('button', { type: 'submit' }, 'Compare'));
  pick.addEventListener('submit', (e) => { e.preventDefault(); ctx.go(`#/routes${query(Object.fromEntries(new FormData(pick)))}`); });

  let diffView = h('p', { class: 'empty' }, 'Pick two versions to compare.');
  if (from && to) {
    const d = await api('GET', tenantPath(ctx.tenant, `/routes/diff${query({ from, to })}`));
    if (!ctx.current()) return;
    diffView = d.identical ? h('p', { class: 'empty' }, `Versions ${d.from} and ${d.to} are identical.`) : sideBySide(d);
  }

  replace(ctx.root,
    h('h1', {}, 'Routes'),
    h('div', { class: 'row' },
      h('div', { class: 'card grow' },
        h('h2', {}, 'Versions'),
        table([
          ['version', (v) => [`v${v.version} `, v.version === live ? badge('live') : null]],
          ['origin', (v) => v.origin],
          ['routes', (v) => v.routes, { num: true }],
          ['created', (v) => time(v.created_at)],
          ['', (v) => (v.version !== live ? h('button', { type: 'button', class: 'secondary', onclick: () => rollback(v) }, 'Roll back to this') : '')],
        ], [...versions].sort((a, b) => b.version - a.version), 'No route versions yet.')),
      h('div', { class: 'card grow' },
        h('h2', {}, `Live document${live ? ` (v${live})` : ''}`),
        doc ? pre(doc.document ?? doc) : h('p', { class: 'empty' }, 'No routes applied.'))),
    h('div', { class: 'card', id: 'diff' }, h('h2', {}, 'Compare versions'), pick, diffView));
}

/** A unified diff as two columns: removed lines left, added right, context on both. */
function sideBySide(d) {
  const cells = [h('div', { class: 'head' }, `version ${d.from}`), h('div', { class: 'head' }, `version ${d.to}`)];
  let dels = [];
  let adds = [];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, adds.length); i += 1) {
      cells.push(h('div', { class: i < dels.length ? 'del' : '' }, dels[i] ?? ''));
      cells.push(h('div', { class: i < adds.length ? 'add' : '' }, adds[i] ?? ''));
    }
    dels = [];
    adds = [];
  };
  for (const line of d.diff.split('\n')) {
    if (line.startsWith('---') || line.startsWith('+++') || line === '') continue;
    if (line.startsWith('-')) dels.push(line.slice(1));
    else if (line.startsWith('+')) adds.push(line.slice(1));
    else {
      flush();
      if (line.startsWith('@@')) cells.push(h('div', { class: 'gap' }, line), h('div', { class: 'gap' }, line));
      else cells.push(h('div', {}, line.slice(1)), h('div', {}, line.slice(1)));
    }
  }
  flush();
  return h('div', { class: 'diff' }, cells);
}
