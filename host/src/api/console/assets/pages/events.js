// Events, newest first, filtered by status, type, source, route and time, paged by cursor.

import { api, tenantPath, query } from '../api.js';
import { h, replace, table, badge, time } from '../dom.js';

const FILTERS = ['status', 'type', 'source', 'route', 'since', 'until'];

export async function render(ctx) {
  const params = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || '']));
  const cursor = ctx.query.get('cursor') || '';
  const page = await api('GET', tenantPath(ctx.tenant, `/events${query({ ...params, cursor, limit: 50 })}`));
  if (!ctx.current()) return;

  const form = h('form', { class: 'filters', id: 'event-filters' },
    h('label', {}, 'Status', h('select', { name: 'status' },
      ['', 'pending', 'processed'].map((v) => h('option', { value: v, selected: params.status === v }, v || 'any')))),
    h('label', {}, 'Type', h('input', { name: 'type', value: params.type, placeholder: 'call.ended' })),
    h('label', {}, 'Source', h('input', { name: 'source', value: params.source })),
    h('label', {}, 'Route', h('input', { name: 'route', value: params.route })),
    h('label', {}, 'Since', h('input', { name: 'since', value: params.since, placeholder: '2026-01-01T00:00:00Z' })),
    h('label', {}, 'Until', h('input', { name: 'until', value: params.until })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    ctx.go(`#/events${query(data)}`);
  });

  const next = page.next_cursor
    ? h('p', {}, h('a', { href: `#/events${query({ ...params, cursor: page.next_cursor })}` }, 'Older →'))
    : null;
  replace(ctx.root,
    h('h1', {}, 'Events'),
    h('div', { class: 'card' }, form),
    h('div', { class: 'card' },
      table([
        ['received', (e) => time(e.received_at)],
        ['id', (e) => h('a', { href: `#/events/${encodeURIComponent(e.id)}`, class: 'mono' }, e.id)],
        ['type', (e) => e.type],
        ['source', (e) => e.source],
        ['status', (e) => badge(e.status)],
        ['route version', (e) => e.route_version ?? '', { num: true }],
      ], page.events, 'No events match.'),
      next));
}
