// A real-browser check of the KPI wallboard.
//
//   node services/kpi/tests/wallboard.mjs WALLBOARD_URL CONTROL_URL ARTIFACTS_DIR
//
// WALLBOARD_URL is `http://127.0.0.1:PORT/wallboard?key=KEY` of a KPI service fed with
// acme's day (services/kpi/tests/wallboard.rs); CONTROL_URL is that test's control API
// (POST /publish/more, /server/stop, /server/start). Screenshots go to ARTIFACTS_DIR.
// Drives the system Chromium (/usr/bin/chromium) through the `playwright-core` package
// in ops/dev/node; `ops/dev/install-browser` installs both. Every wait polls against a
// deadline. Prints one line per check and a last line `N passed, M failed`; exits 0
// only if all passed (1 if a check failed, 2 if the browser could not start).

import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHROMIUM = '/usr/bin/chromium';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

// What wallboard.rs publishes for acme (globex's `support` must never show).
const TILES = ['s1/claims', 's1/sales'];

// --- harness -----------------------------------------------------------------

const [url, control, artifacts] = process.argv.slice(2);
if (!url || !control || !artifacts) {
  console.error('usage: node wallboard.mjs WALLBOARD_URL CONTROL_URL ARTIFACTS_DIR');
  process.exit(2);
}
for (const u of [url, control]) {
  if (new URL(u).hostname !== '127.0.0.1') {
    console.error(`URLs must be on 127.0.0.1, got ${u}`);
    process.exit(2);
  }
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
async function eventually(what, probe, accept, ms = 5000, everyMs = 50) {
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

/** POSTs to the test's control API. */
async function command(path) {
  const r = await fetch(`${control}${path}`, { method: 'POST' });
  if (!r.ok) throw new Error(`control ${path}: HTTP ${r.status}`);
}

const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

// What the page shows, read in one round trip.
const readPage = (page) =>
  page.evaluate(() => {
    const text = (sel, root = document) => root.querySelector(sel)?.textContent.trim() ?? null;
    const banner = document.getElementById('banner');
    return {
      lang: document.documentElement.lang,
      title: text('h1[data-i18n="title"]'),
      waitingLabel: text('#t-waiting .k'),
      button: text('#lang'),
      banner: getComputedStyle(banner).display === 'none' ? null : banner.textContent.trim(),
      totals: {
        waiting: Number(text('#t-waiting .v')),
        answered: Number(text('#t-answered .v')),
        ready: Number(text('#t-ready .v')),
        notReady: Number(text('#t-not_ready .v')),
      },
      overflowX: document.documentElement.scrollWidth > window.innerWidth,
      tiles: [...document.querySelectorAll('.tile[data-queue]')].map((t) => ({
        id: t.dataset.queue,
        waiting: Number(text('.waiting .v', t)),
        oldest: text('.oldest .v', t),
        sl: text('.sl .v', t),
        slLabel: text('.sl .k', t),
        slClass: ['sl-good', 'sl-warn', 'sl-bad'].find((c) => t.querySelector('.sl').classList.contains(c)) ?? null,
        answered: Number(text('.answered b', t)),
        states: [...t.querySelectorAll('.state')].map((b) => b.textContent.trim()),
      })),
    };
  });

const tile = (s, id) => s.tiles.find((t) => t.id === id);
// "1:05" or "42 s" → seconds.
const seconds = (text) => {
  if (!text) return NaN;
  const m = /^(\d+):(\d\d)$/.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : parseInt(text, 10);
};

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

// A hung browser must not hang the test.
const watchdog = setTimeout(() => {
  console.log('FAIL the whole run took over 150 s');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 150_000);
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
    viewport: { width: 1366, height: 768 },
    locale: 'en-US',
    timeout: 30_000,
  });
} catch (e) {
  console.error(`cannot start ${CHROMIUM} through playwright-core: ${e.message}`);
  rmSync(profile, { recursive: true, force: true });
  process.exit(2);
}

const pageErrors = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on('pageerror', (e) => pageErrors.push(e.message));

