// The agent desktop. Keeps the session token in sessionStorage, so a reload or a
// dropped connection resumes the same session (and its offer, contacts and history).
'use strict';

const $ = (id) => document.getElementById(id);
let welcome = null;
let agent = null;
let token = sessionStorage.getItem('desk-token');
const drafts = new Map();

const sock = new DeskSocket('/desk/ws', {
  hello: () => (token ? { type: 'resume', token } : (showLogin(), null)),
  onFrame,
  onState: (up) => $('banner').classList.toggle('shown', !up),
});

function notice(text) {
  $('notice').textContent = text || '';
}

async function request(body) {
  const r = await sock.send(body);
  notice(r.type === 'error' ? r.message : '');
  return r;
}

function showLogin() {
  $('login').classList.remove('hidden');
  $('desk').classList.add('hidden');
  $('presence').classList.add('hidden');
  $('state').classList.add('hidden');
  $('me').textContent = '';
}

function onFrame(f) {
  if (f.type === 'welcome') {
    welcome = f;
    token = f.token;
    sessionStorage.setItem('desk-token', token);
    $('login').classList.add('hidden');
    $('desk').classList.remove('hidden');
    $('presence').classList.remove('hidden');
    $('me').textContent = `${f.name} · ${f.tenant}`;
    $('reason').replaceChildren(...f.not_ready_reasons.map((r) => el('option', { value: r, text: r })));
  } else if (f.type === 'agent') {
    agent = f;
    render();
  } else if (f.type === 'message') {
    if (!agent) return;
    for (const c of [...agent.contacts, agent.offer].filter(Boolean)) {
      if (c.contact === f.contact) c.history.push(f);
    }
    render();
  } else if (f.type === 'error' && ['session_expired', 'unknown_session'].includes(f.code)) {
    token = null;
    sessionStorage.removeItem('desk-token');
    welcome = null;
    agent = null;
    showLogin();
    notice(f.message);
  }
}

function line(m) {
  const who = m.from === 'agent' ? (m.name || t('you')) : m.from === 'system' ? '' : t(m.from);
  return el('div', { class: 'line', 'data-from': m.from }, who ? el('span', { class: 'who', text: who }) : null, m.text);
}

function attrs(tbody, a) {
  tbody.replaceChildren(...Object.entries(a).map(([k, v]) =>
    el('tr', { 'data-key': k }, el('th', { text: k }), el('td', { text: v }))));
}

function history(box, lines) {
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.replaceChildren(...lines.map(line));
  if (atEnd) box.scrollTop = box.scrollHeight;
}

function render() {
  if (!agent) return;
  const badge = $('state');
  badge.classList.remove('hidden');
  badge.dataset.state = agent.state;
  badge.textContent = t(agent.state) + (agent.reason ? ` (${agent.reason})` : '');
  $('ready-btn').disabled = agent.state === 'ready';
  const o = agent.offer;
  $('offer').classList.toggle('hidden', !o);
  if (o) {
    $('offer').dataset.contact = o.contact;
    $('offer-queue').textContent = o.queue;
    $('offer-waited').textContent = clock(o.waited_ms / 1000);
    attrs($('offer-attrs'), o.attributes);
    history($('offer-history'), o.history);
  }
  const box = $('contacts');
  const seen = new Set();
  for (const c of agent.contacts) {
    seen.add(c.contact);
    let card = box.querySelector(`[data-contact="${c.contact}"]`);
    if (!card) {
      card = contactCard(c);
      box.append(card);
    }
    updateCard(card, c);
  }
  for (const card of [...box.children]) if (!seen.has(card.dataset.contact)) card.remove();
  $('no-contacts').classList.toggle('hidden', agent.contacts.length > 0 || !!o);
  const f = agent.figures;
  const rows = [['offered', f.offered], ['answered', f.answered], ['rejected', f.rejected], ['missed', f.missed],
    ['transferred', f.transferred], ['handled', f.handled], ['aht', clock(f.aht_secs)],
    ['ready_time', clock(f.ready_secs)], ['not_ready_time', clock(f.not_ready_secs)]];
  $('figures').replaceChildren(...rows.flatMap(([k, v]) =>
    [el('dt', { text: t(k) }), el('dd', { 'data-fig': k, text: String(v) })]));
  tickTimers();
}

