// Desktop notifications and the unread favicon.
// Notifications are off until the user clicks "Enable notifications" (the
// permission is asked for only then); a message is notified while the tab
// is hidden when its room's level allows it: "all" every message, "mentions"
// those that mention you (or @room), "none" nothing. See docs/web.md.

import { mentionsMe } from './mention.js';
import { filesText } from './files.js';

const $ = (id) => document.getElementById(id);
const LS_NOTIFY = 'chatd.notify'; // 'on' once the user enabled notifications here
const MAX_AGE_MS = 10 * 60 * 1000; // older messages (a long offline replay) are not notified

let ctx = null; // {S, openRoom, render}
const shown = new Set(); // room:id already notified
let iconCount = -1;
let baseIcon = null;

function supported() { return typeof window.Notification === 'function'; }

/** True when notifications are wanted here and the browser allows them. */
export function notifyEnabled() {
  return supported() && localStorage.getItem(LS_NOTIFY) === 'on' && window.Notification.permission === 'granted';
}

export function initNotify(c) {
  ctx = c;
  const btn = $('notify-btn');
  btn.addEventListener('click', async () => {
    if (notifyEnabled()) {
      localStorage.setItem(LS_NOTIFY, 'off');
    } else {
      localStorage.setItem(LS_NOTIFY, 'on');
      try { await window.Notification.requestPermission(); } catch { /* treated as denied */ }
    }
    renderNotifyButton();
  });
  renderNotifyButton();
}

function renderNotifyButton() {
  const btn = $('notify-btn');
  if (!supported()) { btn.hidden = true; return; }
  const on = notifyEnabled();
  const denied = window.Notification.permission === 'denied' && localStorage.getItem(LS_NOTIFY) === 'on';
  const txt = on ? 'Disable notifications' : 'Enable notifications';
  if (btn.textContent !== txt) btn.textContent = txt;
  btn.setAttribute('aria-pressed', String(on));
  btn.title = denied ? 'Notifications are blocked in this browser’s site settings.' : '';
}

/** Every event, after app.js has handled it: a desktop notification for
 * another user's new message when the room's level allows it. (The
 * mention counts and badges are mention.js's and app.js's.) */
export function notifyEvent(m) {
  if (m.type !== 'message' || m.ref || m.user === ctx.S.me || m.deleted) return;
  const r = ctx.S.rooms.get(m.room);
  if (!r) return;
  maybeNotify(r, m, mentionsMe(m, ctx.S.me));
}

function maybeNotify(r, m, mention) {
  if (!notifyEnabled() || document.visibilityState === 'visible') return;
  if (m.id <= r.read_seq || Date.now() - m.ts > MAX_AGE_MS) return;
  const level = r.notify || 'all';
  if (level === 'none' || (level === 'mentions' && !mention)) return;
  const key = r.name + ':' + m.id;
  if (shown.has(key)) return;
  shown.add(key);
  const title = r.kind === 'dm' ? m.user : `${m.user} in #${r.name}`;
  const text = (typeof m.text === 'string' && m.text) || filesText(m);
  const body = text.length > 200 ? text.slice(0, 200) + '…' : text;
  let n;
  try {
    n = new window.Notification(title, { body, tag: key, icon: 'favicon.svg' });
  } catch {
    return; // e.g. a browser that wants a service worker for notifications
  }
  n.onclick = () => {
    window.focus();
    ctx.openRoom(m.room, { focusId: m.id });
    n.close();
  };
}

/** Forgets what was notified (sign-out). */
export function resetNotify() {
  shown.clear();
  updateFavicon(0);
}

/** The favicon shows the unread count (up to 99, then "99+"). */
export function updateFavicon(total) {
  renderNotifyButton();
  if (total === iconCount) return;
  iconCount = total;
  const link = document.querySelector('link[rel="icon"]');
  if (!link) return;
  if (baseIcon === null) baseIcon = link.getAttribute('href');
  if (!total) { link.setAttribute('href', baseIcon); return; }
  const txt = total > 99 ? '99+' : String(total);
  const size = txt.length > 2 ? 11 : 14;
  // the count is a number, never user text
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    + '<rect width="32" height="32" rx="7" fill="#3d63dd"/>'
    + '<path d="M12 7l-2 18M21 7l-2 18M7 12.5h19M6 19.5h19" stroke="#fff" stroke-width="2.6" stroke-linecap="round"/>'
    + '<circle cx="22" cy="10" r="10" fill="#e0455a"/>'
    + `<text x="22" y="10" dy="0.35em" text-anchor="middle" font-family="sans-serif" font-weight="700" font-size="${size}" fill="#fff">${txt}</text></svg>`;
  link.setAttribute('href', 'data:image/svg+xml,' + encodeURIComponent(svg));
  link.dataset.count = txt;
}
