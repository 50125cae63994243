// chatd web page: state, protocol handling and rendering.
// See docs/web.md for the structure and the reconnect/resync rules.

import { api, ApiError, Socket } from './net.js';
import {
  h, fmtTime, fmtFull, fmtShort, dayKey, dayLabel,
  USER_RE, ROOM_RE, dmPeer, randomId, codePoints,
} from './util.js';
import { formatText } from './format.js';
import { initMentions, close as closeMentions, mentionsMe, setMentionBadge } from './mention.js';
import { buildReactions, openPicker, closePicker } from './reactions.js';
import { buildQuote, quoteSig, showReplyBanner, cachedOriginal, noteOriginal, fetchOriginal, clearOriginals } from './reply.js';
import { initRooms, resetRooms, roomsHello, roomsEvent, roomsRender, decorateRoomLink } from './rooms.js';
import { initNotify, resetNotify, notifyEvent, updateFavicon } from './notify.js';
import { initFiles, resetFiles, dropFiles, renderTray, attachState, takeFiles, buildFiles } from './files.js';

const $ = (id) => document.getElementById(id);
const LS_TOKEN = 'chatd.token';
const LS_USER = 'chatd.user';
const LS_ROOM = 'chatd.room';
const PAGE = 50;
const GROUP_MS = 5 * 60 * 1000;
const TYPING_SEND_MS = 3000;
const TYPING_SHOW_MS = 6000;
const SEND_TIMEOUT_MS = 15000;
const FLASH_MS = 4000;
const JOIN_PAGES = 3;      // `after` pages loaded at once to join a jump view to the cache

// ------------------------------------------------------------------ state

const S = {
  token: null,
  me: null,            // username
  epoch: null,         // from the last hello; a change drops every cache
  sock: null,
  connId: 0,           // id of the connection that sent the last hello
  rooms: new Map(),    // name -> room (see newRoom)
  current: null,       // name of the open room
  presence: new Map(), // username -> 'online' | 'offline'
  outbox: new Map(),   // client_msg_id -> {cid, room, text, ts, state, error, connId, maybeStored}
  editing: null,       // {room, id} while the composer edits a message
  replyTo: null,       // {room, id, user} while the composer writes a reply
  lastTyping: 0,
  maxTextChars: 4000,
  focusMsg: null,      // {room, id} to scroll to once loaded
  flash: null,         // {room, id} of the message just jumped to (highlighted)
};

function newRoom(name, kind) {
  return {
    name, kind: kind || (name.startsWith('dm:') ? 'dm' : 'public'),
    last_seq: 0,        // highest seq known in the room
    read_seq: 0,        // my read position
    unread: 0,          // counter when the cache can't tell
    mentions: 0,        // unread messages mentioning me, when the cache can't tell
    counted: 0,         // highest message id already counted in `unread`
    members: null,      // Set of usernames, from `joined`
    msgs: new Map(),    // id -> message (cache; contiguous from oldest to newest)
    loaded: false,      // cache holds the newest page and everything after
    loading: null,      // generation of the running initial load
    olderLoading: false,
    hasMore: true,      // older messages exist on the server
    syncSeq: 0,         // highest seq the cache reflects: `since` on reconnect
    view: null,         // a page around an older message, not joined to the cache yet (see jumpTo)
    reads: new Map(),   // other user -> read seq (read receipts)
    typing: new Map(),  // user -> expiry ms
    lastReadSent: 0,
  };
}

let loadGen = 0;

// ----------------------------------------------------------- boot & auth

function boot() {
  S.token = localStorage.getItem(LS_TOKEN);
  S.me = localStorage.getItem(LS_USER);
  wireAuth();
  wireChat();
  const ctx = { S, render, openRoom, api, isOnline };
  initRooms(ctx);
  initNotify(ctx);
  initFiles({ S, render, setError: (t) => { $('composer-error').textContent = t; } });
  if (S.token && S.me) startChat();
  else showAuth();
}

function showAuth(message) {
  $('chat-view').hidden = true;
  $('auth-view').hidden = false;
  $('auth-error').textContent = message || '';
  $('auth-pass').value = '';
  document.title = 'chatd — sign in';
  $('auth-user').focus();
}

const AUTH_ERRORS = {
  unreachable: 'Server unreachable — check your connection and try again.',
  bad_credentials: 'Wrong username or password.',
  username_taken: 'That username is already taken. Pick another one.',
  invalid_username: 'Usernames are 1–32 characters: letters, digits, “_”, “.” or “-”, starting with a letter or digit.',
  invalid_password: 'Passwords must be 8 to 256 characters long.',
  registration_closed: 'Sign-up is closed on this server.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
  busy: 'The server is busy. Try again in a moment.',
  bad_request: 'Enter a username and a password.',
};

function authMessage(e) {
  if (e instanceof ApiError) {
    if (AUTH_ERRORS[e.code]) return AUTH_ERRORS[e.code];
    if (e.status >= 500) return 'The server had a problem (' + e.status + '). Try again in a moment.';
    return e.message || 'Something went wrong.';
  }
  return 'Something went wrong: ' + (e && e.message);
}

function wireAuth() {
  const form = $('auth-form');
  let busy = false;
  async function go(mode) {
    if (busy) return;
    const username = $('auth-user').value.trim().toLowerCase();
    const password = $('auth-pass').value;
    const err = $('auth-error');
    if (!username || !password) { err.textContent = 'Enter a username and a password.'; return; }
    if (mode === 'signup') {
      if (!USER_RE.test(username)) { err.textContent = AUTH_ERRORS.invalid_username; return; }
      if (new TextEncoder().encode(password).length < 8) { err.textContent = AUTH_ERRORS.invalid_password; return; }
    }
    busy = true;
    err.textContent = mode === 'signup' ? 'Creating your account…' : 'Logging in…';
    try {
      if (mode === 'signup') await api('POST', '/api/register', { body: { username, password } });
      const res = await api('POST', '/api/login', { body: { username, password } });
      S.token = res.token;
      S.me = res.user.username;
      localStorage.setItem(LS_TOKEN, S.token);
      localStorage.setItem(LS_USER, S.me);
      err.textContent = '';
      $('auth-pass').value = '';
      startChat();
    } catch (e) {
      err.textContent = authMessage(e);
    } finally {
      busy = false;
    }
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); go('login'); });
  $('signup-btn').addEventListener('click', () => go('signup'));
}

function startChat() {
  $('auth-view').hidden = true;
  $('chat-view').hidden = false;
  $('me').textContent = S.me;
  S.rooms.clear();
  S.outbox.clear();
  S.presence.clear();
  S.epoch = null;
  S.current = null;
  S.editing = null;
  S.replyTo = null;
  showReplyBanner(null);
  clearOriginals();
  resetRooms();
  resetNotify();
  resetFiles();
  setConn('connecting');
  render();
  S.sock = new Socket(S.token, {
    getSince,
    onHello,
    onEvent,
    onState: setConn,
    onAuthFail: () => signOut('Your session has expired. Log in again.'),
    onLoggedOut: () => signOut('You were logged out.'),
  });
  S.sock.start();
}

async function logout() {
  const token = S.token;
  signOut('');
  try { await api('POST', '/api/logout', { token }); } catch { /* best effort */ }
}

function signOut(message) {
  if (S.sock) S.sock.stop();
  S.sock = null;
  S.token = null;
  localStorage.removeItem(LS_TOKEN);
  localStorage.removeItem(LS_USER);
  S.rooms.clear();
  S.outbox.clear();
  S.current = null;
  closeSearch();
  closePicker(false);
  closeMentions();
  resetRooms();
  resetNotify();
  resetFiles();
  showAuth(message);
}

// ------------------------------------------------------ connection state

