// A real-browser run of the desk: a customer's chat page and an agent's desktop through
// a whole contact, then the supervisor page.
//
//   node services/desk/tests/web/desk.mjs BASE_URL ARTIFACTS_DIR PASSWORD
//
// BASE_URL is the server's root (http://127.0.0.1:PORT), serving the desk of the test
// site in services/desk/tests/support/mod.rs. Drives the system Chromium
// (/usr/bin/chromium) through playwright-core in ops/dev/node (ops/dev/install-browser
// installs both) with services/testkit/web/harness.mjs. Every wait polls against a
// deadline. Prints one line per check and a last line `N passed, M failed`; exits 0 only
// if all passed (2 if the browser could not start). Run by services/desk/tests/desk.rs.

import { join } from 'node:path';

import { check, eventually, fail, finish, launch } from '../../../testkit/web/harness.mjs';

const [base, artifacts, password] = process.argv.slice(2);
if (!base || !artifacts || !password) {
  console.error('usage: node desk.mjs BASE_URL ARTIFACTS_DIR PASSWORD');
  process.exit(2);
}
if (new URL(base).hostname !== '127.0.0.1') {
  console.error(`BASE_URL must be on 127.0.0.1, got ${base}`);
  process.exit(2);
}

const text = (page, sel) => page.evaluate((s) => document.querySelector(s)?.textContent.trim() ?? null, sel);
const lines = (page, sel) => page.evaluate((s) => [...document.querySelectorAll(`${s} .line`)]
  .map((l) => ({ from: l.dataset.from, text: l.textContent })), sel);
const visible = (page, sel) => page.evaluate((s) => {
  const e = document.querySelector(s);
  return !!e && !e.closest('.hidden') && getComputedStyle(e).display !== 'none';
}, sel);
const shot = (page, name) => page.screenshot({ path: join(artifacts, name), fullPage: true });

const context = await launch(artifacts);

const pageErrors = [];
const open = async (path) => {
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(`${path}: ${e.message}`));
  await p.goto(new URL(path, base).href, { waitUntil: 'domcontentloaded', timeout: 15_000 });
  return p;
};

async function login(page, tenant, user) {
  await page.waitForSelector('#login:not(.hidden)', { timeout: 10_000 });
  await page.fill('#tenant', tenant);
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.click('#login-btn');
}

async function customerChat(name, topic) {
  const page = await open('/desk/chat?tenant=acme');
  await eventually('the name question', () => lines(page, '#chat-log'),
    (ls) => ls.some((l) => l.text.includes('What is your name?')));
  await page.fill('#chat-input', name);
  await page.click('#chat-send');
  await eventually('the topic question', () => lines(page, '#chat-log'),
    (ls) => ls.some((l) => l.text.includes('What can we help you with?')));
  await page.fill('#chat-input', topic);
  await page.press('#chat-input', 'Enter');
  await eventually('the chat queued', () => page.evaluate(() => document.getElementById('chat-state').dataset.state),
    (s) => s === 'queued');
  return page;
}

