// A real-browser check of the status page that `hotline up` serves.
//
//   node services/hotline/tests/web/status_page.mjs URL ARTIFACTS_DIR
//
// URL is the status page (`  status page:  http://127.0.0.1:PORT/` from `hotline up`,
// run with the demo site and some load, e.g. `--arrivals-per-hour 6000`); screenshots
// go to ARTIFACTS_DIR. Drives the system Chromium (/usr/bin/chromium) through the
// `playwright-core` package in ops/dev/node; `ops/dev/install-browser` installs both.
// Every wait polls against a deadline. Prints one line per check and a last line
// `N passed, M failed`; exits 0 only if all passed (1 if a check failed, 2 if the
// browser could not be started at all).
//
// Run by services/hotline/tests/status_page.rs.

import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHROMIUM = '/usr/bin/chromium';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

// The demo site (services/hotline/demo/site.toml).
const QUEUES = [
  'acme/claims', 'acme/sales', 'acme/webchat',
  'globex/support', 'globex/billing', 'globex/mandarin',
];
const AGENTS = [
  'alice', 'bruno', 'chen', 'dana', 'eli', 'fatima',
  'gus', 'hana', 'ivan', 'jun', 'kim', 'leo',
];
// Agents with at least one `serves` entry for globex.
const GLOBEX_AGENTS = ['chen', 'hana', 'ivan', 'jun', 'kim', 'leo'];

const EN_STATES = ['ready', 'ringing', 'on contact', 'wrap-up', 'not ready', 'logged out'];
const ZH_STATES = ['就绪', '振铃中', '通话中', '话后处理', '未就绪', '已登出'];

// --- harness -----------------------------------------------------------------

const [url, artifacts] = process.argv.slice(2);
if (!url || !artifacts) {
  console.error('usage: node status_page.mjs STATUS_PAGE_URL ARTIFACTS_DIR');
  process.exit(2);
}
const host = new URL(url).hostname;
if (host !== '127.0.0.1') {
  console.error(`status page URL must be on 127.0.0.1, got ${url}`);
  process.exit(2);
}

let passed = 0;
let failed = 0;

/** Runs one named check; a failure is reported and counted, and the run goes on. */
async function check(name, body) {
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
  }
}

/**
 * Polls `probe` until `accept(value)` holds or `ms` pass; on timeout, throws an error
 * that says what was awaited and the last value seen.
 */
