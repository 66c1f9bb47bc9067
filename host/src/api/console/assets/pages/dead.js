// Dead letters: the deliveries whose every attempt failed. Replay one (the same payload and
// webhook id), or every one matching a filter, resent as stored or rerun through the route's
// current plugin chain.

import { api, tenantPath, query } from '../api.js';
import { h, replace, table, time, toast, pre } from '../dom.js';

export async function render(ctx) {
  const params = { route: ctx.query.get('route') || '', since: ctx.query.get('since') || '', until: ctx.query.get('until') || '' };
  const cursor = ctx.query.get('cursor') || '';
  const page = await api('GET', tenantPath(ctx.tenant, `/deliveries${query({ status: 'dead', ...params, cursor, limit: 50 })}`));
  if (!ctx.current()) return;
  const rows = page.deliveries.filter((d) => !d.superseded_at);

  const replayOne = async (d, button) => {
    button.disabled = true;
    try {
      await api('POST', tenantPath(ctx.tenant, `/deliveries/${encodeURIComponent(d.id)}/replay`));
      toast(`Delivery ${d.id} queued again`);
      ctx.refresh();
    } catch (e) { button.disabled = false; toast(e.message, true); }
  };

  const filters = h('form', { class: 'filters', id: 'dead-filters' },
    h('label', {}, 'Route', h('input', { name: 'route', value: params.route })),
    h('label', {}, 'Since', h('input', { name: 'since', value: params.since, placeholder: '2026-01-01T00:00:00Z' })),
    h('label', {}, 'Until', h('input', { name: 'until', value: params.until })),
    h('button', { type: 'submit' }, 'Filter'));
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.go(`#/dead${query(Object.fromEntries(new FormData(filters)))}`);
  });

  const result = h('div', { id: 'replay-result' });
  const bulk = h('form', { class: 'filters', id: 'replay-filter' },
    h('label', {}, 'Route', h('input', { name: 'route', value: params.route })),
    h('label', {}, 'Destination URL', h('input', { name: 'url', size: 36 })),
    h('label', {}, 'Since', h('input', { name: 'since', value: params.since })),
    h('label', {}, 'Until', h('input', { name: 'until', value: params.until })),
    h('label', {}, 'Mode', h('select', { name: 'mode' },
      h('option', { value: 'resend' }, 'resend the stored payload'),
      h('option', { value: 'rerun' }, 'rerun the current plugin chain'))),
    h('button', { type: 'submit' }, 'Replay matching'));
  bulk.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = Object.fromEntries([...new FormData(bulk)].filter(([, v]) => v !== ''));
    if (!window.confirm(`Replay every dead letter matching ${JSON.stringify(body)}?`)) return;
    try {
      const out = await api('POST', tenantPath(ctx.tenant, '/deliveries/replay'), body);
      toast(`${out.replayed} dead letter(s) replayed (${out.mode})`);
      replace(result, h('h3', {}, 'Result'), pre(out));
    } catch (err) { toast(err.message, true); }
  });

  replace(ctx.root,
    h('h1', {}, 'Dead letters'),
    h('div', { class: 'card' }, filters),
    h('div', { class: 'card', id: 'dead-list' },
      table([
        ['created', (d) => time(d.created_at)],
        ['delivery', (d) => h('span', { class: 'mono' }, d.id)],
        ['event', (d) => h('a', { href: `#/events/${encodeURIComponent(d.event_id)}`, class: 'mono' }, d.event_id)],
        ['route', (d) => d.route],
        ['destination', (d) => h('span', { class: 'mono' }, d.url)],
        ['attempts', (d) => d.attempts, { num: true }],
        ['last answer', (d) => (d.last_status ? String(d.last_status) : (d.last_error || ''))],
        ['', (d) => h('button', { type: 'button', class: 'secondary replay', 'data-id': d.id, onclick: (e) => replayOne(d, e.target) }, 'Replay')],
      ], rows, 'No dead letters.'),
      page.next_cursor ? h('p', {}, h('a', { href: `#/dead${query({ ...params, cursor: page.next_cursor })}` }, 'Older →')) : null),
    h('div', { class: 'card' },
      h('h2', {}, 'Replay by filter'),
      h('p', { class: 'muted' }, 'Every field narrows; none replays all of this tenant\'s dead letters.'),
      bulk, result));
}