function contactCard(c) {
  const id = c.contact;
  const card = el('section', { class: 'card contact', 'data-contact': id });
  const compose = el('input', { class: 'compose', placeholder: t('type_here') });
  compose.oninput = () => drafts.set(id, compose.value);
  const send = async () => {
    if (!compose.value.trim()) return;
    const r = await request({ type: 'send', contact: id, text: compose.value });
    if (r.type === 'ack') { compose.value = ''; drafts.delete(id); }
  };
  compose.onkeydown = (e) => { if (e.key === 'Enter') send(); };
  const queues = el('select', { class: 'transfer-queue' },
    ...(welcome?.queues ?? []).filter((q) => q.channel === c.channel && q.queue !== c.queue)
      .map((q) => el('option', { value: q.queue, text: q.name })));
  const codes = el('select', { class: 'disposition' },
    ...(welcome?.dispositions ?? []).map((d) => el('option', { value: d, text: d })));
  const notes = el('textarea', { class: 'notes', rows: 2 });
  card.append(
    el('h2', {}, el('span', { 'data-i18n': 'conversation', text: t('conversation') }), ' — ',
      el('span', { class: 'queue', text: c.queue }), ' · ', el('span', { class: 'phase' }), ' ',
      el('span', { class: 'timer' })),
    el('table', {}, el('tbody', { class: 'attrs' })),
    el('div', { class: 'history' }),
    el('div', { class: 'row talk' }, compose,
      el('button', { class: 'primary send-btn', text: t('send'), onclick: send }),
      el('button', { class: 'danger end-btn', text: t('end'), onclick: () => request({ type: 'end', contact: id }) })),
    el('div', { class: 'row talk' }, el('span', { text: t('transfer') }), queues,
      el('button', { class: 'transfer-btn', text: t('do_transfer'),
        onclick: () => request({ type: 'transfer', contact: id, queue: queues.value }) })),
    el('div', { class: 'row wrap' }, el('span', { text: t('disposition') }), codes,
      el('span', { text: t('notes') }), notes,
      el('button', { class: 'primary wrap-btn', text: t('finish'),
        onclick: () => request({ type: 'wrap_up', contact: id, code: codes.value, notes: notes.value }) })),
  );
  return card;
}

function updateCard(card, c) {
  card.dataset.phase = c.phase;
  card.querySelector('.phase').textContent = t(c.phase) + (c.customer_left ? ` · ${t('customer_left')}` : '');
  card.querySelector('.timer').dataset.since = c.since_ms;
  attrs(card.querySelector('.attrs'), c.attributes);
  history(card.querySelector('.history'), c.history);
  for (const r of card.querySelectorAll('.talk')) r.classList.toggle('hidden', c.phase !== 'connected');
  card.querySelector('.wrap').classList.toggle('hidden', c.phase !== 'wrap_up');
}

function tickTimers() {
  if (!agent) return;
  const now = Date.now();
  $('state-timer').textContent = clock((now - agent.since_ms) / 1000);
  if (agent.offer) $('offer-countdown').textContent = clock((agent.offer.rings_out_at_ms - now) / 1000);
  for (const tm of document.querySelectorAll('.contact .timer')) {
    tm.textContent = clock((now - Number(tm.dataset.since)) / 1000);
  }
}
setInterval(tickTimers, 250);

$('login').onsubmit = async (e) => {
  e.preventDefault();
  await request({ type: 'login', tenant: $('tenant').value.trim(), user: $('user').value.trim(), password: $('password').value });
  $('password').value = '';
};
$('ready-btn').onclick = () => request({ type: 'ready' });
$('not-ready-btn').onclick = () => request({ type: 'not_ready', reason: $('reason').value });
$('accept-btn').onclick = () => agent?.offer && request({ type: 'accept', contact: agent.offer.contact });
$('reject-btn').onclick = () => agent?.offer && request({ type: 'reject', contact: agent.offer.contact });
$('logout-btn').onclick = async () => {
  const r = await request({ type: 'log_out' });
  if (r.type === 'ack') {
    token = null;
    sessionStorage.removeItem('desk-token');
    agent = null;
    showLogin();
  }
};
$('lang').onclick = toggleLang;
langListeners.push(() => { $('contacts').replaceChildren(); render(); });
applyLang();
