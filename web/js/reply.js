// Replies: the short quote of the original above a reply (a button that
// opens the original in its room), the "Replying to USER" banner of the
// composer, and a small cache of originals older than the loaded history.

import { h } from './util.js';
import { snippet } from './format.js';
import { filesText } from './files.js';

/**
 * The quote of the message a reply answers: `orig` is the message, or
 * undefined while it is not known yet. Clicking it opens the original.
 */
export function buildQuote(orig, id) {
  let body;
  if (!orig) body = h('span', { class: 'quote-text muted' }, 'Original message');
  else if (orig.deleted) body = h('span', { class: 'quote-text muted' }, 'Deleted message');
  else body = [h('span', { class: 'quote-user' }, orig.user), ' ', h('span', { class: 'quote-text' }, snippet(orig.text || filesText(orig), 100))];
  return h('button', {
    type: 'button', class: 'reply-quote', title: 'Show the original message',
    dataset: { act: 'open-reply', reply: String(id) },
  }, h('span', { class: 'quote-mark', 'aria-hidden': 'true' }, '↪'), ' ', body);
}

/** What the quote shows, for render keys: changes when the original does. */
export function quoteSig(orig) {
  return !orig ? '?' : orig.deleted ? 'x' : String(orig.seq);
}

/** Show (user) or hide (null) the composer's "Replying to USER" banner. */
export function showReplyBanner(user) {
  const banner = document.getElementById('reply-banner');
  banner.hidden = !user;
  document.getElementById('reply-user').textContent = user ? `Replying to ${user}` : '';
  document.getElementById('composer').classList.toggle('replying', !!user);
}

// originals that are not in a room's cache: "room id" -> message | null
const originals = new Map();
const asked = new Set();

/** A cached original (message, or null if gone), undefined if unknown. */
export function cachedOriginal(room, id) {
  return originals.get(room + ' ' + id);
}

/** Remember a message seen anywhere, so quotes of it stay up to date. */
export function noteOriginal(m) {
  const k = m.room + ' ' + m.id;
  const cur = originals.get(k);
  if (cur !== undefined && (!cur || (cur.seq || 0) < (m.seq || 0))) originals.set(k, m);
}

/**
 * Fetch an original once with a one-message `around` page; done() runs
 * when it is known. `request` is the socket's request function.
 */
export async function fetchOriginal(request, room, id, done) {
  const k = room + ' ' + id;
  if (asked.has(k)) return;
  asked.add(k);
  try {
    const res = await request({ type: 'history', room, around: id, limit: 1 });
    const m = (res.messages || []).find((x) => x.id === id);
    originals.set(k, m || null);
    done();
  } catch {
    asked.delete(k); // try again on a later render
  }
}

/** Forget every cached original (a changed epoch, sign-out). */
export function clearOriginals() {
  originals.clear();
  asked.clear();
}
