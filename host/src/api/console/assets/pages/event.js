// One event: its data, what each route did (plugin failures with their message), and each
// delivery with every attempt; dead or delivered deliveries can be replayed from here.

import { api, tenantPath } from '../api.js';
import { h, replace, table, badge, time, facts, pre, toast } from '../dom.js';

export async function render(ctx) {
  const id = ctx.arg;
  const ev = await api('GET', tenantPath(ctx.tenant, `/events/${encodeURIComponent(id)}`));
  const details = await Promise.all(ev.deliveries.map((d) =>
    api('GET', tenantPath(ctx.tenant, `/deliveries/${encodeURIComponent(d.id)}`))));
  if (!ctx.current()) return;

  const replay = async (d) => {
    try {
      await api('POST', tenantPath(ctx.tenant, `/deliveries/${encodeURIComponent(d.id)}/replay`));
      toast(`Delivery ${d.id} queued again`);
      ctx.refresh();
    } catch (e) { toast(e.message, true); }
  };

  replace(ctx.root,
    h('p', {}, h('a', { href: '#/events' }, '← Events')),
    h('h1', { class: 'mono' }, ev.id),
    h('div', { class: 'row' },
      h('div', { class: 'card grow' }, facts([
        ['status', badge(ev.status)], ['type', ev.type], ['source', ev.source], ['subject', ev.subject],
        ['upstream id', ev.upstream_id], ['time', time(ev.time)], ['received', time(ev.received_at)],
        ['processed', time(ev.processed_at)], ['route version', ev.route_version], ['tries', ev.tries],
        ['last error', ev.last_error],
      ])),
      h('div', { class: 'card grow' }, h('h3', {}, 'Data'), pre(ev.data))),
    h('div', { class: 'card', id: 'route-results' },
      h('h2', {}, 'Route results'),
      table([
        ['route', (r) => r.route],
        ['outcome', (r) => badge(r.outcome)],
        ['outputs', (r) => r.outputs, { num: true }],
        ['detail (plugin failure or drop reason)', (r) => (r.detail ? h('span', { class: r.outcome === 'failed' ? 'error' : '' }, r.detail) : '')],
      ], ev.routes, 'No route matched this event (or it is still pending).')),
    h('div', { class: 'card', id: 'deliveries' },
      h('h2', {}, 'Deliveries'),
      details.length ? details.map((d) => h('div', { class: 'delivery', 'data-id': d.id, 'data-status': d.status },
        h('h3', {}, h('span', { class: 'mono' }, d.id), ' ', badge(d.status), ' ',
          d.status !== 'pending' && !d.superseded_at ? h('button', { class: 'secondary', type: 'button', onclick: () => replay(d) }, 'Replay') : null),
        facts([['route', d.route], ['destination', h('span', { class: 'mono' }, d.url)], ['next attempt', time(d.next_attempt_at)],
          ['superseded', time(d.superseded_at)]]),
        table([
          ['#', (a) => a.attempt, { num: true }],
          ['started', (a) => time(a.started_at)],
          ['took', (a) => `${a.duration_ms} ms`, { num: true }],
          ['status', (a) => (a.status_code ? badge(String(a.status_code)) : '')],
          ['error', (a) => a.error || ''],
          ['response', (a) => (a.response_snippet ? h('span', { class: 'mono' }, a.response_snippet) : '')],
        ], d.attempts_log, 'No attempt yet.'))) : h('p', { class: 'empty' }, 'No deliveries.')));
}
