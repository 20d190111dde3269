// Shared by the desk's pages: the i18n layer (English, 简体中文) and a WebSocket that
// reconnects by itself and resumes its session (schema v1, see services/desk/README.md).
'use strict';

const STRINGS = {
  en: {
    title_agent: 'Agent desktop', title_supervisor: 'Supervisor', title_chat: 'Chat with us',
    tenant: 'Tenant', user: 'User', password: 'Password', log_in: 'Log in', log_out: 'Log out',
    ready: 'Ready', not_ready: 'Not ready', go_ready: 'Go ready', go_not_ready: 'Go not ready',
    reserved: 'Ringing', on_contact: 'On contact', wrap_up: 'Wrap-up', logged_out: 'Logged out',
    offer: 'Incoming contact', accept: 'Accept', reject: 'Reject', rings_out: 'rings out in',
    waited: 'waited', collected: 'What the customer told us', conversation: 'Conversation',
    send: 'Send', end: 'End', transfer: 'Transfer to', do_transfer: 'Transfer',
    disposition: 'Disposition', notes: 'Notes', finish: 'Finish wrap-up', customer_left: 'customer left',
    figures: "Today's figures", offered: 'Offered', answered: 'Answered', rejected: 'Rejected', missed: 'Missed',
    transferred: 'Transferred', handled: 'Handled', aht: 'Avg handle time', ready_time: 'Time ready',
    not_ready_time: 'Time not ready', no_contacts: 'No contacts right now.',
    connection_lost: 'Connection lost — reconnecting…', queues: 'Queues', agents: 'Agents',
    waiting: 'Waiting', ringing: 'Ringing', oldest: 'Oldest wait', available: 'Free agents',
    abandoned: 'Abandoned', state: 'State', since: 'In state', contacts: 'Contacts', actions: 'Actions',
    force_not_ready: 'Force not ready', force_ready: 'Force ready', waiting_chats: 'Waiting chats',
    move_to: 'Move to', move: 'Move', queue: 'Queue', type_here: 'Type a message…', leave: 'Leave chat',
    state_intake: 'Assistant', state_queued: 'Waiting for an agent', state_connected: 'Talking with',
    state_ended: 'Chat ended', new_chat: 'Start a new chat', you: 'You', bot: 'Assistant', system: '',
    customer: 'Customer', lang: '中文',
  },
  'zh-CN': {
    title_agent: '座席工作台', title_supervisor: '班长监控', title_chat: '在线咨询',
    tenant: '租户', user: '用户', password: '密码', log_in: '登录', log_out: '登出',
    ready: '就绪', not_ready: '未就绪', go_ready: '置为就绪', go_not_ready: '置为未就绪',
    reserved: '振铃中', on_contact: '通话中', wrap_up: '话后处理', logged_out: '已登出',
    offer: '新来电', accept: '接听', reject: '拒绝', rings_out: '剩余振铃',
    waited: '已等待', collected: '客户提供的信息', conversation: '会话',
    send: '发送', end: '结束', transfer: '转接到', do_transfer: '转接',
    disposition: '处理结果', notes: '备注', finish: '完成话后处理', customer_left: '客户已离开',
    figures: '今日数据', offered: '分配', answered: '接听', rejected: '拒绝', missed: '未接',
    transferred: '转接', handled: '处理完成', aht: '平均处理时间', ready_time: '就绪时长',
    not_ready_time: '未就绪时长', no_contacts: '当前没有会话。',
    connection_lost: '连接已断开——正在重连…', queues: '队列', agents: '座席',
    waiting: '排队', ringing: '振铃', oldest: '最长等待', available: '空闲座席',
    abandoned: '放弃', state: '状态', since: '状态时长', contacts: '会话', actions: '操作',
    force_not_ready: '强制未就绪', force_ready: '强制就绪', waiting_chats: '排队中的会话',
    move_to: '移到', move: '移动', queue: '队列', type_here: '请输入消息…', leave: '离开会话',
    state_intake: '智能助手', state_queued: '正在等待座席', state_connected: '正在与您交谈：',
    state_ended: '会话已结束', new_chat: '开始新的会话', you: '您', bot: '助手', system: '',
    customer: '客户', lang: 'English',
  },
};

let lang = new URLSearchParams(location.search).get('lang')?.startsWith('zh') ? 'zh-CN' : 'en';
const langListeners = [];

/** The text for `key` in the current language. */
function t(key) {
  return STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
}

/** Puts every [data-i18n] element's text (and [data-i18n-ph] placeholder) in the current language. */
function applyLang() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-ph]')) el.placeholder = t(el.dataset.i18nPh);
  for (const f of langListeners) f();
}

function toggleLang() {
  lang = lang === 'en' ? 'zh-CN' : 'en';
  applyLang();
}

/** `m:ss` (or `h:mm:ss`) for a number of seconds. */
function clock(secs) {
  const s = Math.max(0, Math.floor(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k === 'text') e.textContent = v;
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

/**
 * A socket to `path` that reconnects with back-off. `hello()` returns the first frame
 * after each (re)connect (login or resume), or null to wait for the user.
 */
class DeskSocket {
  constructor(path, { hello, onFrame, onState }) {
    this.path = path;
    this.hello = hello;
    this.onFrame = onFrame;
    this.onState = onState;
    this.nextId = 1;
    this.waiting = new Map();
    this.delay = 250;
    this.connect();
  }

  connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${this.path}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 250;
      this.onState(true);
      const first = this.hello();
      if (first) this.send(first);
    };
    ws.onmessage = (e) => {
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      if ((frame.type === 'ack' || frame.type === 'error') && this.waiting.has(frame.ref)) {
        const done = this.waiting.get(frame.ref);
        this.waiting.delete(frame.ref);
        done(frame);
      }
      this.onFrame(frame);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.onState(false);
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }

  /** Sends a request; resolves with its ack or error frame. */
  send(body) {
    const id = this.nextId++;
    const frame = { v: 1, id, ...body };
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
      else resolve({ type: 'error', code: 'unavailable', message: t('connection_lost') });
    });
  }
}
