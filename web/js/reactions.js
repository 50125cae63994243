// Reactions: the toggle buttons under a message and the "Reactions"
// picker that the "Add reaction" button opens. The picker is a non-modal
// dialog of emoji buttons (arrow keys move, Escape closes and gives the
// focus back), kept outside the message list so re-rendering a message
// never destroys it.

import { h } from './util.js';

export const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '✅'];

/** The reactions row of a message, or null when it has none. */
export function buildReactions(m, me) {
  const list = Array.isArray(m.reactions) ? m.reactions : [];
  if (!list.length || m.deleted) return null;
  return h('div', { class: 'reactions' }, list.map((x) => {
    const users = Array.isArray(x.users) ? x.users : [];
    const mine = users.includes(me);
    return h('button', {
      type: 'button',
      class: 'reaction' + (mine ? ' mine' : ''),
      'aria-pressed': mine ? 'true' : 'false',
      title: 'Reacted by ' + users.join(', '),
      dataset: { act: 'react', emoji: String(x.emoji) },
    }, h('span', { class: 'emoji' }, String(x.emoji)), ' ', String(x.count));
  }));
}

let picker = null; // {el, opener, key, onPick}

/** Open the picker next to `opener`; onPick(emoji) is called on a choice. */
export function openPicker(opener, onPick) {
  closePicker(false);
  const buttons = EMOJI.map((e) => h('button', { type: 'button', class: 'pick', dataset: { emoji: e } }, e));
  const el = h('div', { class: 'picker', role: 'dialog', 'aria-label': 'Reactions' }, buttons);
  picker = { el, opener, key: opener.closest('article')?.dataset.key, onPick };
  el.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-emoji]');
    if (!b) return;
    const p = picker;
    closePicker(true);
    p.onPick(b.dataset.emoji);
  });
  el.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(document.activeElement);
    let j = -1;
    if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') j = (i + 1) % buttons.length;
    else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') j = (i - 1 + buttons.length) % buttons.length;
    else if (ev.key === 'Home') j = 0;
    else if (ev.key === 'End') j = buttons.length - 1;
    else if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); closePicker(true); return; }
    else if (ev.key === 'Tab') { closePicker(false); return; }
    if (j >= 0) { ev.preventDefault(); buttons[j].focus(); }
  });
  document.body.append(el);
  place(el, opener);
  buttons[0].focus();
  opener.setAttribute('aria-expanded', 'true');
}

/** Close the picker; with refocus, the focus goes back to its opener. */
export function closePicker(refocus) {
  if (!picker) return;
  const { el, key } = picker;
  let { opener } = picker;
  picker = null;
  el.remove();
  opener.setAttribute('aria-expanded', 'false');
  if (!refocus) return;
  // the message may have been re-rendered meanwhile: find its new button
  if (!opener.isConnected && key) {
    opener = document.querySelector(`article[data-key="${CSS.escape(key)}"] [data-act="add-reaction"]`) || opener;
  }
  if (opener.isConnected) opener.focus({ preventScroll: true });
  else document.getElementById('composer-input')?.focus({ preventScroll: true });
}

export const pickerOpen = () => !!picker;

function place(el, opener) {
  const b = opener.getBoundingClientRect();
  const w = el.offsetWidth, ht = el.offsetHeight;
  let top = b.top - ht - 6;
  if (top < 8) top = b.bottom + 6;
  const left = Math.max(8, Math.min(b.right - w, window.innerWidth - w - 8));
  el.style.top = top + 'px';
  el.style.left = left + 'px';
}

// a click anywhere else closes the picker
document.addEventListener('mousedown', (ev) => {
  if (picker && !picker.el.contains(ev.target) && ev.target !== picker.opener) closePicker(false);
}, true);
