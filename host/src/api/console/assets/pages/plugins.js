// Plugins: names and versions, and a dry run of one version on a seed fixture or a pasted
// event, showing the verdict, outputs, logs, time and memory. A dry run delivers nothing and
// keeps no kv writes.

import { api, tenantPath } from '../api.js';
import { h, replace, table, time, pre, badge, facts } from '../dom.js';
import { formatMicros } from '../chart.js';

const SAMPLE_EVENT = JSON.stringify({ type: 'call.ended', source: 'test', data: { call_id: 'c_1', duration_seconds: 42 } }, null, 2);

export async function render(ctx) {
  const { plugins } = await api('GET', tenantPath(ctx.tenant, '/plugins'));
  if (!ctx.current()) return;
  const names = [...new Set(plugins.map((p) => p.name))];
  const selected = ctx.arg || names[0];
  const list = h('div', { class: 'card grow' },
    h('h2', {}, 'Plugins'),
    table([
      ['name', (n) => h('a', { href: `#/plugins/${encodeURIComponent(n)}` }, n)],
      ['versions', (n) => plugins.filter((p) => p.name === n).length, { num: true }],
      ['latest', (n) => `v${Math.max(...plugins.filter((p) => p.name === n).map((p) => p.version))}`],
    ], names, 'No plugins uploaded yet (switchyard plugin upload, or POST the .wasm).'));
  if (!selected) return replace(ctx.root, h('h1', {}, 'Plugins'), list);

  const [{ versions }, { fixtures }] = await Promise.all([
    api('GET', tenantPath(ctx.tenant, `/plugins/${encodeURIComponent(selected)}`)),
    api('GET', '/v1/fixtures'),
  ]);
  if (!ctx.current()) return;

  const output = h('div', { id: 'dry-run-result' });
  const form = h('form', { id: 'dry-run' },
    h('div', { class: 'filters' },
      h('label', {}, 'Version', h('select', { name: 'version' },
        [...versions].reverse().map((v) => h('option', { value: v.version }, `v${v.version}`)))),
      h('label', {}, 'Input', h('select', { name: 'input' },
        h('option', { value: 'fixture' }, 'a seed fixture'), h('option', { value: 'event' }, 'a pasted event'))),
      h('label', { class: 'for-fixture' }, 'Fixture', h('select', { name: 'fixture' }, fixtures.map((f) => h('option', { value: f }, f))))),
    h('label', { class: 'for-event', hidden: true }, 'Event (type, data; source, subject, time, attributes optional)',
      h('textarea', { name: 'event', spellcheck: 'false' }, SAMPLE_EVENT)),
    h('label', {}, 'Step config (JSON object, optional)', h('textarea', { name: 'config', spellcheck: 'false', class: 'short' }, '{}')),
    h('p', {}, h('button', { type: 'submit' }, 'Dry run')));
  const inputKind = form.elements.input;
  inputKind.addEventListener('change', () => {
    form.querySelector('.for-fixture').hidden = inputKind.value !== 'fixture';
    form.querySelector('.for-event').hidden = inputKind.value !== 'event';
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(output, h('p', { class: 'muted' }, 'Running…'));
    let body;
    try {
      body = { config: JSON.parse(form.elements.config.value || '{}') };
      if (inputKind.value === 'fixture') body.fixture = form.elements.fixture.value;
      else body.event = JSON.parse(form.elements.event.value);
    } catch (err) {
      return replace(output, h('p', { class: 'error' }, `Not valid JSON: ${err.message}`));
    }
    try {
      const r = await api('POST', tenantPath(ctx.tenant, `/plugins/${encodeURIComponent(selected)}/versions/${form.elements.version.value}/test`), body);
      replace(output, result(r));
    } catch (err) {
      replace(output, h('p', { class: 'error' }, err.message));
    }
  });

  replace(ctx.root,
    h('h1', {}, 'Plugins'),
    h('div', { class: 'row' },
      list,
      h('div', { class: 'card grow' },
        h('h2', {}, `Versions of ${selected}`),
        table([
          ['version', (v) => `v${v.version}`],
          ['created', (v) => time(v.created_at)],
          ['size', (v) => `${(v.size / 1024).toFixed(1)} KiB`, { num: true }],
          ['imports', (v) => v.imports.join(', ')],
          ['sha256', (v) => h('span', { class: 'mono', title: v.sha256 }, v.sha256.slice(0, 12))],
        ], versions))),
    h('div', { class: 'card' }, h('h2', {}, `Dry run ${selected}`), form, output));
}

function result(r) {
  return h('div', {},
    h('h3', {}, 'Result'),
    facts([
      ['verdict', h('span', { id: 'verdict' }, badge(r.verdict))],
      ['reason', r.reason],
      ['time', h('span', { id: 'duration' }, formatMicros(r.duration_us))],
      ['peak memory', h('span', { id: 'memory' }, `${(r.memory_bytes / 1024).toFixed(0)} KiB`)],
      ['plugin', r.plugin],
    ]),
    h('h3', {}, `Outputs (${r.outputs.length})`),
    h('div', { id: 'outputs' }, r.outputs.length ? r.outputs.map((o) => pre(o)) : h('p', { class: 'empty' }, 'None.')),
    h('h3', {}, `Logs (${r.logs.length})`),
    table([['level', (l) => badge(l.level)], ['message', (l) => h('span', { class: 'mono' }, l.message)]], r.logs, 'No log lines.'),
    h('h3', {}, 'Input'),
    pre(r.input));
}
