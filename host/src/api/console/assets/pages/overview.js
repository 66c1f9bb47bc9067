// The last hour at a glance: delivery attempts per minute by outcome for each destination,
// and plugin latency (p95 per minute) for each plugin.

import { api, tenantPath } from '../api.js';
import { h, replace } from '../dom.js';
import { stackedBars, lines, legend, formatMicros } from '../chart.js';

const OUTCOMES = ['delivered', 'failed', 'error'];

export async function render(ctx) {
  if (!ctx.tenant) return replace(ctx.root, h('div', { class: 'card' }, h('p', {}, 'No tenants yet.')));
  const stats = await api('GET', tenantPath(ctx.tenant, '/stats'));
  if (!ctx.current()) return;
  const t0 = Date.parse(stats.since);
  const minutes = 60;

  const deliveries = stats.deliveries.length
    ? stats.deliveries.map((d) => {
      const sum = (k) => d.minutes.reduce((a, m) => a + m[k], 0);
      return h('div', { class: 'destination-chart' },
        h('h3', { class: 'mono' }, d.url),
        h('p', { class: 'muted' }, OUTCOMES.map((k) => `${sum(k)} ${k}`).join(' · ')),
        stackedBars({
          points: d.minutes.map((m) => ({ t: Date.parse(m.minute), values: m })),
          keys: OUTCOMES, t0, minutes, label: `Delivery attempts per minute to ${d.url}`,
        }));
    })
    : h('p', { class: 'empty' }, 'No delivery attempts in the last hour.');

  const plugins = stats.plugins.length
    ? [
      legend(stats.plugins.map((p, i) => [`sw-${i % 6}`, p.plugin])),
      lines({
        series: stats.plugins.map((p) => ({ name: p.plugin, points: p.minutes.map((m) => ({ t: Date.parse(m.minute), v: m.p95_us })) })),
        t0, minutes, label: 'Plugin call latency, 95th percentile per minute',
      }),
      h('table', {},
        h('thead', {}, h('tr', {}, ['plugin', 'calls', 'failures', 'mean', 'p95 (worst minute)', 'max'].map((t, i) => h('th', { class: i ? 'num' : null }, t)))),
        h('tbody', {}, stats.plugins.map((p) => {
          const calls = p.minutes.reduce((a, m) => a + m.calls, 0);
          const failures = p.minutes.reduce((a, m) => a + m.failures, 0);
          const mean = p.minutes.reduce((a, m) => a + m.mean_us * m.calls, 0) / Math.max(1, calls);
          const p95 = Math.max(...p.minutes.map((m) => m.p95_us));
          const max = Math.max(...p.minutes.map((m) => m.max_us));
          return h('tr', {}, h('td', {}, p.plugin), [calls, failures, formatMicros(mean), formatMicros(p95), formatMicros(max)]
            .map((v) => h('td', { class: 'num' }, v)));
        }))),
    ]
    : h('p', { class: 'empty' }, 'No plugin calls in the last hour (dry runs are not counted).');

  replace(ctx.root,
    h('h1', {}, `Overview: ${ctx.tenant}`),
    h('div', { class: 'card', id: 'delivery-chart' },
      h('h2', {}, 'Delivery attempts per minute, last hour'),
      legend(OUTCOMES.map((k) => [`sw-${k}`, k === 'error' ? 'error (no answer)' : k])),
      deliveries),
    h('div', { class: 'card', id: 'latency-chart' },
      h('h2', {}, 'Plugin latency, last hour (p95 per minute)'),
      plugins));
}
