// The browser scripts' side of hotline-testkit: named checks, polling with a deadline,
// and the system Chromium launched through playwright-core (ops/dev/install-browser).
// A script prints one line per check and ends with `finish()`, whose last line is
// `N passed, M failed` and whose exit code is 0 only if all passed.

import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHROMIUM = '/usr/bin/chromium';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

let passed = 0;
let failed = 0;
let stop = false;

/** Runs one named check; after a failure the later checks (which build on it) are skipped. */
export async function check(name, body) {
  if (stop) {
    failed += 1;
    console.log(`FAIL ${name}: skipped after an earlier failure`);
    return;
  }
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    stop = true;
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
  }
}

/** Counts a failure outside any check (the run stopped early). */
export function fail(message) {
  failed += 1;
  console.log(`FAIL ${message}`);
}

/** Polls `probe` until `accept(value)` holds or `ms` pass; then throws saying what was awaited. */
export async function eventually(what, probe, accept, ms = 10000, everyMs = 100) {
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

let profile;

/**
 * Starts headless Chromium with only 127.0.0.1 reachable, and a watchdog that ends a
 * hung run after `watchdogMs`. Exits 2 if the browser cannot start.
 */
export async function launch(artifacts, { watchdogMs = 150_000, viewport = { width: 1300, height: 900 } } = {}) {
  let chromium;
  try {
    const require = createRequire(join(repoRoot, 'ops/dev/node/package.json'));
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    console.error(`cannot load playwright-core from ops/dev/node (${e.message}); run ops/dev/install-browser`);
    process.exit(2);
  }
  mkdirSync(artifacts, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), 'hotline-chromium-'));
  const watchdog = setTimeout(() => {
    console.log(`FAIL the whole run took over ${watchdogMs / 1000} s`);
    console.log(`${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();
  try {
    return await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        // Nothing but 127.0.0.1 (an address literal, never resolved) is reachable.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
      viewport,
      locale: 'en-US',
      timeout: 30_000,
    });
  } catch (e) {
    console.error(`cannot start ${CHROMIUM} through playwright-core: ${e.message}`);
    rmSync(profile, { recursive: true, force: true });
    process.exit(2);
  }
}

/** Closes the browser, prints the summary line and exits. */
export async function finish(context, artifacts) {
  await context.close().catch(() => {});
  if (profile) rmSync(profile, { recursive: true, force: true });
  console.log(`screenshots in ${resolve(artifacts)}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
