// Destinations: health (failing since, disabled and why), settings, and enabling one the
// router disabled. Secrets are never shown by the API.

import { api, tenantPath } from '../api.js';
import { h, replace, table, badge, time, toast } from '../dom.js';

export async function render(ctx) {
  const { destinations } = await api('GET', tenantPath(ctx.tenant, '/destinations'));
  if (!ctx.current()) return;
  const enable = async (d) => {
    try {
      await api('POST', tenantPath(ctx.tenant, '/destinations/enable'), { url: d.url });
      toast(`${d.url} enabled; replay its dead letters once it is fixed`);
      ctx.refresh();
    } catch (e) { toast(e.message, true); }
  };
  replace(ctx.root,
    h('h1', {}, 'Destinations'),
    h('div', { class: 'card' }, table([
      ['destination', (d) => h('span', { class: 'mono' }, d.url)],
      ['health', (d) => badge(d.status)],
      ['failing since', (d) => time(d.failing_since)],
      ['disabled', (d) => (d.disabled_at ? [time(d.disabled_at), ' ', d.disabled_reason || ''] : '')],
      ['timeout', (d) => (d.timeout_ms ? `${d.timeout_ms} ms` : 'default')],
      ['in flight', (d) => d.max_in_flight ?? 'default'],
      ['retry schedule', (d) => (d.retry_schedule_ms ? d.retry_schedule_ms.map((ms) => `${ms} ms`).join(', ') : 'default')],
      ['rotation until', (d) => time(d.previous_secret_until)],
      ['', (d) => (d.status === 'disabled' ? h('button', { type: 'button', onclick: () => enable(d) }, 'Enable') : '')],
    ], destinations, 'No destinations yet: they come from the route document.')));
}
