// The supervisor view: the tenant's queues and agents, live (a frame a second), with
// forced agent states and moves of waiting chats.
'use strict';

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('supervisor-token');
let welcome = null;
let last = null;

const sock = new DeskSocket('/desk/ws', {
  hello: () => (token ? { type: 'resume', token } : (showLogin(true), null)),
  onFrame,
  onState: (up) => $('banner').classList.toggle('shown', !up),
});

async function request(body) {
  const r = await sock.send(body);
  $('notice').textContent = r.type === 'error' ? r.message : '';
  return r;
}

function showLogin(show) {
  $('login').classList.toggle('hidden', !show);
  $('board').classList.toggle('hidden', show);
  $('logout-btn').classList.toggle('hidden', show);
}

function onFrame(f) {
  if (f.type === 'welcome') {
    welcome = f;
    token = f.token;
    sessionStorage.setItem('supervisor-token', token);
    $('me').textContent = `${f.name} · ${f.tenant}`;
    showLogin(false);
  } else if (f.type === 'supervisor') {
    last = f;
    render();
  } else if (f.type === 'error' && ['session_expired', 'unknown_session'].includes(f.code)) {
    token = null;
    sessionStorage.removeItem('supervisor-token');
    showLogin(true);
    $('notice').textContent = f.message;
  }
}

function render() {
  if (!last) return;
  const now = Date.now();
  $('queues').tBodies[0].replaceChildren(...last.queues.map((q) => el('tr', { 'data-queue': q.queue },
    el('td', { text: q.name || q.queue }), el('td', { class: 'waiting', text: q.waiting }),
    el('td', { class: 'offered', text: q.offered }), el('td', { text: clock(q.oldest_wait_secs) }),
    el('td', { class: 'available', text: `${q.agents_available} / ${q.agents_logged_in}` }),
    el('td', { class: 'answered', text: q.answered }), el('td', { class: 'abandoned', text: q.abandoned }))));
  $('agents').tBodies[0].replaceChildren(...last.agents.map((a) => el('tr', { 'data-agent': a.agent },
    el('td', { text: a.name }),
    el('td', {}, el('span', { class: 'badge state', 'data-state': a.state, text: t(a.state) + (a.reason ? ` (${a.reason})` : '') })),
    el('td', { text: a.since_ms ? clock((now - a.since_ms) / 1000) : '—' }),
    el('td', { text: a.contacts.length }),
    el('td', {},
      el('button', { class: 'force-not-ready', text: t('force_not_ready'), disabled: a.state === 'logged_out',
        onclick: () => request({ type: 'force_state', agent: a.agent, state: 'not_ready' }) }), ' ',
      el('button', { class: 'force-ready', text: t('force_ready'), disabled: a.state === 'logged_out',
        onclick: () => request({ type: 'force_state', agent: a.agent, state: 'ready' }) })))));
  const chatQueues = (welcome?.queues ?? []).filter((q) => q.channel === 'chat');
  $('waiting').tBodies[0].replaceChildren(...last.waiting.map((w) => {
    const target = el('select', { class: 'move-queue' },
      ...chatQueues.filter((q) => q.queue !== w.queue).map((q) => el('option', { value: q.queue, text: q.name })));
    return el('tr', { 'data-contact': w.contact },
      el('td', { text: w.contact.slice(0, 8) }), el('td', { class: 'queue', text: w.queue }),
      el('td', { text: clock((now - w.since_ms) / 1000) }),
      el('td', { text: Object.entries(w.attributes).map(([k, v]) => `${k}: ${v}`).join(' · ') }),
      el('td', {}, target, ' ', el('button', { class: 'move-btn', text: t('move'),
        onclick: () => request({ type: 'move_contact', contact: w.contact, queue: target.value }) })));
  }));
}

$('login').onsubmit = async (e) => {
  e.preventDefault();
  await request({ type: 'login', tenant: $('tenant').value.trim(), user: $('user').value.trim(), password: $('password').value });
  $('password').value = '';
};
$('logout-btn').onclick = async () => {
  await request({ type: 'log_out' });
  token = null;
  sessionStorage.removeItem('supervisor-token');
  showLogin(true);
};
$('lang').onclick = toggleLang;
langListeners.push(render);
applyLang();