const CONN_TEXT = { connecting: 'Reconnecting…', connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Offline' };

function setConn(state) {
  const el = $('conn-status');
  el.dataset.state = state;
  el.textContent = CONN_TEXT[state] || state;
  renderComposerState();
}

function getSince() {
  const since = {};
  for (const r of S.rooms.values()) if (r.loaded) since[r.name] = r.syncSeq; // 0 for a room that was empty
  return since;
}

function onHello(hello, connId) {
  S.connId = connId;
  if (hello.user && hello.user.username) S.me = hello.user.username;
  if (hello.limits && hello.limits.max_text_chars) S.maxTextChars = hello.limits.max_text_chars;
  if (S.epoch !== null && hello.epoch !== S.epoch) {
    // database restored from a backup: nothing we cached is trustworthy
    for (const r of S.rooms.values()) dropCache(r);
    clearOriginals();
  }
  S.epoch = hello.epoch;
  // presence from an earlier connection is stale; chatd follows `hello` with
  // a `presence` event for each user online now who shares a room with us
  S.presence.clear();
  const seen = new Set();
  for (const st of hello.rooms || []) {
    seen.add(st.name);
    let r = S.rooms.get(st.name);
    if (!r) { r = newRoom(st.name, st.kind); S.rooms.set(st.name, r); }
    r.kind = st.kind || r.kind;
    r.last_seq = st.last_seq || 0; // the replay that follows raises it
    r.read_seq = st.read_seq || 0;
    r.unread = st.unread || 0;
    r.mentions = st.mentions || 0;
    r.counted = st.last_seq || 0;
    r.lastReadSent = r.read_seq;
    r.typing.clear();
    // an initial load that was running on the old connection starts again
    if (!r.loaded && r.loading !== null) r.loading = null;
  }
  for (const name of [...S.rooms.keys()]) if (!seen.has(name)) S.rooms.delete(name);
  roomsHello(hello);
  // resend what was in flight when the connection dropped (same client_msg_id)
  for (const p of S.outbox.values()) {
    if (p.state !== 'sending') continue;
    p.maybeStored = true; // the replay below may bring it back without our ref
    transmit(p);
  }
  // pick the room to show
  const want = S.current || roomFromHash() || localStorage.getItem(LS_ROOM);
  if (want && S.rooms.has(want)) openRoom(want, { keepHash: true, refresh: true });
  else if (want && !want.startsWith('dm:') && ROOM_RE.test(want) && want === roomFromHash()) joinRoom(want);
  else if (S.rooms.size) openRoom(firstRoom(), {});
  else {
    S.current = null;
    if (isNarrow()) setDrawer(true); // nothing to show yet: offer the rooms list
    render();
  }
}

function firstRoom() {
  const list = sortedRooms();
  return list.length ? list[0].name : null;
}

function dropCache(r) {
  r.msgs.clear();
  r.loaded = false;
  r.loading = null;
  r.hasMore = true;
  r.syncSeq = 0;
  r.reads.clear();
  r.view = null;
}

// ------------------------------------------------------------ events

function onEvent(m) {
  handleEvent(m);
  roomsEvent(m);   // rooms.js: topics, roles, moderation
  notifyEvent(m);  // notify.js: mentions, desktop notifications
}

function handleEvent(m) {
  switch (m.type) {
    case 'message': return onMessage(m);
    case 'edited':
    case 'reaction':
    case 'deleted': return onChange(m);
    case 'history': return; // handled by the request's promise
    case 'truncated': {
      const r = S.rooms.get(m.room);
      if (!r) return;
      dropCache(r);
      if (r.name === S.current) loadRoom(r);
      return render();
    }
    case 'joined': return onJoined(m);
    case 'room': {
      if (!S.rooms.has(m.room)) S.rooms.set(m.room, newRoom(m.room, m.kind));
      return render();
    }
    case 'left': return onLeft(m.room);
    case 'member': {
      const r = S.rooms.get(m.room);
      if (r && r.members) {
        if (m.event === 'join') r.members.add(m.user);
        else if (m.event === 'leave') r.members.delete(m.user);
      }
      if (m.event === 'join' && !m.by) S.presence.set(m.user, 'online'); // not an invitation
      return render();
    }
    case 'read': return onRead(m);
    case 'typing': {
      const r = S.rooms.get(m.room);
      if (!r || m.user === S.me) return;
      r.typing.set(m.user, Date.now() + TYPING_SHOW_MS);
      S.presence.set(m.user, 'online');
      scheduleTypingExpiry();
      return render();
    }
    case 'presence': {
      S.presence.set(m.user, m.status === 'online' ? 'online' : 'offline');
      return render();
    }
    case 'error': {
      if (m.ref && m.ref.startsWith('send:')) {
        const p = S.outbox.get(m.ref.slice(5));
        if (p) failSend(p, m.code, m.message);
      }
      return;
    }
    default: return;
  }
}

function onMessage(m) {
  const r = S.rooms.get(m.room);
  // reconcile our own pending message: the reply carries our ref
  if (m.ref && m.ref.startsWith('send:')) {
    const p = S.outbox.get(m.ref.slice(5));
    if (p) { clearTimeout(p.timer); S.outbox.delete(p.cid); }
  } else if (m.user === S.me && !m.deleted) {
    // a message replayed after a reconnect that we sent on an earlier
    // connection, before its reply arrived: adopt it instead of showing twice
    for (const p of S.outbox.values()) {
      if (p.room === m.room && p.text === m.text && p.maybeStored) {
        clearTimeout(p.timer);
        S.outbox.delete(p.cid);
        break;
      }
    }
  }
  if (!r) return render();
  if (r.typing.delete(m.user)) scheduleTypingExpiry();
  r.last_seq = Math.max(r.last_seq, m.seq || m.id);
  if (m.id > r.counted) {
    r.counted = m.id;
    if (m.user !== S.me && !m.deleted && m.id > r.read_seq) {
      r.unread++;
      if (mentionsMe(m, S.me)) r.mentions++;
    }
  }
  if (r.loaded) {
    merge(r, m);
    r.syncSeq = Math.max(r.syncSeq, m.seq || m.id);
  }
  render();
}

function onChange(m) {
  const r = S.rooms.get(m.room);
  if (!r) return;
  r.last_seq = Math.max(r.last_seq, m.seq || 0);
  if (r.loaded) {
    merge(r, m);
    r.syncSeq = Math.max(r.syncSeq, m.seq || 0);
  }
  if (S.editing && m.deleted && S.editing.room === m.room && S.editing.id === m.id) cancelEdit();
  render();
}

/**
 * Put a message (new, edited or tombstone) into the cache; newer seq wins.
 * A change to a message older than the cache (an edit or a reaction) only
 * updates a jump view holding it: the cache stays contiguous. `older`: the
 * message belongs to a page being added at the old end.
 */
function merge(r, m, older) {
  const cur = r.msgs.get(m.id) || (r.view && r.view.msgs.get(m.id));
  if (cur && (cur.seq || 0) >= (m.seq || 0)) return false;
  const msg = copyMsg(m);
  if (older || r.msgs.has(m.id) || !r.hasMore || !r.msgs.size || m.id > oldestId(r)) r.msgs.set(m.id, msg);
  if (r.view && r.view.msgs.has(m.id)) r.view.msgs.set(m.id, msg);
  noteOriginal(msg);
  return true;
}

/** The fields of a message the page keeps (v1 and v2). */
function copyMsg(m) {
  const msg = { id: m.id, seq: m.seq, room: m.room, user: m.user, ts: m.ts };
  if (m.reply_to) msg.reply_to = m.reply_to;
  if (m.deleted) {
    msg.deleted = true;
    if (m.deleted_by) msg.deleted_by = m.deleted_by;
  } else {
    msg.text = m.text;
    if (m.edited_ts) msg.edited_ts = m.edited_ts;
    if (Array.isArray(m.mentions)) msg.mentions = m.mentions;
    if (m.mention_room) msg.mention_room = true;
    if (Array.isArray(m.reactions) && m.reactions.length) msg.reactions = m.reactions;
    if (Array.isArray(m.files) && m.files.length) msg.files = m.files;
  }
  return msg;
}

function onJoined(m) {
  let r = S.rooms.get(m.room);
  if (!r) { r = newRoom(m.room, m.kind); S.rooms.set(m.room, r); r.counted = m.last_seq || 0; r.read_seq = m.last_seq || 0; }
  r.kind = m.kind || r.kind;
  r.members = new Set(m.members || []);
  r.last_seq = Math.max(r.last_seq, m.last_seq || 0);
  render();
}

function onLeft(name) {
  if (!S.rooms.has(name)) return;
  S.rooms.delete(name);
  for (const p of [...S.outbox.values()]) if (p.room === name) S.outbox.delete(p.cid);
  dropFiles(name);
  if (S.current === name) {
    S.current = null;
    const next = firstRoom();
    if (next) openRoom(next, {});
    else { location.hash = ''; render(); }
  } else render();
}

function onRead(m) {
  const r = S.rooms.get(m.room);
  if (!r) return;
  if (m.user === S.me) {
    if (m.seq > r.read_seq) {
      r.read_seq = m.seq;
      r.lastReadSent = Math.max(r.lastReadSent, m.seq);
      if (r.read_seq >= r.last_seq) r.unread = r.mentions = 0;
      else if (!r.loaded) r.unread = Math.min(r.unread, Math.max(0, r.last_seq - r.read_seq));
      r.mentions = Math.min(r.mentions, r.unread);
    }
  } else {
    r.reads.set(m.user, Math.max(r.reads.get(m.user) || 0, m.seq));
    S.presence.set(m.user, 'online');
  }
  render();
}

/** Unread count for the sidebar: exact from the cache when it covers it. */
function unreadOf(r) {
  if (r.loaded && (!r.hasMore || oldestId(r) <= r.read_seq + 1)) {
    let n = 0;
    for (const m of r.msgs.values()) if (m.id > r.read_seq && m.user !== S.me && !m.deleted) n++;
    return n;
  }
  return r.unread;
}

/** Unread messages that mention me: exact from the cache when it covers them. */
function mentionsOf(r) {
  if (r.loaded && (!r.hasMore || oldestId(r) <= r.read_seq + 1)) {
    let n = 0;
    for (const m of r.msgs.values()) if (m.id > r.read_seq && mentionsMe(m, S.me)) n++;
    return n;
  }
  return r.mentions;
}

function oldestId(r) {
  let min = Infinity;
  for (const id of r.msgs.keys()) if (id < min) min = id;
  return min;
}

// --------------------------------------------------------- room actions

function roomFromHash() {
  const m = location.hash.match(/^#\/room\/([^/]+)(?:\/(\d+))?$/);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch { return null; }
}

function msgFromHash() {
  const m = location.hash.match(/^#\/room\/[^/]+\/(\d+)$/);
  return m ? Number(m[1]) : null;
}

function roomHash(name, id) {
  return '#/room/' + encodeURIComponent(name) + (id ? '/' + id : '');
}

function openRoom(name, { keepHash, focusId, refresh } = {}) {
  const r = S.rooms.get(name);
  if (!r) return;
  const changed = S.current !== name;
  if (changed && S.editing) cancelEdit();
  if (changed) {
    cancelReply();
    closeMentions();
    const old = S.rooms.get(S.current);
    if (old) old.view = null; // coming back shows the newest messages
  }
  S.current = name;
  localStorage.setItem(LS_ROOM, name);
  if (!keepHash || roomFromHash() !== name) {
    const want = roomHash(name, focusId);
    if (location.hash !== want) history.replaceState(null, '', want);
  }
  if (focusId) S.focusMsg = { room: name, id: focusId };
  setDrawer(false);
  if (changed) {
    $('composer-error').textContent = '';
    pinned = true;
    lastRenderedRoom = null;
  }
  // `join` of a room we are in just answers `joined`: its member list
  if (S.sock && S.sock.connected && (changed || refresh || !r.members)) {
    S.sock.request({ type: 'join', room: name }).catch(() => {});
  }
  if (!r.loaded) loadRoom(r);
  else if (S.focusMsg) ensureFocusLoaded(r);
  render();
  if (changed && matchMedia('(pointer: fine)').matches) $('composer-input').focus({ preventScroll: true });
}

async function loadRoom(r) {
  if (r.loaded || r.loading !== null || !S.sock || !S.sock.connected) return;
  const gen = ++loadGen;
  r.loading = gen;
  try {
    const lastKnown = r.last_seq;
    const res = await S.sock.request({ type: 'history', room: r.name, limit: PAGE });
    if (r.loading !== gen || S.rooms.get(r.name) !== r) return;
    r.loading = null;
    let maxSeq = lastKnown;
    for (const m of res.messages || []) { merge(r, m, true); maxSeq = Math.max(maxSeq, m.seq || m.id); }
    r.hasMore = !!res.has_more;
    r.loaded = true;
    r.syncSeq = Math.max(r.syncSeq, maxSeq);
    r.last_seq = Math.max(r.last_seq, maxSeq);
    if (S.focusMsg && S.focusMsg.room === r.name) ensureFocusLoaded(r);
    render();
  } catch (e) {
    if (r.loading === gen) r.loading = null;
    if (e.code === 'rate_limited') setTimeout(() => { if (r.name === S.current) loadRoom(r); }, 1000);
    if (e.code === 'forbidden' || e.code === 'no_such_room') {
      $('composer-error').textContent = 'You can’t read this room.';
    }
    render();
  }
}

async function loadOlder(r) {
  if (r.view) return loadViewPage(r, 'before');
  if (!r.loaded || !r.hasMore || r.olderLoading || !S.sock || !S.sock.connected) return false;
  r.olderLoading = true;
  render();
  try {
    const before = oldestId(r);
    const res = await S.sock.request({ type: 'history', room: r.name, before: before === Infinity ? undefined : before, limit: PAGE });
    if (S.rooms.get(r.name) !== r || !r.loaded) return false;
    for (const m of res.messages || []) merge(r, m, true);
    r.hasMore = !!res.has_more && (res.messages || []).length > 0;
    return true;
  } catch (e) {
    if (e.code !== 'rate_limited') return false;
    await new Promise((ok) => setTimeout(ok, 1000)); // chatd's per-connection limit: try again
    return true;
  } finally {
    r.olderLoading = false;
    render();
  }
}

/**
 * Jumping to a message (a reply's original, a search result): once the
 * room is loaded, if the message is not shown yet, ask for the page
 * `around` it. A page that reaches the cache joins it; an older one
 * becomes the room's view, which grows with `before`/`after` pages as the
 * reader scrolls and joins the cache once it reaches it ("Jump to latest"
 * leaves it).
 */
async function ensureFocusLoaded(r) {
  const f = S.focusMsg;
  if (!f || f.room !== r.name || !r.loaded) return;
  if (r.msgs.has(f.id) || (r.view && r.view.msgs.has(f.id))) { render(); return; }
  if (!S.sock || !S.sock.connected) return;
  let res = null;
  try {
    res = await S.sock.request({ type: 'history', room: r.name, around: f.id, limit: PAGE });
  } catch { /* below */ }
  if (S.focusMsg !== f || S.rooms.get(r.name) !== r || !r.loaded) return;
  if (!res || res.has_more_after === undefined) {
    // a server without `around` (protocol v1): page back to the message
    for (let i = 0; i < 60 && !r.msgs.has(f.id) && r.hasMore; i++) {
      if (!(await loadOlder(r))) break;
    }
    render();
    return;
  }
  const page = res.messages || [];
  if (!page.some((m) => m.id === f.id)) S.focusMsg = null; // no such message: show the place anyway
  const oldest = oldestId(r);
  if (!page.length) { render(); return; }
  if (!r.msgs.size || !res.has_more_after || page[page.length - 1].id >= oldest) {
    // the page reaches the cache: one contiguous cache again
    r.view = null;
    for (const m of page) merge(r, m, true);
    if (page[0].id < oldest) r.hasMore = !!res.has_more_before;
  } else {
    const v = { msgs: new Map(), before: !!res.has_more_before, after: true, loading: null };
    for (const m of page) v.msgs.set(m.id, copyMsg(m));
    r.view = v;
    pinned = false;
    render();
    // a view a few pages from the cache is joined to it at once
    for (let i = 0; i < JOIN_PAGES && r.view === v; i++) {
      if (!(await loadViewPage(r, 'after'))) break;
    }
  }
  render();
}

/** Grow the jump view by a page `before` its oldest or `after` its newest message. */
function loadViewPage(r, dir) {
  const v = r.view;
  if (!v || !S.sock || !S.sock.connected) return Promise.resolve(false);
  if (v.loading) return v.loading; // one page at a time
  if (!v[dir]) return Promise.resolve(false);
  v.loading = viewPage(r, v, dir).finally(() => { v.loading = null; render(); });
  return v.loading;
}

async function viewPage(r, v, dir) {
  try {
    const ids = [...v.msgs.keys()];
    const edge = dir === 'before' ? Math.min(...ids) : Math.max(...ids);
    const res = await S.sock.request({ type: 'history', room: r.name, [dir]: edge, limit: PAGE });
    if (r.view !== v) return false;
    const page = res.messages || [];
    for (const m of page) {
      const cur = v.msgs.get(m.id) || r.msgs.get(m.id);
      v.msgs.set(m.id, cur && (cur.seq || 0) >= (m.seq || 0) ? cur : copyMsg(m));
    }
    v[dir] = !!res.has_more && page.length > 0;
    if (dir === 'after' && (!v.after || (page.length && page[page.length - 1].id >= oldestId(r)))) {
      // reached the cache: join them and leave the view
      r.view = null;
      for (const m of v.msgs.values()) merge(r, m, true);
      r.hasMore = v.before;
    }
    return true;
  } catch {
    return false;
  }
}

/** Leave a jump view and show the newest messages. */
function leaveView(r) {
  if (!r.view) return;
  r.view = null;
  pinned = true;
  render();
}

async function joinRoom(name) {
  const err = $('join-error');
  err.textContent = '';
  name = name.trim().replace(/^#/, '').toLowerCase();
  if (!name) { err.textContent = 'Type a room name.'; return false; }
  if (!name.startsWith('dm:') && !ROOM_RE.test(name)) {
    err.textContent = 'Room names are 1–64 characters: letters, digits, “_” or “-”, starting with a letter or digit.';
    return false;
  }
  if (!S.sock || !S.sock.connected) { err.textContent = 'Not connected — wait until the connection is back.'; return false; }
  try {
    const res = await S.sock.request({ type: 'join', room: name });
    openRoom(res.room, {});
    return true;
  } catch (e) {
    err.textContent = roomError(e);
    return false;
  }
}

async function startDm(user) {
  const err = $('dm-error');
  err.textContent = '';
  user = user.trim().replace(/^@/, '').toLowerCase();
  if (!USER_RE.test(user)) { err.textContent = 'Type a valid username.'; return false; }
  if (!S.sock || !S.sock.connected) { err.textContent = 'Not connected — wait until the connection is back.'; return false; }
  try {
    const res = await S.sock.request({ type: 'dm', user });
    openRoom(res.room, {});
    return true;
  } catch (e) {
    err.textContent = e.code === 'not_found' ? `There is no user named “${user}”.` : roomError(e);
    return false;
  }
}

async function leaveRoom(name) {
  if (!S.sock || !S.sock.connected) { $('composer-error').textContent = 'Not connected.'; return; }
  try {
    await S.sock.request({ type: 'leave', room: name });
    onLeft(name);
  } catch (e) {
    $('composer-error').textContent = e.code === 'forbidden' ? 'Direct messages can’t be left.' : roomError(e);
  }
}

function roomError(e) {
  switch (e.code) {
    case 'invalid_room': return 'That is not a valid room name.';
    case 'forbidden': return 'You can’t join that room.';
    case 'no_such_room': return 'There is no such room.';
    case 'rate_limited': return 'Slow down a little and try again.';
    case 'disconnected': case 'timeout': return 'Not connected — try again when the connection is back.';
    default: return e.message || 'Something went wrong.';
  }
}

// ------------------------------------------------------------ sending

function sendText(text) {
  const room = S.current;
  if (!room) return;
  const p = { cid: randomId(), room, text, ts: Date.now(), state: 'sending', error: '', connId: 0, timer: null };
  const files = takeFiles(room);
  if (files.length) p.files = files;
  if (S.replyTo && S.replyTo.room === room) p.replyTo = S.replyTo.id;
  cancelReply();
  const r = S.rooms.get(room);
  if (r && r.view) r.view = null; // a sent message shows at the bottom: leave the jump view
  S.outbox.set(p.cid, p);
  S.lastTyping = 0; // the message ends the typing state on the other side
  if (!transmit(p)) failSend(p, 'offline');
  pinned = true;
  render();
}

function transmit(p) {
  p.state = 'sending';
  p.error = '';
  clearTimeout(p.timer);
  const req = { type: 'send', room: p.room, text: p.text, client_msg_id: p.cid, ref: 'send:' + p.cid };
  if (p.replyTo) req.reply_to = p.replyTo;
  if (p.files) req.files = p.files.map((f) => f.id);
  if (!S.sock || !S.sock.send(req)) return false;
  p.connId = S.connId;
  p.timer = setTimeout(() => { if (S.outbox.get(p.cid) === p && p.state === 'sending' && p.connId === S.connId && S.sock && S.sock.connected) failSend(p, 'timeout'); }, SEND_TIMEOUT_MS);
  return true;
}

const SEND_ERRORS = {
  offline: 'Not sent — you are offline.',
  timeout: 'Not sent — the server did not answer.',
  rate_limited: 'Not sent — you are sending too fast.',
  too_long: 'Not sent — the message is too long.',
  empty: 'Not sent — the message is empty.',
  not_member: 'Not sent — you are not a member of this room.',
  no_such_room: 'Not sent — the room no longer exists.',
};

function failSend(p, code, message) {
  clearTimeout(p.timer);
  if (code === 'timeout') p.maybeStored = true; // chatd may have stored it
  p.state = 'failed';
  p.error = code === 'not_found' && p.files ? 'Not sent — an attached file is gone (uploads not sent within 24 hours expire).'
    : code === 'not_found' && p.replyTo ? 'Not sent — the message you replied to is gone.'
    : SEND_ERRORS[code] || ('Not sent — ' + (message || code) + '.');
  render();
}

function retrySend(cid) {
  const p = S.outbox.get(cid);
  if (!p) return;
  if (!transmit(p)) failSend(p, 'offline');
  render();
}

function discardPending(cid) {
  const p = S.outbox.get(cid);
  if (p) { clearTimeout(p.timer); S.outbox.delete(cid); render(); }
}

/** Reply to message id: the composer shows "Replying to USER" until sent or cancelled. */
function startReply(room, id) {
  const r = S.rooms.get(room);
  const m = r && (r.msgs.get(id) || (r.view && r.view.msgs.get(id)));
  if (!m || m.deleted) return;
  if (S.editing) cancelEdit();
  S.replyTo = { room, id, user: m.user };
  showReplyBanner(m.user);
  $('composer-input').focus();
  render();
}

function cancelReply() {
  if (!S.replyTo) return;
  S.replyTo = null;
  showReplyBanner(null);
  render();
}

/** Toggle my reaction `emoji` on message id. */
async function react(room, id, emoji, on) {
  if (!S.sock || !S.sock.connected) { $('composer-error').textContent = 'Not connected — can’t react now.'; return; }
  try {
    await S.sock.request({ type: 'react', room, id, emoji, on }); // the reply goes through onEvent
  } catch (e) {
    $('composer-error').textContent = 'Reaction failed: ' + (e.code === 'not_found' ? 'the message is gone.' : e.message || e.code);
  }
}

function startEdit(room, id) {
  const r = S.rooms.get(room);
  const m = r && r.msgs.get(id);
  if (!m || m.deleted || m.user !== S.me) return;
  if (S.replyTo) cancelReply();
  S.editing = { room, id };
  const ta = $('composer-input');
  ta.value = m.text;
  $('edit-banner').hidden = false;
  $('composer').classList.add('editing');
  autosize();
  ta.focus();
  ta.select();
  render();
}

function cancelEdit() {
  if (!S.editing) return;
  S.editing = null;
  $('composer-input').value = '';
  $('edit-banner').hidden = true;
  $('composer').classList.remove('editing');
  autosize();
  render();
}

async function saveEdit(text) {
  const ed = S.editing;
  const r = S.rooms.get(ed.room);
  const m = r && r.msgs.get(ed.id);
  cancelEdit();
  if (!m || m.text === text) return;
  try {
    const res = await S.sock.request({ type: 'edit', room: ed.room, id: ed.id, text });
    onChange(res);
  } catch (e) {
    $('composer-error').textContent = 'Edit failed: ' + (SEND_ERRORS[e.code] || e.message || e.code);
  }
}

async function deleteMessage(room, id) {
  if (!S.sock || !S.sock.connected) { $('composer-error').textContent = 'Not connected — can’t delete now.'; return; }
  try {
    const res = await S.sock.request({ type: 'delete', room, id });
    onChange(res);
  } catch (e) {
    $('composer-error').textContent = 'Delete failed: ' + (e.code === 'not_found' ? 'the message is gone.' : e.message || e.code);
  }
}

// ---------------------------------------------------------- read marks

let readTimer = null;
function scheduleRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(markRead, 150);
}

function markRead() {
  const r = S.rooms.get(S.current);
  if (!r || !r.loaded || document.visibilityState !== 'visible' || !S.sock || !S.sock.connected) return;
  if ($('chat-view').hidden || document.body.classList.contains('rooms-open') && isNarrow()) return;
  let target;
  if (!r.view && (pinned || atBottom())) target = Math.max(r.syncSeq, r.last_seq);
  else {
    // the last message fully visible in the log
    const log = $('log');
    const bottom = log.scrollTop + log.clientHeight;
    target = 0;
    for (const el of $('log-items').children) {
      if (!el.dataset.id) continue;
      if (el.offsetTop + el.offsetHeight <= bottom + 2) target = Math.max(target, Number(el.dataset.id));
      else if (el.offsetTop > bottom) break;
    }
  }
  if (target > r.read_seq && target > r.lastReadSent) {
    r.lastReadSent = target;
    r.read_seq = target;
    if (target >= r.last_seq) r.unread = r.mentions = 0;
    S.sock.request({ type: 'read', room: r.name, seq: target }).then(onRead, () => { r.lastReadSent = 0; });
    render();
  }
}

// --------------------------------------------------------- typing

let typingTimer = null;
function scheduleTypingExpiry() {
  clearTimeout(typingTimer);
  let next = Infinity;
  const now = Date.now();
  for (const r of S.rooms.values()) {
    for (const [u, exp] of r.typing) {
      if (exp <= now) r.typing.delete(u);
      else next = Math.min(next, exp);
    }
  }
  if (next !== Infinity) typingTimer = setTimeout(() => { scheduleTypingExpiry(); render(); }, next - now + 20);
}

function noteTyping() {
  if (S.editing || !S.current || !S.sock || !S.sock.connected) return;
  const now = Date.now();
  if (now - S.lastTyping < TYPING_SEND_MS) return;
  S.lastTyping = now;
  S.sock.send({ type: 'typing', room: S.current });
}

// ------------------------------------------------------------ search

async function runSearch(q) {
  q = q.trim();
  if (!q) { closeSearch(); return; }
  const panel = $('search-panel');
  panel.hidden = false;
  document.body.classList.add('searching');
  $('search-title').textContent = `Results for “${q}”`;
  $('search-status').textContent = 'Searching…';
  $('search-results').replaceChildren();
  try {
    const res = await api('GET', '/api/search?q=' + encodeURIComponent(q) + '&limit=50', { token: S.token });
    const list = res.results || [];
    $('search-status').textContent = list.length ? `${list.length} result${list.length === 1 ? '' : 's'}` : 'No messages found.';
    $('search-results').replaceChildren(...list.map((m) => h('li', null,
      h('a', { href: roomHash(m.room, m.id), class: 'result', dataset: { room: m.room, id: String(m.id) } },
        h('span', { class: 'result-meta' },
          h('span', { class: 'result-room' }, roomLabel(m.room)), ' · ',
          h('span', { class: 'result-user' }, m.user), ' · ',
          h('time', { datetime: new Date(m.ts).toISOString() }, fmtShort(m.ts))),
        h('span', { class: 'result-text' }, m.deleted ? 'Deleted message' : m.text)))));
  } catch (e) {
    if (e.code === 'unauthorized') { signOut('Your session has expired. Log in again.'); return; }
    $('search-status').textContent = e.code === 'unreachable' ? 'Server unreachable — try again.' : 'Search failed: ' + (e.message || e.code);
  }
}

function closeSearch() {
  $('search-panel').hidden = true;
  document.body.classList.remove('searching');
}

function openResult(room, id) {
  if (!S.rooms.has(room)) return;
  if (isNarrow()) closeSearch();
  openRoom(room, { focusId: id });
}

// ------------------------------------------------------------ rendering

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => { renderQueued = false; renderNow(); });
}

function renderNow() {
  if ($('chat-view').hidden) return;
  renderSidebar();
  renderRoomHead();
  renderMessages();
  renderTyping();
  renderComposerState();
  const total = [...S.rooms.values()].reduce((n, r) => n + unreadOf(r), 0);
  document.title = (total ? `(${total}) ` : '') + (S.current ? roomLabel(S.current) + ' — ' : '') + 'chatd';
  roomsRender();
  updateFavicon(total);
}

function roomLabel(name) {
  return name.startsWith('dm:') ? dmPeer(name, S.me) : name;
}

function sortedRooms() {
  return [...S.rooms.values()].sort((a, b) => {
    if ((a.kind === 'dm') !== (b.kind === 'dm')) return a.kind === 'dm' ? 1 : -1;
    return roomLabel(a.name).localeCompare(roomLabel(b.name));
  });
}

const roomItems = new Map(); // name -> li

function renderSidebar() {
  const pub = [], dms = [];
  for (const r of sortedRooms()) (r.kind === 'dm' ? dms : pub).push(r);
  syncList($('room-list'), pub);
  syncList($('dm-list'), dms);
  for (const name of [...roomItems.keys()]) if (!S.rooms.has(name)) { roomItems.get(name).remove(); roomItems.delete(name); }
}

function syncList(ul, rooms) {
  let cursor = ul.firstChild;
  for (const r of rooms) {
    let li = roomItems.get(r.name);
    if (!li) {
      const a = h('a', { class: 'room-link', href: roomHash(r.name) },
        h('span', { class: 'sigil', 'aria-hidden': 'true' }, r.kind === 'dm' ? '@' : '#'),
        h('span', { class: 'room-name' }, roomLabel(r.name)),
        h('span', { class: 'presence-dot', 'aria-hidden': 'true' }),
        ' ',
        h('span', { class: 'badge', hidden: true }));
      a.addEventListener('click', (ev) => {
        if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
        ev.preventDefault();
        openRoom(r.name, {});
      });
      li = h('li', { dataset: { room: r.name } }, a);
      roomItems.set(r.name, li);
    }
    if (li.parentNode !== ul || li !== cursor) ul.insertBefore(li, cursor);
    cursor = li.nextSibling;
    const a = li.firstChild;
    const caughtUp = r.name === S.current && pinned && !r.view && r.loaded && document.visibilityState === 'visible';
    const n = caughtUp ? 0 : unreadOf(r);
    setMentionBadge(a, caughtUp ? 0 : mentionsOf(r));
    const badge = a.querySelector('.badge');
    const txt = n > 99 ? '99+' : String(n);
    if (n > 0) {
      badge.hidden = false;
      if (badge.firstChild?.nodeValue !== txt) badge.replaceChildren(txt, h('span', { class: 'sr-only' }, ' unread'));
      badge.setAttribute('aria-label', `${n} unread`);
    } else if (!badge.hidden) {
      badge.hidden = true;
      badge.textContent = '';
      badge.removeAttribute('aria-label');
    }
    a.classList.toggle('has-unread', n > 0);
    decorateRoomLink(a, r);
    if (r.name === S.current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    if (r.kind === 'dm') {
      const peer = dmPeer(r.name, S.me);
      a.classList.toggle('online', S.presence.get(peer) === 'online' || peer === S.me);
    }
  }
  while (cursor) { const next = cursor.nextSibling; cursor.remove(); cursor = next; }
}

function renderRoomHead() {
  const r = S.rooms.get(S.current);
  $('empty-state').hidden = !!r;
  $('log').hidden = !r;
  $('room-title').textContent = r ? (r.kind === 'dm' ? roomLabel(r.name) : '# ' + r.name) : (S.rooms.size ? 'Pick a room' : 'No room open');
  $('leave-btn').hidden = !r || r.kind === 'dm';
  const ul = $('member-list');
  if (!r || !r.members) { ul.replaceChildren(); return; }
  const names = [...r.members].sort((a, b) => {
    const oa = isOnline(a), ob = isOnline(b);
    return oa !== ob ? (oa ? -1 : 1) : a.localeCompare(b);
  });
  const sig = names.map((n) => n + (isOnline(n) ? '+' : '-')).join(',');
  if (ul.dataset.sig === sig) return;
  ul.dataset.sig = sig;
  ul.replaceChildren(...names.map((n) => h('li', { class: isOnline(n) ? 'member online' : 'member' },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    n === S.me ? n + ' (you)' : n,
    h('span', { class: 'sr-only' }, isOnline(n) ? ', online' : ', offline'))));
}

function isOnline(u) {
  if (u === S.me) return !!(S.sock && S.sock.connected);
  return S.presence.get(u) === 'online';
}

// message list: keyed reconciliation that never moves or rebuilds a node
// whose content did not change, so focus and scroll position survive.
let pinned = true;
let lastRenderedRoom = null;

function atBottom() {
  const log = $('log');
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

function desiredItems(r) {
  const items = [];
  const msgs = [...(r.view ? r.view.msgs : r.msgs).values()].sort((a, b) => a.id - b.id);
  const pend = r.view ? [] : [...S.outbox.values()].filter((p) => p.room === r.name).sort((a, b) => a.ts - b.ts);
  // DM read receipt: the newest of my messages the other user has read
  let seenId = 0, seenBy = '';
  if (r.kind === 'dm') {
    const peer = dmPeer(r.name, S.me);
    const rs = r.reads.get(peer) || 0;
    if (peer !== S.me && rs) {
      for (const m of msgs) if (m.user === S.me && !m.deleted && m.id <= rs) seenId = m.id;
      seenBy = peer;
    }
  }
  let prev = null;
  const all = msgs.map((m) => ({ kind: 'm', m })).concat(pend.map((p) => ({ kind: 'p', m: { user: S.me, ts: p.ts, text: p.text }, p })));
  for (const it of all) {
    const m = it.m;
    const dk = dayKey(m.ts);
    if (!prev || dayKey(prev.ts) !== dk) {
      items.push({ key: 'd:' + dk, sig: dayLabel(m.ts), build: () => h('h2', { class: 'day' }, h('span', null, dayLabel(m.ts))) });
      prev = null;
    }
    const cont = !!prev && prev.user === m.user && m.ts - prev.ts < GROUP_MS;
    if (it.kind === 'm') {
      const focus = (S.focusMsg && S.focusMsg.room === r.name && S.focusMsg.id === m.id)
        || (S.flash && S.flash.room === r.name && S.flash.id === m.id);
      const seen = m.id === seenId ? seenBy : '';
      const orig = m.reply_to && !m.deleted ? findOriginal(r, m.reply_to) : undefined;
      items.push({
        key: 'm:' + m.id, id: m.id,
        sig: [m.seq, cont, seen, m.deleted ? 1 : 0, m.edited_ts || 0, focus, S.editing && S.editing.id === m.id,
          m.reply_to ? quoteSig(orig) : '', S.replyTo && S.replyTo.id === m.id].join('|'),
        build: () => buildMessage(r, m, cont, seen, focus, orig),
      });
    } else {
      const p = it.p;
      const orig = p.replyTo ? findOriginal(r, p.replyTo) : undefined;
      items.push({ key: 'p:' + p.cid, sig: [cont, p.state, p.error, p.replyTo ? quoteSig(orig) : ''].join('|'), build: () => buildPending(p, cont, orig) });
    }
    prev = m;
  }
  return items;
}

/** The message a reply answers: from the cache, else fetched once (undefined until then). */
function findOriginal(r, id) {
  const m = r.msgs.get(id) || (r.view && r.view.msgs.get(id));
  if (m) return m;
  const c = cachedOriginal(r.name, id);
  if (c !== undefined) return c || { id, deleted: true };
  if (S.sock && S.sock.connected) fetchOriginal((q) => S.sock.request(q), r.name, id, render);
  return undefined;
}

function buildMessage(r, m, cont, seenBy, focus, orig) {
  const mine = m.user === S.me;
  const idp = 'm' + m.id;
  const cls = ['msg'];
  if (cont) cls.push('cont');
  if (mine) cls.push('mine');
  if (m.deleted) cls.push('deleted');
  if (focus) cls.push('focus');
  if (S.editing && S.editing.id === m.id && S.editing.room === r.name) cls.push('being-edited');
  if (S.replyTo && S.replyTo.id === m.id && S.replyTo.room === r.name) cls.push('being-replied');
  const forMe = mentionsMe(m, S.me);
  if (forMe) cls.push('mentioned');
  const text = m.deleted
    ? h('div', { class: 'text', id: idp + '-x' }, h('em', null, m.deleted_by ? `This message was deleted by ${m.deleted_by}.` : 'This message was deleted.'))
    : h('div', { class: 'text', id: idp + '-x' },
      formatText(m.text, { mentions: m.mentions, mentionRoom: m.mention_room, me: S.me }),
      m.edited_ts ? h('span', { class: 'edited', title: 'Edited ' + fmtFull(m.edited_ts) }, ' (edited)') : null);
  const actions = m.deleted ? null
    : h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'act', dataset: { act: 'reply' } }, 'Reply'),
      h('button', { type: 'button', class: 'act', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', dataset: { act: 'add-reaction' } }, 'Add reaction'),
      mine ? h('button', { type: 'button', class: 'act', dataset: { act: 'edit' } }, 'Edit') : null,
      mine ? h('button', { type: 'button', class: 'act', dataset: { act: 'delete' } }, 'Delete') : null);
  return h('article', {
    class: cls.join(' '), tabindex: '-1',
    'aria-labelledby': `${idp}-a ${idp}-t ${idp}-x` + (m.files && !m.deleted ? ` ${idp}-f` : ''),
    'aria-describedby': forMe ? idp + '-me' : null,
    dataset: { id: String(m.id), user: m.user },
  },
  cont ? null : h('span', { class: 'avatar c' + hue(m.user), 'aria-hidden': 'true' }, [...m.user][0] || '?'),
  h('div', { class: 'meta' },
    h('span', { class: 'author', id: idp + '-a' }, m.user),
    ' ',
    h('time', { id: idp + '-t', datetime: new Date(m.ts).toISOString(), title: fmtFull(m.ts) }, fmtTime(m.ts))),
  forMe ? h('span', { class: 'sr-only', id: idp + '-me' }, 'Mentions you') : null,
  m.reply_to && !m.deleted ? buildQuote(orig, m.reply_to) : null,
  text,
  m.deleted ? null : buildFiles(m.files, idp + '-f'),
  buildReactions(m, S.me),
  actions,
  seenBy ? h('div', { class: 'receipt' }, `Seen by ${seenBy}`) : null);
}

/** A stable colour (one of six CSS classes) for a username's avatar. */
function hue(name) {
  let x = 0;
  for (const ch of name) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 6;
}

function buildPending(p, cont, orig) {
  const idp = 'p' + p.cid;
  const failed = p.state === 'failed';
  return h('article', {
    class: 'msg mine pending' + (cont ? ' cont' : '') + (failed ? ' failed' : ''),
    'aria-labelledby': `${idp}-a ${idp}-t ${idp}-x` + (p.files ? ` ${idp}-f` : ''),
    dataset: { cid: p.cid, user: S.me },
  },
  cont ? null : h('span', { class: 'avatar c' + hue(S.me), 'aria-hidden': 'true' }, [...S.me][0] || '?'),
  h('div', { class: 'meta' },
    h('span', { class: 'author', id: idp + '-a' }, S.me), ' ',
    h('time', { id: idp + '-t', datetime: new Date(p.ts).toISOString() }, fmtTime(p.ts))),
  p.replyTo ? buildQuote(orig, p.replyTo) : null,
  h('div', { class: 'text', id: idp + '-x' }, formatText(p.text)),
  buildFiles(p.files, idp + '-f', true),
  failed
    ? h('div', { class: 'send-state', role: 'alert' }, p.error || 'Not sent.', ' ',
      h('button', { type: 'button', class: 'act', dataset: { act: 'retry' } }, 'Retry'), ' ',
      h('button', { type: 'button', class: 'act', dataset: { act: 'discard' } }, 'Delete'))
    : h('div', { class: 'send-state' }, 'Sending…'));
}

function renderMessages() {
  const r = S.rooms.get(S.current);
  const box = $('log-items');
  const log = $('log');
  if (!r) { box.replaceChildren(); lastRenderedRoom = null; return; }
  const switched = lastRenderedRoom !== r.name;
  if (switched) { box.replaceChildren(); pinned = true; }
  lastRenderedRoom = r.name;

  // remember what the reader is looking at (a jump view is never pinned)
  const wasBottom = pinned && !r.view;
  let anchor = null;
  if (!wasBottom) {
    const top = log.scrollTop;
    for (const el of box.children) {
      if (el.tagName !== 'ARTICLE') continue; // day headings move when older days arrive
      if (el.offsetTop + el.offsetHeight > top) { anchor = { key: el.dataset.key, off: el.offsetTop - top }; break; }
    }
  }

  const items = desiredItems(r);
  const want = new Set(items.map((i) => i.key));
  const have = new Map();
  for (const el of [...box.children]) {
    if (!want.has(el.dataset.key)) el.remove();
    else have.set(el.dataset.key, el);
  }
  let cursor = box.firstChild;
  let added = 0;
  for (const it of items) {
    let el = have.get(it.key);
    if (el && el.dataset.sig !== it.sig) {
      const fresh = it.build();
      fresh.dataset.key = it.key;
      fresh.dataset.sig = it.sig;
      const hadFocus = el.contains(document.activeElement) ? document.activeElement : null;
      el.replaceWith(fresh);
      if (cursor === el) cursor = fresh;
      el = fresh;
      if (hadFocus) (sameControl(el, hadFocus) || el).focus({ preventScroll: true });
    }
    if (!el) {
      el = it.build();
      el.dataset.key = it.key;
      el.dataset.sig = it.sig;
      box.insertBefore(el, cursor);
      added++;
      continue;
    }
    if (el === cursor) cursor = el.nextSibling;
    else box.insertBefore(el, cursor);
  }

  const top = $('log-top');
  top.textContent = !r.loaded ? (S.sock && S.sock.connected ? 'Loading messages…' : '')
    : r.olderLoading ? 'Loading older messages…'
      : r.hasMore ? '' : (r.kind === 'dm' ? 'This is the start of your conversation.' : `This is the start of #${r.name}.`);

  // restore the view
  if (S.focusMsg && S.focusMsg.room === r.name && (r.view ? r.view.msgs : r.msgs).has(S.focusMsg.id)) {
    const el = box.querySelector(`[data-key="m:${S.focusMsg.id}"]`);
    const f = S.focusMsg;
    S.focusMsg = null;
    if (el) {
      pinned = false;
      el.scrollIntoView({ block: 'center' });
      el.focus({ preventScroll: true });
      // the message stays highlighted for a few seconds
      const flash = S.flash = { room: f.room, id: f.id };
      setTimeout(() => { if (S.flash === flash) { S.flash = null; render(); } }, FLASH_MS);
    }
  } else if (wasBottom) {
    log.scrollTop = log.scrollHeight;
  } else if (anchor) {
    const el = box.querySelector(`[data-key="${CSS.escape(anchor.key)}"]`);
    if (el) log.scrollTop = el.offsetTop - anchor.off;
  }
  const jump = $('jump-btn');
  const jumpText = r.view ? 'Jump to latest messages' : 'New messages below';
  if (jump.textContent !== jumpText) jump.textContent = jumpText;
  jump.hidden = !r.view && (pinned || !r.loaded || !(added > 0 || !jump.hidden) || atBottom());
  if (r.loaded && r.hasMore && !r.olderLoading && log.scrollHeight <= log.clientHeight + 200) loadOlder(r);
  if (r.view && log.scrollHeight - log.scrollTop - log.clientHeight < 400) loadViewPage(r, 'after');
  if (r.loaded) scheduleRead();
}

/** In a re-built message, the control matching the one that had the focus. */
function sameControl(el, old) {
  const act = old.dataset && old.dataset.act;
  if (!act) return null;
  const emoji = old.dataset.emoji;
  return el.querySelector(`[data-act="${CSS.escape(act)}"]` + (emoji ? `[data-emoji="${CSS.escape(emoji)}"]` : ''));
}

function renderTyping() {
  const r = S.rooms.get(S.current);
  const el = $('typing');
  const now = Date.now();
  const who = r ? [...r.typing].filter(([, exp]) => exp > now).map(([u]) => u).sort() : [];
  const txt = who.length === 0 ? '' : who.length === 1 ? `${who[0]} is typing…`
    : who.length === 2 ? `${who[0]} and ${who[1]} are typing…` : 'Several people are typing…';
  if (el.textContent !== txt) el.textContent = txt;
}

function renderComposerState() {
  const ok = !!S.current && S.rooms.has(S.current);
  const ta = $('composer-input');
  ta.disabled = !ok;
  // uploads in progress hold the message back (docs/web.md, "Files")
  $('send-btn').disabled = !ok || (!S.editing && attachState(S.current).uploading > 0);
  renderTray();
  const conn = S.sock && S.sock.connected;
  ta.placeholder = !ok ? 'Join a room to write' : conn ? `Message ${S.current.startsWith('dm:') ? roomLabel(S.current) : '#' + S.current}` : 'Offline — messages can’t be sent right now';
}

// ------------------------------------------------------------- wiring

/** The rooms drawer on phone-sized screens. */
function setDrawer(open) {
  document.body.classList.toggle('rooms-open', open);
  $('rooms-toggle').setAttribute('aria-expanded', String(open));
}

function isNarrow() { return matchMedia('(max-width: 720px)').matches; }

function autosize() {
  const ta = $('composer-input');
  ta.classList.toggle('multi', ta.value.includes('\n') || ta.scrollHeight > 48);
}

function submitComposer() {
  const ta = $('composer-input');
  const text = ta.value;
  const err = $('composer-error');
  const att = S.editing ? null : attachState(S.current);
  if (att && att.uploading) { err.textContent = 'Wait for the uploads to finish, or cancel them.'; return; }
  if (att && att.failed) { err.textContent = 'Retry or remove the attachment that failed.'; return; }
  if (!text.trim() && !(att && att.ready)) return;
  if (codePoints(text) > S.maxTextChars) {
    err.textContent = `Messages can be at most ${S.maxTextChars} characters (this one has ${codePoints(text)}).`;
    return;
  }
  err.textContent = '';
  if (S.editing) { saveEdit(text); return; }
  ta.value = '';
  autosize();
  sendText(text);
}

function wireChat() {
  $('logout-btn').addEventListener('click', logout);
  $('join-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (await joinRoom($('join-input').value)) $('join-input').value = '';
  });
  $('dm-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (await startDm($('dm-input').value)) $('dm-input').value = '';
  });
  $('leave-btn').addEventListener('click', () => { if (S.current) leaveRoom(S.current); });
  $('browse-btn').addEventListener('click', toggleBrowse);
  // on a phone, a tap beside the open rooms drawer closes it
  $('room-view').addEventListener('click', () => { if (document.body.classList.contains('rooms-open')) setDrawer(false); });
  $('rooms-toggle').addEventListener('click', () => {
    const open = !document.body.classList.contains('rooms-open');
    setDrawer(open);
    if (open) $('join-input').focus();
  });

  const ta = $('composer-input');
  $('composer').addEventListener('submit', (ev) => { ev.preventDefault(); submitComposer(); ta.focus(); });
  ta.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submitComposer();
    } else if (ev.key === 'Escape' && S.editing) {
      ev.preventDefault();
      cancelEdit();
    } else if (ev.key === 'Escape' && S.replyTo) {
      ev.preventDefault();
      cancelReply();
    } else if (ev.key === 'ArrowUp' && !ta.value && !S.editing) {
      // edit my last message, as in other chat apps
      const r = S.rooms.get(S.current);
      if (!r) return;
      const mine = [...r.msgs.values()].filter((m) => m.user === S.me && !m.deleted).sort((a, b) => b.id - a.id)[0];
      if (mine) { ev.preventDefault(); startEdit(r.name, mine.id); }
    }
  });
  ta.addEventListener('input', () => { autosize(); if (ta.value) noteTyping(); });
  $('edit-cancel').addEventListener('click', () => { cancelEdit(); ta.focus(); });
  $('reply-cancel').addEventListener('click', () => { cancelReply(); ta.focus(); });
  initMentions(ta, () => {
    const r = S.rooms.get(S.current);
    return r && r.members ? [...r.members].filter((u) => u !== S.me) : [];
  });

  // message actions (event delegation)
  $('log-items').addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    const art = btn.closest('article');
    const act = btn.dataset.act;
    if (act === 'retry') retrySend(art.dataset.cid);
    else if (act === 'discard') discardPending(art.dataset.cid);
    else if (act === 'edit') startEdit(S.current, Number(art.dataset.id));
    else if (act === 'delete') deleteMessage(S.current, Number(art.dataset.id));
    else if (act === 'reply') startReply(S.current, Number(art.dataset.id));
    else if (act === 'open-reply') openRoom(S.current, { focusId: Number(btn.dataset.reply) });
    else if (act === 'react') react(S.current, Number(art.dataset.id), btn.dataset.emoji, btn.getAttribute('aria-pressed') !== 'true');
    else if (act === 'add-reaction') {
      const room = S.current, id = Number(art.dataset.id);
      // picking an emoji adds it (one I gave already stays: a no-op on the server)
      openPicker(btn, (emoji) => react(room, id, emoji, true));
    }
  });

  const log = $('log');
  log.addEventListener('scroll', () => {
    const bottom = atBottom();
    if (bottom !== pinned) { pinned = bottom; if (pinned) $('jump-btn').hidden = true; }
    const r = S.rooms.get(S.current);
    if (r && log.scrollTop < 400) loadOlder(r);
    if (r && r.view && log.scrollHeight - log.scrollTop - log.clientHeight < 400) loadViewPage(r, 'after');
    scheduleRead();
  }, { passive: true });
  new ResizeObserver(() => { if (pinned) log.scrollTop = log.scrollHeight; }).observe(log);
  // images that load grow the messages: stay at the bottom (not in a jump view)
  new ResizeObserver(() => {
    const r = S.rooms.get(S.current);
    if (pinned && r && !r.view) log.scrollTop = log.scrollHeight;
  }).observe($('log-items'));
  $('jump-btn').addEventListener('click', () => {
    const r = S.rooms.get(S.current);
    if (r && r.view) { leaveView(r); $('composer-input').focus(); }
    pinned = true;
    log.scrollTop = log.scrollHeight;
    $('jump-btn').hidden = true;
    scheduleRead();
  });

  $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); runSearch($('search-input').value); });
  $('search-input').addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { closeSearch(); $('search-input').value = ''; } });
  $('search-close').addEventListener('click', () => { closeSearch(); $('search-input').focus(); });
  $('search-results').addEventListener('click', (ev) => {
    const a = ev.target.closest('a.result');
    if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey) return;
    ev.preventDefault();
    openResult(a.dataset.room, Number(a.dataset.id));
  });

  window.addEventListener('hashchange', () => {
    const name = roomFromHash();
    if (!name || !S.sock) return;
    if (S.rooms.has(name)) openRoom(name, { keepHash: true, focusId: msgFromHash() || undefined });
    else if (!name.startsWith('dm:')) joinRoom(name);
  });
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') { render(); scheduleRead(); } });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.body.classList.contains('rooms-open')) setDrawer(false);
  });
}

