// Small helpers shared by the page: DOM building, links, names and times.
// Nothing here ever assigns user-controlled text to innerHTML: text is set
// with textContent / Text nodes only.

/** Create an element: h('button', {class: 'x', type: 'button'}, 'text', child) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'hidden') el.hidden = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) append(el, c);
  return el;
}

function append(el, c) {
  if (c === undefined || c === null || c === false) return;
  if (Array.isArray(c)) { for (const x of c) append(el, x); return; }
  el.append(c instanceof Node ? c : document.createTextNode(String(c)));
}

// http(s) URLs, and bare www. hosts. Trailing punctuation is left outside.
const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?'"\])}>]+$/;

/** Message text → DOM fragment: plain text, URLs as safe links. */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    const trail = url.match(TRAILING);
    // keep a closing paren that balances an opening one inside the URL
    if (trail) {
      let cut = trail[0].length;
      if (trail[0].startsWith(')') && url.includes('(')) cut = trail[0].length - 1;
      if (cut > 0) url = url.slice(0, url.length - cut);
    }
    if (!url) continue;
    const href = /^www\./i.test(url) ? 'https://' + url : url;
    let ok = false;
    try { const u = new URL(href); ok = u.protocol === 'http:' || u.protocol === 'https:'; } catch { ok = false; }
    if (!ok) continue;
    if (m.index > last) frag.append(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.textContent = url;
    frag.append(a);
    last = m.index + url.length;
  }
  if (last < text.length) frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const shortFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const fmtTime = (ts) => timeFmt.format(new Date(ts));
export const fmtFull = (ts) => fullFmt.format(new Date(ts));
export const fmtShort = (ts) => shortFmt.format(new Date(ts));

export function dayKey(ts) {
  const d = new Date(ts);
  return d.getFullYear() * 10000 + (d.getMonth() + 1) * 100 + d.getDate();
}

export function dayLabel(ts) {
  const k = dayKey(ts);
  const now = Date.now();
  if (k === dayKey(now)) return 'Today';
  if (k === dayKey(now - 86400000)) return 'Yesterday';
  return dayFmt.format(new Date(ts));
}

export const USER_RE = /^[a-z0-9][a-z0-9_.-]{0,31}$/;
export const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The other user of a DM room `dm:<a>:<b>` as seen by `me`. */
export function dmPeer(room, me) {
  const parts = room.split(':');
  if (parts.length !== 3) return room;
  return parts[1] === me ? parts[2] : parts[1];
}

/** A random id usable as client_msg_id (works outside secure contexts too). */
export function randomId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Number of Unicode code points. */
export const codePoints = (s) => { let n = 0; for (const _ of s) n++; return n; };