async function eventually(what, probe, accept, ms = 5000, everyMs = 100) {
  const deadline = Date.now() + ms;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (accept(last)) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const seen = lastError ? `error: ${lastError.message}` : JSON.stringify(last);
      throw new Error(`within ${ms} ms, expected ${what}; last seen: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

// What the page shows, read in one round trip.
const readPage = (page) =>
  page.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.textContent.trim() ?? null;
    return {
      lang: document.documentElement.lang,
      title: text('h1[data-i18n="title"]'),
      queuesHeading: text('h2[data-i18n="queues"]'),
      agentsHeading: text('h2[data-i18n="agents"]'),
      slHeading: text('th[data-i18n="sl"]'),
      button: text('#lang'),
      updated: text('#updated'),
      error: getComputedStyle(document.getElementById('error')).display === 'none'
        ? null
        : text('#error'),
      queues: [...document.querySelectorAll('#queues tbody tr[data-queue]')].map((tr) => ({
        id: tr.dataset.queue,
        answered: Number(tr.querySelector('td.answered')?.textContent),
        waiting: parseInt(tr.querySelector('td.waiting')?.textContent ?? '', 10),
      })),
      agents: [...document.querySelectorAll('#agents tbody tr[data-agent]')].map((tr) => ({
        id: tr.dataset.agent,
        state: tr.querySelector('.state')?.textContent.trim() ?? null,
        serves: tr.children[2]?.textContent ?? '',
      })),
    };
  });

// --- browser -------------------------------------------------------------------

let chromium;
try {
  const require = createRequire(join(repoRoot, 'ops/dev/node/package.json'));
  ({ chromium } = require('playwright-core'));
} catch (e) {
  console.error(`cannot load playwright-core from ops/dev/node (${e.message}); run ops/dev/install-browser`);
  process.exit(2);
}

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'hotline-chromium-'));

// A hung browser must not hang the test: give up after two minutes.
const watchdog = setTimeout(() => {
  console.log('FAIL the whole run took over 120 s');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 120_000);
watchdog.unref();

let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Nothing but 127.0.0.1 (an address literal, never resolved) is reachable.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
    viewport: { width: 1400, height: 900 },
    locale: 'en-US',
    timeout: 30_000,
  });
} catch (e) {
  console.error(`cannot start ${CHROMIUM} through playwright-core: ${e.message}`);
  rmSync(profile, { recursive: true, force: true });
  process.exit(2);
}

const pageErrors = [];
const statusResponses = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('response', (r) => {
  if (new URL(r.url()).pathname === '/api/status') statusResponses.push({ at: Date.now(), status: r.status() });
});

try {
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15_000 });

  await check('the page shows all 6 queues and 12 agents', async () => {
    await eventually(
      `queues ${QUEUES.join(', ')} and agents ${AGENTS.join(', ')}`,
      async () => {
        const s = await readPage(page);
        return { queues: s.queues.map((q) => q.id), agents: s.agents.map((a) => a.id) };
      },
      (s) => sameSet(s.queues, QUEUES) && sameSet(s.agents, AGENTS),
    );
  });

  await check('the "Updated" time changes every second or so, with no error shown', async () => {
    const first = await eventually('an "Updated" time', () => readPage(page), (s) => s.updated && s.updated !== '—');
    // Seconds resolution: a 1 s poll changes the text every ~1 s; 3 s each leaves slack for a busy CI.
    const second = await eventually(`"Updated" to change from ${first.updated}`, () => readPage(page),
      (s) => s.updated !== first.updated, 3000, 50);
    await eventually(`"Updated" to change again from ${second.updated}`, () => readPage(page),
      (s) => s.updated !== second.updated, 3000, 50);
    const s = await readPage(page);
    if (s.error) throw new Error(`error banner shown: ${s.error}`);
    const since = Date.now() - 3000;
    const recent = statusResponses.filter((r) => r.at >= since);
    if (recent.length < 2 || recent.some((r) => r.status !== 200)) {
      throw new Error(`expected ≥ 2 OK /api/status polls in 3 s, saw ${JSON.stringify(recent)}`);
    }
  });

  await check("some queue's answered count increases", async () => {
    const before = Object.fromEntries((await readPage(page)).queues.map((q) => [q.id, q.answered]));
    if (Object.values(before).some((n) => !Number.isInteger(n))) {
      throw new Error(`answered cells are not whole numbers: ${JSON.stringify(before)}`);
    }
    await eventually(
      `an answered count above ${JSON.stringify(before)}`,
      async () => Object.fromEntries((await readPage(page)).queues.map((q) => [q.id, q.answered])),
      (now) => Object.entries(now).some(([id, n]) => n > before[id]),
      20_000,
      200,
    );
  });

  await check('every agent has a visible state badge in English', async () => {
    const badge = page.locator('#agents tr[data-agent] .state').first();
    await eventually('a visible state badge', () => badge.isVisible(), (v) => v === true);
    const s = await readPage(page);
    const bad = s.agents.filter((a) => !a.state || !EN_STATES.some((st) => a.state.startsWith(st)));
    if (bad.length) throw new Error(`badges not an English state: ${JSON.stringify(bad)}`);
    await page.screenshot({ path: join(artifacts, 'status-en.png'), fullPage: true });
  });

  await check('clicking the language button switches the page to Chinese', async () => {
    await page.click('#lang');
    await eventually(
      'headings 站点状态 / 队列 / 座席 / 服务水平, button "English", lang zh-CN',
      () => readPage(page),
      (s) => s.title === '站点状态' && s.queuesHeading === '队列' && s.agentsHeading === '座席'
        && s.slHeading === '服务水平' && s.button === 'English' && s.lang === 'zh-CN',
    );
    await eventually('every agent state badge in Chinese', () => readPage(page),
      (s) => s.agents.length === AGENTS.length
        && s.agents.every((a) => a.state && ZH_STATES.some((st) => a.state.startsWith(st))));
    await page.screenshot({ path: join(artifacts, 'status-zh.png'), fullPage: true });
  });

  await check('clicking it again switches back to English', async () => {
    await page.click('#lang');
    await eventually(
      'headings Site status / Queues / Agents / Service level, button "中文", lang en',
      () => readPage(page),
      (s) => s.title === 'Site status' && s.queuesHeading === 'Queues' && s.agentsHeading === 'Agents'
        && s.slHeading === 'Service level' && s.button === '中文' && s.lang === 'en',
    );
  });

  await check('?lang=zh opens the page in Chinese', async () => {
    const zh = new URL(url);
    zh.searchParams.set('lang', 'zh');
    await page.goto(zh.href, { waitUntil: 'domcontentloaded', timeout: 15_000 });
    await eventually('headings 队列 / 座席 and 12 agents', () => readPage(page),
      (s) => s.queuesHeading === '队列' && s.agentsHeading === '座席' && s.agents.length === AGENTS.length);
  });

  await check('?tenant=globex shows only the 3 globex queues and the agents who serve globex', async () => {
    const globex = new URL(url);
    globex.searchParams.set('tenant', 'globex');
    await page.goto(globex.href, { waitUntil: 'domcontentloaded', timeout: 15_000 });
    const s = await eventually(
      `queues ${QUEUES.filter((q) => q.startsWith('globex/')).join(', ')} and agents ${GLOBEX_AGENTS.join(', ')}`,
      () => readPage(page),
      (s) => sameSet(s.queues.map((q) => q.id), QUEUES.filter((q) => q.startsWith('globex/')))
        && sameSet(s.agents.map((a) => a.id), GLOBEX_AGENTS),
    );
    const strays = s.agents.filter((a) => !a.serves.split(', ').includes('globex'));
    if (strays.length) throw new Error(`agents not serving globex: ${JSON.stringify(strays)}`);
    await page.screenshot({ path: join(artifacts, 'status-globex.png'), fullPage: true });
  });

  await check('the error banner shows while /api/status is unreachable, and clears after', async () => {
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15_000 });
    await eventually('12 agents', () => readPage(page), (s) => s.agents.length === AGENTS.length);
    await page.route('**/api/status*', (route) => route.abort('connectionrefused'));
    await eventually('the "Cannot reach Hotline" banner', () => readPage(page),
      (s) => s.error && s.error.startsWith('Cannot reach Hotline'), 3000);
    await page.screenshot({ path: join(artifacts, 'status-unreachable.png'), fullPage: true });
    await page.unroute('**/api/status*');
    await eventually('the banner to clear', () => readPage(page), (s) => s.error === null, 3000);
  });

  await check('the page raised no JavaScript errors', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('; '));
  });
} catch (e) {
  failed += 1;
  console.log(`FAIL the run stopped early: ${e.message}`);
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

console.log(`screenshots in ${resolve(artifacts)}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
