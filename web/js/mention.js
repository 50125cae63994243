// @-completion in the composer and the sidebar's mention badges.
//
// Typing `@` (where a mention may start, by PROTOCOL.md's rule) opens the
// listbox "Mention" of the room's members whose name starts with what
// follows. The composer stays a textbox (tests and assistive technology
// find it as "Message"); it carries aria-autocomplete="list",
// aria-controls, aria-expanded and aria-activedescendant, the listbox
// options aria-selected. ArrowDown/ArrowUp move, Enter or Tab pick,
// Escape closes; a click picks too.

import { h } from './util.js';

const BEFORE = /(^|[^a-z0-9_.-])@([a-z0-9_.-]*)$/i;
const MAX = 8;

let ta = null;
let list = null;
let getMembers = () => [];
let state = null; // {start, query, items, active} while open

/**
 * Attach completion to the composer textarea. members() returns the open
 * room's members (usernames) to offer.
 */
export function initMentions(textarea, members) {
  ta = textarea;
  getMembers = members;
  list = h('ul', { id: 'mention-list', class: 'mention-list', role: 'listbox', 'aria-label': 'Mention', hidden: true });
  ta.form.append(list);
  ta.setAttribute('aria-autocomplete', 'list');
  ta.setAttribute('aria-haspopup', 'listbox');
  ta.setAttribute('aria-controls', 'mention-list');
  ta.setAttribute('aria-expanded', 'false');
  ta.addEventListener('input', update);
  ta.addEventListener('click', update);
  ta.addEventListener('blur', () => close());
  ta.addEventListener('keyup', (ev) => {
    if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight' || ev.key === 'Home' || ev.key === 'End') update();
  });
  // capture on the form: runs before the composer's own keys (Enter sends,
  // Escape cancels an edit) and keeps them from seeing what we handle
  ta.form.addEventListener('keydown', onKey, true);
  list.addEventListener('mousedown', (ev) => {
    const li = ev.target.closest('[role="option"]');
    if (!li) return;
    ev.preventDefault(); // keep the focus in the composer
    pick(Number(li.dataset.i));
  });
}

/** True while the listbox is open. */
export const mentionOpen = () => !!state;

/** Close the listbox (after a send, a room switch...). */
export function close() {
  if (!state) return;
  state = null;
  list.hidden = true;
  list.replaceChildren();
  ta.setAttribute('aria-expanded', 'false');
  ta.removeAttribute('aria-activedescendant');
}

function update() {
  if (ta.selectionStart !== ta.selectionEnd) return close();
  const before = ta.value.slice(0, ta.selectionStart);
  const m = before.match(BEFORE);
  if (!m) return close();
  const query = m[2].toLowerCase();
  const items = [...new Set(getMembers())]
    .filter((u) => u.startsWith(query))
    .sort((a, b) => a.localeCompare(b))
    .slice(0, MAX);
  // nothing left to complete (the name is typed in full): Enter sends
  if (!items.length || (items.length === 1 && items[0] === query)) return close();
  const prev = state && state.items[state.active];
  const active = Math.max(0, items.indexOf(prev));
  state = { start: ta.selectionStart - m[2].length - 1, query, items, active };
  draw();
}

function draw() {
  list.replaceChildren(...state.items.map((u, i) => h('li', {
    id: 'mention-opt-' + i, role: 'option', class: 'mention-opt',
    'aria-selected': i === state.active ? 'true' : 'false',
    dataset: { i: String(i) },
  }, u)));
  list.hidden = false;
  ta.setAttribute('aria-expanded', 'true');
  ta.setAttribute('aria-activedescendant', 'mention-opt-' + state.active);
  list.children[state.active].scrollIntoView({ block: 'nearest' });
}

function onKey(ev) {
  if (!state || ev.target !== ta || ev.isComposing) return;
  const n = state.items.length;
  if (ev.key === 'ArrowDown') state.active = (state.active + 1) % n;
  else if (ev.key === 'ArrowUp') state.active = (state.active - 1 + n) % n;
  else if (ev.key === 'Home' && ev.ctrlKey) state.active = 0;
  else if ((ev.key === 'Enter' && !ev.shiftKey) || (ev.key === 'Tab' && !ev.shiftKey)) {
    ev.preventDefault();
    ev.stopPropagation();
    pick(state.active);
    return;
  } else if (ev.key === 'Escape') {
    ev.preventDefault();
    ev.stopPropagation();
    close();
    return;
  } else return;
  ev.preventDefault();
  ev.stopPropagation();
  draw();
}

/** Replace the typed `@query` with the picked name and a space. */
function pick(i) {
  if (!state) return;
  const name = state.items[i];
  const { start } = state;
  const end = ta.selectionStart;
  close();
  const after = ta.value.slice(end);
  const insert = '@' + name + (after.startsWith(' ') ? '' : ' ');
  ta.setRangeText(insert, start, end, 'end');
  if (after.startsWith(' ')) ta.setSelectionRange(start + insert.length + 1, start + insert.length + 1);
  ta.dispatchEvent(new Event('input', { bubbles: true }));
  ta.focus();
}

/** Does message m mention `me` (by name or @room)? */
export function mentionsMe(m, me) {
  if (!m || m.deleted || m.user === me) return false;
  return !!m.mention_room || (Array.isArray(m.mentions) && m.mentions.includes(me));
}

/**
 * Show n in the mention badge of a sidebar link (created on first use),
 * whose accessible name is "N mentions".
 */
export function setMentionBadge(a, n) {
  let b = a.querySelector('.mention-badge');
  if (!b) {
    if (n <= 0) return;
    b = h('span', { class: 'badge mention-badge', hidden: true });
    a.append(' ', b);
  }
  if (n > 0) {
    // always "N mentions" (the name the tests and issue 14 give), "1 mentions" too
    const txt = n > 99 ? '99+' : String(n);
    b.hidden = false;
    if (b.dataset.n !== txt) {
      b.dataset.n = txt;
      b.replaceChildren(h('span', { 'aria-hidden': 'true' }, '@'), txt, h('span', { class: 'sr-only' }, ' mentions'));
    }
    b.setAttribute('aria-label', `${n} mentions`);
  } else if (!b.hidden) {
    b.hidden = true;
    b.textContent = '';
    delete b.dataset.n;
    b.removeAttribute('aria-label');
  }
}
