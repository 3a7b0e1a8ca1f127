// The dashboard in headless Chromium, driven by playwright-core (no browser download: Debian's
// /usr/bin/chromium). Run by tests/dashboard_browser.rs against `tessera serve --demo`:
//
//   node dashboard.test.mjs 'http://127.0.0.1:PORT/?token=...'
//
// Checks that the three demo devices appear rendered from their UI schemas, that a value updates
// live without a reload, that the filters work and that the light's toggle widget changes the
// light. Saves screenshots in $TESSERA_ARTIFACTS (default: ./artifacts). Prints progress lines,
// then one JSON report line for the Rust test, and exits non-zero on the first failed check.

import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { chromium } from 'playwright-core';

const url = process.argv[2];
if (!url) {
  console.error('usage: node dashboard.test.mjs <dashboard url with ?token=>');
  process.exit(2);
}
const artifacts = process.env.TESSERA_ARTIFACTS || 'artifacts';
mkdirSync(artifacts, { recursive: true });
// Generous: the machine may be loaded; every wait polls and returns as soon as it holds.
const WAIT = 60_000;
const LIGHT = 'simulator:light-1';

const step = (text) => console.log(`- ${text}`);

/** Every device's UI schema as the API serves it, each checked against schemas/ui-schema.json. */
async function servedSchemas() {
  const ajv = new Ajv2020({ allErrors: true });
  const validate = ajv.compile(JSON.parse(readFileSync(new URL('../../schemas/ui-schema.json', import.meta.url))));
  const token = new URL(url).searchParams.get('token');
  const res = await fetch(new URL('/graphql', url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ devices(first: 50) { edges { node { id ui } } } }' }),
  });
  const body = await res.json();
  const out = new Map();
  for (const { node } of body.data.devices.edges) {
    check(validate(node.ui), `${node.id}: its ui does not match ui-schema.json: ${ajv.errorsText(validate.errors)}`);
    out.set(node.id, node.ui);
  }
  return out;
}
function check(ok, message) {
  if (!ok) throw new Error(message);
}

const profile = mkdtempSync(join(tmpdir(), 'tessera-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
let exitCode = 0;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url().replace(/token=[^&]+/, 'token=…')}`); });
  page.setDefaultTimeout(WAIT);

  await page.goto(url);
  await page.locator('#connection', { hasText: 'live' }).waitFor();
  step('connected live over graphql-transport-ws');
  check(!new URL(page.url()).searchParams.has('token'), 'the token stays in the address bar');

  // Devices appear, each rendered from its UI schema (widgets carry their bindings).
  await page.waitForFunction(() => document.querySelectorAll('[data-device-id]').length === 3);
  const ids = await page.$$eval('[data-device-id]', (els) => els.map((e) => e.dataset.deviceId));
  check(JSON.stringify(ids) === JSON.stringify(['simulator:climate-1', LIGHT, 'simulator:meter-1']), `devices: ${ids}`);
  const schemas = await servedSchemas();
  for (const id of ids) {
    // Exactly the widgets of the device's UI schema, in order, and nothing else.
    const wanted = schemas.get(id).cards.flatMap((c) => c.widgets.map((w) => `${w.type}:${w.capability ?? ''}:${w.action ?? ''}`));
    const shown = await page.$$eval(`[data-device-id="${id}"] [data-widget]`,
      (els) => els.map((e) => `${e.dataset.widget}:${e.dataset.capability ?? ''}:${e.dataset.action ?? ''}`));
    check(wanted.length > 0 && JSON.stringify(shown) === JSON.stringify(wanted), `${id} shows ${shown}, its schema says ${wanted}`);
    const titles = await page.$$eval(`[data-device-id="${id}"] .ui-card h3`, (els) => els.map((e) => e.textContent));
    check(JSON.stringify(titles) === JSON.stringify(schemas.get(id).cards.map((c) => c.title)), `${id} card titles ${titles}`);
  }
  const temperature = page.locator('[data-device-id="simulator:climate-1"] [data-widget="value"][data-capability="temperature"] .widget-value');
  await page.waitForFunction((el) => /\d/.test(el.textContent), await temperature.elementHandle());
  step(`devices shown: ${ids.join(', ')}`);

  // The plugin's health is shown.
  await page.locator('#plugins [data-plugin-id="simulator"][data-state="running"]').waitFor();

  // A value updates live, without a reload: a marker set on the page survives the update.
  await page.evaluate(() => { window.__noReload = true; });
  const power = page.locator('[data-device-id="simulator:meter-1"] [data-widget][data-capability="power"] .widget-value').first();
  const powerBefore = (await power.textContent()).trim();
  await page.waitForFunction(([el, old]) => el.textContent.trim() !== old && /\d/.test(el.textContent),
    [await power.elementHandle(), powerBefore]);
  const powerAfter = (await power.textContent()).trim();
  check(await page.evaluate(() => window.__noReload === true), 'the page reloaded');
  step(`power updated live: ${powerBefore} -> ${powerAfter}`);
  await page.screenshot({ path: join(artifacts, 'devices.png'), fullPage: true });

  // Filters: by device class, then back to all.
  await page.selectOption('#f-class', 'light');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-device-id]')].filter((e) => !e.hidden).length === 1);
  check(await page.locator(`[data-device-id="${LIGHT}"]`).isVisible(), 'the light is shown when filtering lights');
  await page.selectOption('#f-class', '');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-device-id]')].filter((e) => !e.hidden).length === 3);
  step('class filter works');

  // Toggle the light through its widget; the state comes back through the live update.
  const toggle = page.locator(`[data-device-id="${LIGHT}"] button[data-widget="toggle"][data-capability="switch"]`);
  check(await toggle.getAttribute('data-action') === 'toggle', 'the toggle is bound to the toggle action');
  const before = (await toggle.getAttribute('aria-pressed')) === 'true';
  await toggle.click();
  await page.waitForFunction(([el, old]) => el.getAttribute('aria-pressed') !== old,
    [await toggle.elementHandle(), String(before)]);
  const after = (await toggle.getAttribute('aria-pressed')) === 'true';
  await page.locator(`[data-device-id="${LIGHT}"] .action-line`, { hasText: 'succeeded' }).waitFor();
  step(`light toggled: ${before ? 'on' : 'off'} -> ${after ? 'on' : 'off'}`);
  await page.screenshot({ path: join(artifacts, 'after-toggle.png'), fullPage: true });

  // The detail panel draws the device's history and lists its recent actions from the API.
  await page.locator(`[data-device-id="${LIGHT}"] .name`).click();
  await page.locator('#detail[open]').waitFor();
  await page.locator('#detail-actions li[data-status="succeeded"]', { hasText: 'toggle' }).waitFor();
  await page.waitForFunction(() => document.querySelector('#detail-chart polyline, #detail-chart circle') !== null);
  step('detail panel shows history and the toggle');
  await page.screenshot({ path: join(artifacts, 'detail.png') });
  await page.locator('#detail-close').click();

  check(problems.length === 0, `the page reported problems:\n${problems.join('\n')}`);
  console.log(JSON.stringify({ devices: ids.length, light: { before, after }, power: { before: powerBefore, after: powerAfter } }));
} catch (e) {
  exitCode = 1;
  console.log(`FAILED: ${e.message}`);
  if (problems.length) console.log(problems.join('\n'));
  for (const page of context.pages()) {
    await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