try {
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15_000 });

  await check("acme's two queue tiles appear, and not globex's", async () => {
    const s = await eventually(`tiles ${TILES.join(', ')}`, () => readPage(page),
      (s) => sameSet(s.tiles.map((t) => t.id), TILES));
    if (s.banner) throw new Error(`banner shown: ${s.banner}`);
  });

  await check('tiles and header show waiting, service level, agents by state', async () => {
    const s = await eventually('sales with 2 waiting and claims with 1', () => readPage(page),
      (s) => tile(s, 's1/sales')?.waiting === 2 && tile(s, 's1/claims')?.waiting === 1);
    const sales = tile(s, 's1/sales');
    // Answered within 20 s: 1 of 2 answered + 1 abandoned.
    if (sales.sl !== '33.3%') throw new Error(`sales service level ${sales.sl}, expected 33.3%`);
    if (sales.slClass !== 'sl-bad') throw new Error(`33% against 80% should be red, is ${sales.slClass}`);
    const claims = tile(s, 's1/claims');
    if (claims.sl !== '100.0%' || claims.slClass !== 'sl-good') {
      throw new Error(`claims: ${claims.sl} ${claims.slClass}, expected 100.0% sl-good`);
    }
    if (s.totals.waiting !== 3) throw new Error(`header waiting ${s.totals.waiting}, expected 3`);
    if (s.totals.ready !== 3 || s.totals.notReady !== 1) {
      throw new Error(`header agents ready ${s.totals.ready}, not ready ${s.totals.notReady}; expected 3 and 1`);
    }
    if (!claims.states.some((b) => b.startsWith('Not ready (lunch)'))) {
      throw new Error(`claims badges lack "Not ready (lunch)": ${JSON.stringify(claims.states)}`);
    }
    await page.screenshot({ path: join(artifacts, 'wallboard-en-laptop.png'), fullPage: true });
  });

  await check('the oldest wait counts up between updates', async () => {
    const first = seconds(tile(await readPage(page), 's1/sales').oldest);
    if (!(first >= 25)) throw new Error(`sales oldest wait ${first} s, expected at least 25`);
    await eventually(`the oldest wait to pass ${first + 1} s`, () => readPage(page),
      (s) => seconds(tile(s, 's1/sales').oldest) >= first + 2, 4000);
  });

  await check('numbers update within a second of new events', async () => {
    const before = tile(await readPage(page), 's1/sales');
    const sent = Date.now();
    await command('/publish/more');
    await eventually(`sales answered ${before.answered + 1} and waiting ${before.waiting + 1}`,
      () => readPage(page),
      (s) => tile(s, 's1/sales')?.answered === before.answered + 1 && tile(s, 's1/sales')?.waiting === before.waiting + 1,
      1000, 20);
    console.log(`     (updated ${Date.now() - sent} ms after the events were appended)`);
  });

  await check('on a 1080p TV the page fills the screen without scrolling sideways', async () => {
    await page.setViewportSize({ width: 1920, height: 1080 });
    const s = await eventually('two tiles at 1920×1080', () => readPage(page), (s) => s.tiles.length === 2);
    if (s.overflowX) throw new Error('the page scrolls sideways at 1920×1080');
    const size = await page.evaluate(() => parseFloat(getComputedStyle(document.querySelector('.tile .waiting .v')).fontSize));
    if (!(size >= 40)) throw new Error(`waiting figures are ${size}px on a TV, expected at least 40px`);
    await page.screenshot({ path: join(artifacts, 'wallboard-en-1080p.png') });
    await page.setViewportSize({ width: 1366, height: 768 });
  });

  await check('the language button switches the page to Chinese and back', async () => {
    await page.click('#lang');
    const s = await eventually('title 实时监控墙, 排队等待, 服务水平, lang zh-CN', () => readPage(page),
      (s) => s.title === '实时监控墙' && s.waitingLabel === '排队等待' && s.lang === 'zh-CN'
        && s.button === 'English' && tile(s, 's1/sales')?.slLabel === '服务水平');
    const claims = tile(s, 's1/claims');
    if (!claims.states.some((b) => b.startsWith('未就绪 (lunch)'))) {
      throw new Error(`claims badges not in Chinese: ${JSON.stringify(claims.states)}`);
    }
    await page.screenshot({ path: join(artifacts, 'wallboard-zh.png'), fullPage: true });
    await page.click('#lang');
    await eventually('title Wallboard, button 中文, lang en', () => readPage(page),
      (s) => s.title === 'Wallboard' && s.button === '中文' && s.lang === 'en');
  });

  await check('?lang=zh-CN opens the page in Chinese', async () => {
    const zh = new URL(url);
    zh.searchParams.set('lang', 'zh-CN');
    await page.goto(zh.href, { waitUntil: 'domcontentloaded', timeout: 15_000 });
    await eventually('Chinese headings and two tiles', () => readPage(page),
      (s) => s.title === '实时监控墙' && s.lang === 'zh-CN' && s.tiles.length === 2);
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15_000 });
    await eventually('two tiles again', () => readPage(page), (s) => s.tiles.length === 2);
  });

  await check('"connection lost — retrying" shows when the server stops, and clears when it is back', async () => {
    await command('/server/stop');
    await eventually('the connection-lost banner', () => readPage(page),
      (s) => s.banner && s.banner.startsWith('Connection lost'), 5000);
    await page.screenshot({ path: join(artifacts, 'wallboard-connection-lost.png'), fullPage: true });
    await command('/server/start');
    const s = await eventually('the banner to clear and two tiles to show', () => readPage(page),
      (s) => s.banner === null && s.tiles.length === 2, 10_000);
    // The restarted service resumed from its checkpoint: nothing lost, nothing twice.
    if (tile(s, 's1/sales').answered !== 3) {
      throw new Error(`after the restart sales shows ${tile(s, 's1/sales').answered} answered, expected 3`);
    }
  });

  await check('a wrong key is refused with a message, not shown as a lost connection', async () => {
    const bad = new URL(url);
    bad.searchParams.set('key', 'not-a-key-of-this-service');
    await page.goto(bad.href, { waitUntil: 'domcontentloaded', timeout: 15_000 });
    await eventually('the "Hotline refused" banner naming the key problem', () => readPage(page),
      (s) => s.banner && s.banner.startsWith('Hotline refused the wallboard') && s.banner.includes('unknown API key'));
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