try {
  const agent = await open('/desk');
  let customer;
  let contact;

  await check('the agent logs in and is shown not ready with a running timer', async () => {
    await login(agent, 'acme', 'ann');
    await eventually('badge not_ready', () => agent.evaluate(() => document.getElementById('state').dataset.state),
      (s) => s === 'not_ready');
    const t1 = await text(agent, '#state-timer');
    await eventually(`the state timer to move on from ${t1}`, () => text(agent, '#state-timer'), (t) => t !== t1, 3000);
    if (!(await text(agent, '#me')).includes('Ann')) throw new Error('name not shown');
  });

  await check('going ready turns the badge green', async () => {
    await agent.click('#ready-btn');
    await eventually('badge ready', () => agent.evaluate(() => document.getElementById('state').dataset.state),
      (s) => s === 'ready');
    await shot(agent, 'agent-ready.png');
  });

  await check('the customer chats with the intake and is queued', async () => {
    customer = await customerChat('Wang Fang', 'my bill is wrong');
    const ls = await lines(customer, '#chat-log');
    if (!ls.some((l) => l.from === 'bot' && l.text.includes('Welcome to Acme!'))) throw new Error(JSON.stringify(ls));
    await shot(customer, 'customer-queued.png');
  });

  await check('the agent sees the offer with what the intake collected and a ring countdown', async () => {
    await eventually('the offer panel', () => visible(agent, '#offer'), (v) => v);
    const attrs = await agent.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('#offer-attrs tr')].map((tr) => [tr.dataset.key, tr.querySelector('td').textContent])));
    if (attrs.name !== 'Wang Fang' || attrs.topic !== 'my bill is wrong') throw new Error(JSON.stringify(attrs));
    const c1 = await text(agent, '#offer-countdown');
    await eventually(`the countdown to move on from ${c1}`, () => text(agent, '#offer-countdown'), (c) => c !== c1, 3000);
    contact = await agent.evaluate(() => document.getElementById('offer').dataset.contact);
    await shot(agent, 'agent-offer.png');
  });

  await check('the agent accepts; both sides exchange messages', async () => {
    await agent.click('#accept-btn');
    const card = `.contact[data-contact="${contact}"]`;
    await agent.waitForSelector(`${card}[data-phase="connected"]`, { timeout: 10_000 });
    await eventually('"Ann joined" on the customer page', () => lines(customer, '#chat-log'),
      (ls) => ls.some((l) => l.text.includes('Ann joined the chat')));
    await agent.fill(`${card} .compose`, 'Hello Wang Fang, let me check your bill.');
    await agent.click(`${card} .send-btn`);
    await eventually("the agent's message on the customer page", () => lines(customer, '#chat-log'),
      (ls) => ls.some((l) => l.from === 'agent' && l.text.includes('let me check your bill')));
    await customer.fill('#chat-input', 'Thank you! 谢谢');
    await customer.click('#chat-send');
    await eventually("the customer's message on the agent page", () => lines(agent, `${card} .history`),
      (ls) => ls.some((l) => l.from === 'customer' && l.text.includes('谢谢')));
    await shot(agent, 'agent-conversation.png');
    await shot(customer, 'customer-conversation.png');
  });

  await check('a reload of the agent page keeps the contact and its history', async () => {
    await agent.reload({ waitUntil: 'domcontentloaded' });
    const card = `.contact[data-contact="${contact}"]`;
    await eventually('the contact card with its history', () => lines(agent, `${card} .history`),
      (ls) => ls.some((l) => l.text.includes('谢谢')) && ls.some((l) => l.text.includes('let me check your bill')));
  });

  await check('the agent ends the chat, wraps up with a disposition and notes, and the figures count it', async () => {
    const card = `.contact[data-contact="${contact}"]`;
    await agent.click(`${card} .end-btn`);
    await eventually('the chat ended for the customer', () => customer.evaluate(() => document.getElementById('chat-state').dataset.state),
      (s) => s === 'ended');
    await agent.waitForSelector(`${card}[data-phase="wrap_up"]`, { timeout: 10_000 });
    await agent.selectOption(`${card} .disposition`, 'resolved');
    await agent.fill(`${card} .notes`, 'Corrected the bill; refund in 3 days.');
    await shot(agent, 'agent-wrap-up.png');
    await agent.click(`${card} .wrap-btn`);
    await eventually('the card gone', () => agent.$(card), (c) => c === null);
    await eventually('handled = 1 and answered = 1 in the figures',
      () => agent.evaluate(() => Object.fromEntries([...document.querySelectorAll('#figures dd')].map((d) => [d.dataset.fig, d.textContent]))),
      (f) => f.handled === '1' && f.answered === '1' && f.offered === '1');
    await shot(agent, 'agent-done.png');
    await shot(customer, 'customer-ended.png');
  });

  let sup;
  await check('the supervisor sees the queues and agents of the tenant live', async () => {
    sup = await open('/desk/supervisor');
    await login(sup, 'acme', 'sue');
    await eventually('queues webchat, vip, phone and agents ann, bob',
      () => sup.evaluate(() => ({
        queues: [...document.querySelectorAll('#queues tr[data-queue]')].map((r) => r.dataset.queue),
        agents: [...document.querySelectorAll('#agents tr[data-agent]')].map((r) => r.dataset.agent),
      })),
      (s) => s.queues.join() === 'webchat,vip,phone' && s.agents.join() === 'ann,bob');
    await eventually("Ann shown ready", () => sup.evaluate(() =>
      document.querySelector('#agents tr[data-agent="ann"] .state')?.dataset.state), (s) => s === 'ready');
  });

  await check('the supervisor forces Ann not ready; her desktop shows it', async () => {
    await sup.click('#agents tr[data-agent="ann"] .force-not-ready');
    await eventually("Ann not ready on the supervisor page", () => sup.evaluate(() =>
      document.querySelector('#agents tr[data-agent="ann"] .state')?.dataset.state), (s) => s === 'not_ready');
    await eventually('not ready (supervisor) on her desktop', () => text(agent, '#state'), (s) => s?.startsWith('Not ready (supervisor)'));
  });

  await check('a waiting chat shows up and the supervisor moves it to another queue', async () => {
    const second = await customerChat('Li Lei', 'delivery');
    await eventually('one waiting chat in webchat', () => sup.evaluate(() =>
      [...document.querySelectorAll('#waiting tr[data-contact]')].map((r) => r.querySelector('.queue').textContent)),
    (qs) => qs.join() === 'webchat');
    await shot(sup, 'supervisor-waiting.png');
    await sup.selectOption('#waiting tr[data-contact] .move-queue', 'vip');
    await sup.click('#waiting tr[data-contact] .move-btn');
    await eventually('the chat waiting in vip', () => sup.evaluate(() =>
      [...document.querySelectorAll('#waiting tr[data-contact]')].map((r) => r.querySelector('.queue').textContent)),
    (qs) => qs.join() === 'vip');
    await eventually('the customer told of the move', () => lines(second, '#chat-log'),
      (ls) => ls.some((l) => l.text.includes('moved to another queue')));
    await eventually('vip waiting = 1', () => text(sup, '#queues tr[data-queue="vip"] .waiting'), (w) => w === '1');
    await shot(sup, 'supervisor-moved.png');
  });

  await check('the supervisor page switches to Chinese', async () => {
    await sup.click('#lang');
    await eventually('headings 队列 / 座席', () => sup.evaluate(() =>
      [...document.querySelectorAll('h2[data-i18n]')].map((h) => h.textContent)),
    (hs) => hs.includes('队列') && hs.includes('座席'));
    await shot(sup, 'supervisor-zh.png');
  });

  await check('no page raised a JavaScript error', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('; '));
  });
} catch (e) {
  fail(`the run stopped early: ${e.message}`);
}
await finish(context, artifacts);
