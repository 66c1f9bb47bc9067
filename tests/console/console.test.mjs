// Drives the Switchyard console in Debian's headless Chromium (playwright-core, no browser
// download). Run by tests/console/main.rs, which starts the router and sets the scene:
//
//   node console.test.mjs <base-url> <admin-token> <tenant-key> <tenant> <event-id> <dead-delivery-id> <screenshot.png>
//
// Exits non-zero on the first thing that is not as expected, saying what.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, adminToken, tenantKey, tenant, eventId, deadId, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error('usage: node console.test.mjs <base-url> <admin-token> <tenant-key> <tenant> <event-id> <dead-delivery-id> <screenshot.png>');
  process.exit(2);
}
const TIMEOUT = 20_000;

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Clicks a navigation link and waits until its page is drawn. */
async function open(page, name) {
  await page.click(`#nav a[data-page=${name}]`);
  await page.waitForSelector(`#page[data-ready=${name}]`);
}

/** Waits until the page `name` is drawn for a hash that contains `part`. */
async function drawn(page, name, part) {
  await page.waitForFunction(([n, p]) => {
    const root = document.querySelector('#page');
    return root.dataset.ready === n && (root.dataset.hash || '').includes(p);
  }, [name, part]);
}

function step(name) {
  console.log(`console test: ${name}`);
}

