// The two ways the page talks to chatd: the JSON API over fetch, and one
// WebSocket that reconnects on its own with exponential backoff and jitter.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

/** Call the JSON API. Throws ApiError; code 'unreachable' when the server can't be reached. */
export async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'server unreachable');
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const code = data && data.error && data.error.code;
    if (!code && res.status >= 502 && res.status <= 504) throw new ApiError(res.status, 'unreachable', 'server unreachable');
    throw new ApiError(res.status, code || 'http_' + res.status, (data && data.error && data.error.message) || res.statusText);
  }
  return data;
}

const BACKOFF_BASE = 500;   // ms
const BACKOFF_MAX = 10000;  // ms
const AUTH_TIMEOUT = 12000; // ms from opening the socket to `hello`

/**
 * One logical connection to /ws. Calls:
 *   onState('connecting'|'connected'|'reconnecting'|'offline')
 *   onHello(hello), onEvent(msg) for every other message (replies included),
 *   onAuthFail() for a refused token, onLoggedOut() for close 4001.
 * getSince() is asked for the `since` object at every (re)connect.
 */
export class Socket {
  constructor(token, handlers) {
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.authed = false;
    this.stopped = false;
    this.attempt = 0;
    this.timer = null;
    this.authTimer = null;
    this.pending = new Map(); // ref -> {resolve, reject, timer}
    this.refSeq = 0;
    this.connId = 0;
    this.state = 'connecting';
    // The browser going offline leaves an open socket silently stuck: drop
    // it, show "Offline", and keep trying (a loopback server may still be
    // reachable). Back online: reconnect at once, resyncing with `since`.
    this.onOnline = () => {
      if (this.stopped || this.authed) return;
      this.dropSocket();
      this.attempt = 0;
      clearTimeout(this.timer);
      this.connect();
    };
    this.onOffline = () => {
      if (this.stopped) return;
      this.dropSocket();
      this.attempt = 0;
      this.scheduleReconnect();
    };
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
  }

  get connected() { return this.authed && this.ws && this.ws.readyState === WebSocket.OPEN; }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.h.onState(s);
  }

  start() { this.connect(); }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.authTimer);
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    if (this.ws) { try { this.ws.close(1000); } catch { /* ignore */ } }
    this.ws = null;
    this.failPending('disconnected');
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/ws`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.authed = false;
    const id = ++this.connId;
    let authFailed = false;
    ws.onopen = () => {
      const since = this.h.getSince();
      const auth = { type: 'auth', token: this.token, ref: 'auth' };
      if (since && Object.keys(since).length) auth.since = since;
      ws.send(JSON.stringify(auth));
    };
    this.authTimer = setTimeout(() => { if (ws === this.ws && !this.authed) ws.close(); }, AUTH_TIMEOUT);
    ws.onmessage = (ev) => {
      if (ws !== this.ws || typeof ev.data !== 'string') return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (!msg || typeof msg !== 'object') return;
      if (!this.authed) {
        if (msg.type === 'hello') {
          this.authed = true;
          this.attempt = 0;
          clearTimeout(this.authTimer);
          this.setState('connected');
          this.h.onHello(msg, id);
        } else if (msg.type === 'error' && msg.code === 'unauthorized') {
          authFailed = true;
        }
        return;
      }
      if (msg.ref && this.pending.has(msg.ref)) {
        const p = this.pending.get(msg.ref);
        this.pending.delete(msg.ref);
        clearTimeout(p.timer);
        if (msg.type === 'error') p.reject(Object.assign(new Error(msg.message || msg.code), { code: msg.code }));
        else p.resolve(msg);
      }
      this.h.onEvent(msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      clearTimeout(this.authTimer);
      this.ws = null;
      const wasAuthed = this.authed;
      this.authed = false;
      this.failPending('disconnected');
      if (this.stopped) return;
      if (ev.code === 4001) { this.stopped = true; this.h.onLoggedOut(); return; }
      if (authFailed || (!wasAuthed && ev.code === 1008)) { this.stopped = true; this.h.onAuthFail(); return; }
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  /** Forget the current socket at once, without waiting for its close. */
  dropSocket() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.authed = false;
    clearTimeout(this.authTimer);
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(); } catch { /* ignore */ }
    this.failPending('disconnected');
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.setState(navigator.onLine === false ? 'offline' : 'reconnecting');
    // exponential backoff with jitter: a random delay in [d/2, d]
    const d = Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    const delay = this.attempt === 1 ? 150 + Math.random() * 250 : d / 2 + Math.random() * (d / 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  failPending(code) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(Object.assign(new Error(code), { code }));
    }
    this.pending.clear();
  }

  /** Send without waiting for a reply. False when not connected. */
  send(obj) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  /** Send and wait for the reply carrying the same ref. */
  request(obj, timeout = 15000) {
    return new Promise((resolve, reject) => {
      if (!this.connected) { reject(Object.assign(new Error('offline'), { code: 'disconnected' })); return; }
      const ref = obj.ref || 'r' + ++this.refSeq;
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(Object.assign(new Error('timeout'), { code: 'timeout' }));
      }, timeout);
      this.pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...obj, ref }));
    });
  }
}
