// The customer's chat widget: /desk/chat?tenant=ID[&entry=NAME][&lang=zh]. The chat
// token lives in sessionStorage, so a reload or a dropped connection resumes the chat.
'use strict';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const key = `chat-token:${params.get('tenant')}`;
let token = sessionStorage.getItem(key);
let view = null;

const sock = new DeskSocket('/desk/ws/chat', {
  hello: () => (token ? { type: 'resume', token }
    : { type: 'start', tenant: params.get('tenant') ?? '', ...(params.get('entry') ? { entry: params.get('entry') } : {}) }),
  onFrame,
  onState: (up) => $('banner').classList.toggle('shown', !up),
});

function onFrame(f) {
  if (f.type === 'chat') {
    view = f;
    token = f.token;
    sessionStorage.setItem(key, token);
    render();
  } else if (f.type === 'message' && view) {
    view.history.push(f);
    render();
  } else if (f.type === 'error') {
    $('notice').textContent = f.message;
    if (f.code === 'unknown_session') {
      sessionStorage.removeItem(key);
      token = null;
      $('chat-new').classList.remove('hidden');
    }
  } else if (f.type === 'ack') {
    $('notice').textContent = '';
  }
}

function render() {
  if (!view) return;
  const s = $('chat-state');
  s.dataset.state = view.state;
  s.textContent = ` · ${t(`state_${view.state}`)}${view.agent ? ` ${view.agent}` : ''}`;
  const log = $('chat-log');
  log.replaceChildren(...view.history.map((m) => {
    const who = m.from === 'customer' ? t('you') : m.from === 'agent' ? (m.name || '') : m.from === 'bot' ? t('bot') : '';
    return el('div', { class: 'line', 'data-from': m.from }, who ? el('span', { class: 'who', text: who }) : null, m.text);
  }));
  log.scrollTop = log.scrollHeight;
  const ended = view.state === 'ended';
  $('compose-row').classList.toggle('hidden', ended);
  $('chat-leave').classList.toggle('hidden', ended);
  $('chat-new').classList.toggle('hidden', !ended);
}

async function send() {
  const text = $('chat-input').value;
  if (!text.trim()) return;
  const r = await sock.send({ type: 'message', text });
  if (r.type === 'ack') $('chat-input').value = '';
}

$('chat-send').onclick = send;
$('chat-input').onkeydown = (e) => { if (e.key === 'Enter') send(); };
$('chat-leave').onclick = () => sock.send({ type: 'leave' });
$('chat-new').onclick = () => { sessionStorage.removeItem(key); location.reload(); };
$('lang').onclick = toggleLang;
langListeners.push(render);
applyLang();