const profile = mkdtempSync(join(tmpdir(), 'switchyard-console-chromium-'));
// A fresh profile of our own, removed at the end.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const problems = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // Script errors and CSP violations show up here: any of them fails the test.
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console error: ${m.text()}`); });
  page.on('dialog', (d) => d.accept());

  step('a wrong token is refused');
  await page.goto(`${base}/console`);
  await page.fill('#token', 'not-a-token');
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#sign-in-error').textContent.length > 0);
  check(await page.isHidden('#nav'), 'the navigation stays hidden after a refused token');

  step('sign in with the admin token');
  await page.fill('#token', adminToken);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])');
  const operatorTenants = await page.$$eval('#tenant option', (os) => os.map((o) => o.value));
  check(operatorTenants.includes(tenant) && operatorTenants.length >= 2, `the operator sees every tenant: ${operatorTenants}`);
  check(!page.url().includes(adminToken), 'the token is not in the URL');
  await page.selectOption('#tenant', tenant);

  step('overview: delivery and latency charts');
  await page.waitForSelector('#delivery-chart svg rect');
  await page.waitForSelector('#latency-chart svg circle');
  const chartText = await page.textContent('#delivery-chart');
  check(/\d+ delivered/.test(chartText) && /[1-9]\d* failed/.test(chartText), `the chart counts delivered and failed attempts: ${chartText}`);
  check((await page.textContent('#latency-chart')).includes('call-outcome-tagger'), 'plugin latency names the plugin');

  step('events: the list, a filter, one event with its route results and attempts');
  await open(page, 'events');
  await page.waitForSelector(`a[href="#/events/${eventId}"]`);
  await page.fill('#event-filters input[name=type]', 'call.outcome_tagged');
  await page.click('#event-filters button[type=submit]');
  await drawn(page, 'events', 'type=call.outcome_tagged');
  const rows = await page.$$eval('tbody tr', (trs) => trs.length);
  check(rows === 1, `the type filter leaves the one call.outcome_tagged event, not ${rows}`);
  await page.click(`a[href="#/events/${eventId}"]`);
  await page.waitForSelector(`.delivery[data-id="${deadId}"][data-status=dead]`);
  check((await page.textContent('#route-results')).includes('emitted'), 'the route result is shown');
  const attempts = await page.$$eval(`.delivery[data-id="${deadId}"] tbody tr`, (trs) => trs.map((t) => t.textContent));
  check(attempts.length === 3 && attempts.every((t) => /50[03]/.test(t)), `three refused attempts are listed: ${attempts}`);

  step('dead letters: find the failed delivery and replay it');
  await open(page, 'dead');
  await page.waitForSelector(`button.replay[data-id="${deadId}"]`);
  await page.click(`button.replay[data-id="${deadId}"]`);
  await page.waitForFunction(() => /queued again|\d{3}:/.test(document.querySelector('#toast').textContent));
  const toast = await page.textContent('#toast');
  check(toast.includes('queued again'), `the replay is confirmed: ${toast}`);

  step('the replayed delivery is delivered');
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const stamp = `t=${Date.now()}`;
    await page.evaluate(([id, t]) => { location.hash = `#/events/${id}?${t}`; }, [eventId, stamp]);
    await drawn(page, 'event', stamp);
    const el = await page.waitForSelector(`.delivery[data-id="${deadId}"]`);
    if ((await el.getAttribute('data-status')) === 'delivered') break;
    check(Date.now() < deadline, 'the replayed delivery was not delivered in time');
    await page.waitForTimeout(200);
  }
  const after = await page.$$eval(`.delivery[data-id="${deadId}"] tbody tr`, (trs) => trs.map((t) => t.textContent));
  check(after.length === 4 && /200/.test(after[3]), `the fourth attempt got 200: ${after}`);

  step('destinations: health');
  await open(page, 'destinations');
  await page.waitForSelector('td .badge');
  check((await page.textContent('#page')).includes('/hook'), 'the destination is listed');

  step('routes: versions and a side-by-side diff');
  await open(page, 'routes');
  await page.waitForSelector('#diff .diff');
  check(await page.$('#diff .diff .del') && await page.$('#diff .diff .add'), 'the diff shows a removed and an added line');
  check((await page.textContent('#diff')).includes('call.outcome_tagged'), 'the diff shows the changed match');

  step('plugins: dry run on a seed fixture');
  await open(page, 'plugins');
  await page.waitForSelector('#dry-run');
  await page.selectOption('#dry-run select[name=fixture]', 'call-tracking/call_outcome_tagged');
  await page.click('#dry-run button[type=submit]');
  await page.waitForSelector('#verdict');
  check((await page.textContent('#verdict')).trim() === 'pass', 'the verdict is pass');
  const outputs = await page.textContent('#outputs');
  check(outputs.includes('"classification": "won"'), `the output is classified: ${outputs.slice(0, 200)}`);
  check((await page.textContent('#dry-run-result')).includes('classified as won'), 'the plugin log is shown');
  check(/\d/.test(await page.textContent('#duration')) && /KiB/.test(await page.textContent('#memory')), 'time and memory are shown');

  step('plugins: dry run on a pasted event');
  await page.selectOption('#dry-run select[name=input]', 'event');
  await page.fill('#dry-run textarea[name=event]', JSON.stringify({ type: 'call.outcome_tagged', data: { id: 7, outcome_type: 'spam' } }));
  await page.click('#dry-run button[type=submit]');
  await page.waitForFunction(() => !document.querySelector('#verdict')?.textContent.includes('pass'));
  await page.waitForSelector('#verdict');
  const dropped = await page.textContent('#dry-run-result');
  check((await page.textContent('#verdict')).trim() === 'drop' && dropped.includes('noise outcome: spam'), `the drop and its reason are shown: ${dropped.slice(0, 300)}`);

  step('screenshot of the overview');
  await open(page, 'overview');
  await page.waitForSelector('#latency-chart svg circle');
  await page.evaluate(() => { document.getElementById('toast').hidden = true; });
  await page.screenshot({ path: screenshot, fullPage: true });

  step('sign in as the tenant: it sees its own tenant only');
  await page.click('#sign-out');
  await page.waitForSelector('#sign-in:not([hidden])');
  await page.fill('#token', tenantKey);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])');
  const tenantTenants = await page.$$eval('#tenant option', (os) => os.map((o) => o.value));
  check(tenantTenants.length === 1 && tenantTenants[0] === tenant, `a tenant key sees only ${tenant}: ${tenantTenants}`);
  check((await page.textContent('#role')) === 'tenant', 'the role says tenant');
  await open(page, 'events');
  await page.waitForSelector(`a[href="#/events/${eventId}"]`);
  const other = operatorTenants.find((t) => t !== tenant);
  const status = await page.evaluate(async (name) => (await fetch(`/v1/tenants/${name}/events`, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem('switchyard.token')}` },
  })).status, other);
  check(status === 404, `another tenant's events answer 404 to this key, not ${status}`);

  check(problems.length === 0, `no script errors or CSP violations:\n${problems.join('\n')}`);
  step('all passed');
} catch (e) {
  console.error(e.stack || String(e));
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