let browseOpen = false;
async function toggleBrowse() {
  browseOpen = !browseOpen;
  $('browse-btn').setAttribute('aria-expanded', String(browseOpen));
  $('browse-panel').hidden = !browseOpen;
  if (!browseOpen) return;
  const status = $('browse-status');
  const list = $('browse-list');
  status.textContent = 'Loading rooms…';
  list.replaceChildren();
  try {
    const res = await api('GET', '/api/rooms', { token: S.token });
    const rooms = (res.rooms || []).sort((a, b) => b.members - a.members || a.name.localeCompare(b.name));
    status.textContent = rooms.length ? 'Pick a room to open it:' : 'No public rooms yet — create one above.';
    list.replaceChildren(...rooms.map((r) => h('li', null,
      h('button', {
        type: 'button', class: 'browse-room',
        onclick: async () => {
          if (S.rooms.has(r.name)) openRoom(r.name, {});
          else await joinRoom(r.name);
        },
      },
      h('span', { class: 'room-name' }, '#' + r.name),
      h('span', { class: 'muted small' }, ` ${r.members} member${r.members === 1 ? '' : 's'}${S.rooms.has(r.name) ? ' · joined' : ''}`)))));
  } catch (e) {
    status.textContent = e.code === 'unreachable' ? 'Server unreachable.' : 'Could not load rooms: ' + (e.message || e.code);
  }
}

boot();
