// Team rooms on the page: the "Create room" dialog, the room head (lock,
// topic, "Edit topic", the "Notifications" level), the "Members" dialog with
// roles, moderation and invitations, and the notice a removed user sees.
// app.js owns the state (S) and calls the hooks exported here; see
// docs/web.md. User text (names, topics) only ever goes in as text nodes.

import { h, ROOM_RE, USER_RE, codePoints } from './util.js';

const $ = (id) => document.getElementById(id);
const TOPIC_MAX = 250;
const RANK = { member: 0, moderator: 1, owner: 2 };
const ROLE_BUTTONS = [['moderator', 'Make moderator'], ['member', 'Make member'], ['owner', 'Make owner']];

let ctx = null;        // {S, render, openRoom, api, isOnline}
const kinds = new Map(); // room -> kind, of every room we have been a member of
let helloSeen = false;
let createDlg = null;
let membersDlg = null;
let topicForm = null;

/** Wires the static controls; ctx gives access to app.js's state. */
export function initRooms(c) {
  ctx = c;
  $('create-btn').addEventListener('click', openCreate);
  $('members-btn').addEventListener('click', openMembers);
  $('topic-btn').addEventListener('click', openTopicEditor);
  $('notify-level').addEventListener('change', (ev) => setLevel(ev.target.value));
  $('room-notice-close').addEventListener('click', () => { $('room-notice').hidden = true; });
}

/** Forgets everything on sign-in and sign-out. */
export function resetRooms() {
  kinds.clear();
  helloSeen = false;
  if (createDlg) createDlg.close();
  if (membersDlg && membersDlg.open) membersDlg.close();
  closeTopicEditor(false);
  $('room-notice').hidden = true;
}

// ------------------------------------------------------------ protocol

/** Room states of `hello`: kind, topic, role, notification level. */
export function roomsHello(hello) {
  for (const st of hello.rooms || []) {
    const r = ctx.S.rooms.get(st.name);
    if (!r) continue;
    kinds.set(st.name, r.kind);
    if (typeof st.topic === 'string') r.topic = st.topic;
    if (st.role) r.role = st.role;
    if (st.notify) r.notify = st.notify;
  }
  helloSeen = true;
}

/** Every event and reply, after app.js has handled it. */
export function roomsEvent(m) {
  const r = m.room ? ctx.S.rooms.get(m.room) : null;
  switch (m.type) {
    case 'joined':
      if (!r) return;
      if (typeof m.topic === 'string') r.topic = m.topic;
      if (m.role) r.role = m.role;
      if (m.roles) r.roles = new Map(Object.entries(m.roles));
      firstMembership(r);
      break;
    case 'room':
      if (r) firstMembership(r);
      break;
    case 'topic':
      if (r) r.topic = m.topic || '';
      break;
    case 'role':
      if (!r) return;
      roles(r).delete(m.user);
      if (m.role !== 'member') roles(r).set(m.user, m.role);
      if (m.user === ctx.S.me) r.role = m.role;
      if (m.ref) say(`${m.user} is now ${article(m.role)}.`);
      break;
    case 'notify':
      if (r) r.notify = m.level;
      break;
    case 'member':
      if (!r) return;
      roles(r).delete(m.user); // joining again makes one a plain member
      if (m.event === 'kick' && r.members) r.members.delete(m.user);
      break;
    case 'kicked':
      if (!r) return;
      if (r.members) r.members.delete(m.user);
      roles(r).delete(m.user);
      if (m.ban) banned(r).add(m.user);
      say(m.ban ? `Banned ${m.user}.` : `Removed ${m.user}.`);
      break;
    case 'invited':
      if (!r) return;
      if (r.members) r.members.add(m.user);
      banned(r).delete(m.user);
      break;
    case 'unbanned':
      if (r) banned(r).delete(m.user);
      say(`Unbanned ${m.user}.`);
      break;
    case 'left':
      if (m.by) removedBy(m.room, m.by);
      kinds.delete(m.room);
      if (topicForm && topicForm.dataset.room === m.room) closeTopicEditor(false);
      break;
    default:
      return;
  }
  ctx.render();
}

function roles(r) { if (!r.roles) r.roles = new Map(); return r.roles; }
function banned(r) { if (!r.banned) r.banned = new Set(); return r.banned; }
function article(role) { return role === 'owner' ? 'an owner' : 'a ' + role; }

function roleOf(r, user) {
  if (user === ctx.S.me && r.role) return r.role;
  return (r.roles && r.roles.get(user)) || 'member';
}

/** What the viewer's role allows (PROTOCOL.md's role table, mirrored). */
export function may(r, action, target) {
  if (!r || r.kind === 'dm') return false;
  const v = RANK[r.role] ?? 0;
  const self = target === ctx.S.me;
  switch (action) {
    case 'kick': {
      const t = roleOf(r, target);
      if (self || t === 'owner') return false;
      return t === 'moderator' ? v >= RANK.owner : v >= RANK.moderator;
    }
    case 'role': return v >= RANK.owner;
    case 'topic': case 'unban': return v >= RANK.moderator;
    default: return true; // invite, notify, leave
  }
}

/**
 * A room this page did not know we were in: new rooms notify about
 * mentions only (the page's default: DMs and mentions), so set that level.
 */
function firstMembership(r) {
  if (kinds.has(r.name)) { kinds.set(r.name, r.kind); return; }
  kinds.set(r.name, r.kind);
  if (!helloSeen || r.kind === 'dm' || r.notify === 'mentions') return;
  r.notify = 'mentions';
  request({ type: 'notify', room: r.name, level: 'mentions' }).catch(() => {});
}

function request(obj) {
  const s = ctx.S.sock;
  if (!s || !s.connected) return Promise.reject(Object.assign(new Error('offline'), { code: 'disconnected' }));
  return s.request(obj);
}

/** Kicked or banned: say who did it. A ban shows in a public room's history. */
async function removedBy(room, by) {
  const kind = kinds.get(room);
  const label = '#' + room;
  showNotice(`${by} removed you from ${label}.`);
  if (kind === 'private') return;
  try {
    await request({ type: 'history', room, limit: 1 });
  } catch (e) {
    if (e.code === 'forbidden' && $('room-notice-text').textContent.startsWith(`${by} removed you from ${label}`)) {
      showNotice(`${by} removed you from ${label} and banned you.`);
    }
  }
}

function showNotice(text) {
  $('room-notice-text').textContent = text;
  $('room-notice').hidden = false;
}

const LEVEL_TEXT = { all: 'All messages', mentions: 'Mentions', none: 'Nothing' };

async function setLevel(level) {
  const r = ctx.S.rooms.get(ctx.S.current);
  if (!r || !LEVEL_TEXT[level]) return;
  const before = r.notify || 'all';
  r.notify = level;
  try {
    await request({ type: 'notify', room: r.name, level });
  } catch (e) {
    r.notify = before;
    showNotice(`Could not change the notifications of #${r.name}: ${e.message || e.code}.`);
  }
  ctx.render();
}

// ---------------------------------------------------------- rendering

/** The room head's team-room parts, and the Members dialog when open. */
export function roomsRender() {
  const S = ctx.S;
  const r = S.rooms.get(S.current);
  const team = !!r && r.kind !== 'dm';
  $('room-lock').hidden = !r || r.kind !== 'private';
  const topic = team && r.topic ? r.topic : '';
  const tp = $('room-topic');
  if (tp.textContent !== topic) tp.textContent = topic;
  tp.hidden = !topic;
  $('room-tools').hidden = !r;
  $('members-btn').hidden = !team;
  $('topic-btn').hidden = !team || !may(r, 'topic');
  const sel = $('notify-level');
  if (r && document.activeElement !== sel) sel.value = r.notify || 'all';
  if (topicForm && (!r || topicForm.dataset.room !== r.name || !may(r, 'topic'))) closeTopicEditor(false);
  if (membersDlg && membersDlg.open) {
    if (!team) membersDlg.close();
    else {
      if (membersDlg.dataset.room !== r.name) showMembersOf(r); // follows the open room
      renderMembers(r);
    }
  }
}

/** Sidebar entry extras: a lock for private rooms (the "N mentions"
 * badge is mention.js's). */
export function decorateRoomLink(a, r) {
  let lock = a.querySelector('.lock');
  if (r.kind === 'private' && !lock) {
    lock = h('span', { class: 'lock', role: 'img', 'aria-label': 'private', title: 'Private room' });
    a.querySelector('.room-name').after(lock);
  } else if (r.kind !== 'private' && lock) lock.remove();
}

// ------------------------------------------------------- create dialog

function openCreate() {
  if (createDlg) { createDlg.showModal(); return; }
  const err = h('p', { class: 'form-error', role: 'alert' });
  const name = h('input', { id: 'create-name', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: '64', placeholder: 'e.g. design' });
  const priv = h('input', { id: 'create-private', type: 'checkbox' });
  const topic = h('input', { id: 'create-topic', autocomplete: 'off', placeholder: 'What is this room about? (optional)' });
  const form = h('form', { class: 'dialog-form' },
    h('h2', { id: 'create-title' }, 'Create room'),
    h('label', { for: 'create-name' }, 'Room name'), name,
    h('div', { class: 'check' }, priv, h('label', { for: 'create-private' }, 'Private'),
      h('span', { class: 'muted small' }, ' — only people you invite can see it')),
    h('label', { for: 'create-topic' }, 'Topic'), topic,
    err,
    h('div', { class: 'dialog-buttons' },
      h('button', { type: 'submit', class: 'primary' }, 'Create'),
      h('button', { type: 'button', onclick: () => createDlg.close() }, 'Cancel')));
  createDlg = h('dialog', { class: 'modal', 'aria-labelledby': 'create-title' }, form);
  let busy = false;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (busy) return;
    const room = name.value.trim().replace(/^#/, '').toLowerCase();
    const t = topic.value.trim();
    err.textContent = '';
    if (!room) { err.textContent = 'Type a room name.'; name.focus(); return; }
    if (room.startsWith('dm:') || !ROOM_RE.test(room)) {
      err.textContent = 'Room names are 1–64 characters: letters, digits, “_” or “-”, starting with a letter or digit.';
      name.focus();
      return;
    }
    if (codePoints(t) > TOPIC_MAX) { err.textContent = `Topics can be at most ${TOPIC_MAX} characters.`; topic.focus(); return; }
    busy = true;
    try {
      const req = { type: 'create', room, kind: priv.checked ? 'private' : 'public' };
      if (t) req.topic = t;
      const res = await request(req);
      createDlg.close();
      ctx.openRoom(res.room, {});
    } catch (e) {
      err.textContent = e.code === 'room_exists' ? `A room named “${room}” already exists. Pick another name or join it.`
        : e.code === 'invalid_room' ? 'That is not a valid room name.'
          : e.code === 'too_long' ? `Topics can be at most ${TOPIC_MAX} characters.`
            : e.code === 'disconnected' || e.code === 'timeout' ? 'Not connected — try again when the connection is back.'
              : e.message || e.code;
    } finally {
      busy = false;
    }
  });
  // the sidebar's join form has a "Room name" too: that field leaves the
  // page while the dialog is open,
  // and, as the dialog is modal, the rest of the page is hidden from
  // assistive technology (names such as "Create" stay unambiguous)
  createDlg.addEventListener('close', () => {
    createDlg.remove();
    createDlg = null;
    joinSlot.replaceWith(...joinField);
    $('chat-view').removeAttribute('aria-hidden');
    $('create-btn').focus();
  });
  closeTopicEditor(false);
  if (membersDlg && membersDlg.open) membersDlg.close();
  const joinField = [$('join-form').querySelector('label'), $('join-input').parentNode];
  const joinSlot = document.createComment('join field');
  joinField[0].replaceWith(joinSlot); // back on close
  joinField[1].remove();
  $('chat-view').setAttribute('aria-hidden', 'true');
  document.body.append(createDlg);
  createDlg.showModal();
  name.focus();
}

// ------------------------------------------------------- topic editor

function openTopicEditor() {
  const r = ctx.S.rooms.get(ctx.S.current);
  if (!r || !may(r, 'topic')) return;
  if (topicForm) { topicForm.querySelector('input').focus(); return; }
  const err = h('p', { class: 'form-error', role: 'alert' });
  const input = h('input', { id: 'topic-input', autocomplete: 'off', placeholder: 'No topic' });
  input.value = r.topic || '';
  topicForm = h('form', { class: 'topic-form', dataset: { room: r.name } },
    h('label', { for: 'topic-input' }, 'Topic'),
    h('div', { class: 'row' }, input,
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
      h('button', { type: 'button', onclick: () => closeTopicEditor(true) }, 'Cancel')),
    err);
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { ev.preventDefault(); closeTopicEditor(true); } });
  topicForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (codePoints(t) > TOPIC_MAX) { err.textContent = `Topics can be at most ${TOPIC_MAX} characters.`; return; }
    err.textContent = '';
    try {
      await request({ type: 'topic', room: r.name, topic: t });
      closeTopicEditor(true);
    } catch (e) {
      err.textContent = e.code === 'forbidden' ? 'Only moderators can change the topic.'
        : e.code === 'too_long' ? `Topics can be at most ${TOPIC_MAX} characters.` : 'Could not save the topic: ' + (e.message || e.code);
    }
  });
  $('topic-btn').setAttribute('aria-expanded', 'true');
  $('topic-slot').append(topicForm);
  input.focus();
  input.select();
}

function closeTopicEditor(refocus) {
  if (!topicForm) return;
  topicForm.remove();
  topicForm = null;
  $('topic-btn').setAttribute('aria-expanded', 'false');
  if (refocus && !$('topic-btn').hidden) $('topic-btn').focus();
}

// ------------------------------------------------------- members dialog

function openMembers() {
  const r = ctx.S.rooms.get(ctx.S.current);
  if (!r || r.kind === 'dm') return;
  if (!membersDlg) buildMembersDialog();
  if (membersDlg.open) { $('invite-input').focus(); return; }
  showMembersOf(r);
  renderMembers(r);
  $('member-list').hidden = true; // one list named "Members" at a time
  $('members-btn').setAttribute('aria-expanded', 'true');
  membersDlg.show(); // a side panel: the chat stays usable beside it
  document.body.classList.add('members-open');
  $('invite-input').focus();
}

function showMembersOf(r) {
  membersDlg.dataset.room = r.name;
  $('members-room').textContent = '#' + r.name;
  $('members-status').textContent = '';
  $('invite-error').textContent = '';
  $('invite-input').value = '';
  closeSuggestions();
  delete $('members-full').dataset.sig;
}

function buildMembersDialog() {
  const input = h('input', {
    id: 'invite-input', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: '32',
    placeholder: 'username', 'aria-autocomplete': 'list', 'aria-controls': 'invite-options',
  });
  const form = h('form', { id: 'invite-form', class: 'invite-form' },
    h('label', { for: 'invite-input' }, 'Invite user'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit' }, 'Invite')),
    h('ul', { id: 'invite-options', class: 'suggestions', role: 'listbox', 'aria-label': 'Users', hidden: true }),
    h('p', { id: 'invite-error', class: 'form-error', role: 'alert' }));
  membersDlg = h('dialog', { id: 'members-dialog', class: 'modal members-dialog', 'aria-labelledby': 'members-title' },
    h('div', { class: 'dialog-head' },
      h('h2', { id: 'members-title' }, 'Members'),
      h('span', { id: 'members-room', class: 'muted' }),
      h('button', { type: 'button', class: 'close-btn', onclick: () => membersDlg.close() }, 'Close')),
    h('ul', { id: 'members-full', class: 'member-rows', 'aria-label': 'Members' }),
    h('div', { id: 'banned-box', hidden: true },
      h('h3', { id: 'banned-title', class: 'small' }, 'Banned here'),
      h('ul', { id: 'banned-list', class: 'member-rows', 'aria-labelledby': 'banned-title' })),
    h('p', { id: 'members-status', class: 'muted small', 'aria-live': 'polite' }),
    form);
  document.body.append(membersDlg);
  membersDlg.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !ev.defaultPrevented) { ev.preventDefault(); membersDlg.close(); }
  });
  membersDlg.addEventListener('close', () => {
    document.body.classList.remove('members-open');
    $('member-list').hidden = false;
    $('members-btn').setAttribute('aria-expanded', 'false');
    closeSuggestions();
    const a = document.activeElement;
    if ((a === document.body || !a || membersDlg.contains(a)) && !$('members-btn').closest('[hidden]')) $('members-btn').focus();
  });
  $('members-full').addEventListener('click', onMemberAction);
  $('banned-list').addEventListener('click', onUnban);
  form.addEventListener('submit', (ev) => { ev.preventDefault(); invite(); });
  input.addEventListener('input', () => suggest(input.value));
  input.addEventListener('keydown', onSuggestKey);
  input.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== input) closeSuggestions(); }, 150));
  $('invite-options').addEventListener('mousedown', (ev) => ev.preventDefault()); // keep focus in the box
  $('invite-options').addEventListener('click', (ev) => {
    const li = ev.target.closest('[role="option"]');
    if (li) pick(li.dataset.user);
  });
}

/** Users banned from this page this session (chatd has no list of bans). */
function renderBanned(r) {
  const names = may(r, 'unban') ? [...(r.banned || [])].filter((n) => !(r.members && r.members.has(n))).sort() : [];
  const ul = $('banned-list');
  const sig = names.join(',');
  $('banned-box').hidden = !names.length;
  if (ul.dataset.sig === sig) return;
  ul.dataset.sig = sig;
  ul.replaceChildren(...names.map((n) => h('li', { class: 'member-row', dataset: { user: n } },
    h('span', { class: 'member-name' }, n),
    h('span', { class: 'member-actions' }, h('button', { type: 'button', dataset: { act: 'unban' } }, 'Unban')))));
}

async function onUnban(ev) {
  const btn = ev.target.closest('button[data-act="unban"]');
  const r = btn && ctx.S.rooms.get(membersDlg.dataset.room);
  if (!r) return;
  const user = btn.closest('li').dataset.user;
  try {
    await request({ type: 'unban', room: r.name, user });
  } catch (e) {
    say('That did not work: ' + (e.message || e.code));
  }
}

function renderMembers(r) {
  renderBanned(r);
  const ul = $('members-full');
  const names = [...(r.members || [])].sort((a, b) => RANK[roleOf(r, b)] - RANK[roleOf(r, a)] || a.localeCompare(b));
  const sig = [r.role, ...names.map((n) => `${n}:${roleOf(r, n)}:${ctx.isOnline(n) ? 1 : 0}`)].join(',');
  if (ul.dataset.sig === sig) return;
  ul.dataset.sig = sig;
  // keep the focus on the same control (or at least the same member)
  const act = document.activeElement;
  const keep = ul.contains(act) ? { user: act.closest('li')?.dataset.user, act: act.dataset.act, role: act.dataset.role } : null;
  ul.replaceChildren(...names.map((n) => memberRow(r, n)));
  if (keep && keep.user) {
    const li = ul.querySelector(`li[data-user="${CSS.escape(keep.user)}"]`);
    const btn = li && (li.querySelector(`button[data-act="${keep.act}"]${keep.role ? `[data-role="${keep.role}"]` : ''}`) || li.querySelector('button'));
    if (btn) btn.focus();
    else if (li) li.focus();
    else ul.focus();
  }
}

function memberRow(r, n) {
  const role = roleOf(r, n);
  const online = ctx.isOnline(n);
  const buttons = [];
  if (may(r, 'role', n)) {
    for (const [want, label] of ROLE_BUTTONS) {
      if (want !== role) buttons.push(h('button', { type: 'button', dataset: { act: 'role', role: want } }, label));
    }
  }
  if (may(r, 'kick', n)) {
    buttons.push(h('button', { type: 'button', dataset: { act: 'kick' } }, 'Kick'));
    buttons.push(h('button', { type: 'button', class: 'danger', dataset: { act: 'ban' } }, 'Ban'));
  }
  return h('li', { class: 'member-row' + (online ? ' online' : ''), tabindex: '-1', dataset: { user: n } },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    h('span', { class: 'member-name' }, n),
    n === ctx.S.me ? h('span', { class: 'muted' }, ' (you)') : null,
    role !== 'member' ? [' ', h('span', { class: 'role-tag' }, role)] : null,
    h('span', { class: 'sr-only' }, online ? ', online' : ', offline'),
    buttons.length ? h('span', { class: 'member-actions' }, buttons) : null);
}

async function onMemberAction(ev) {
  const btn = ev.target.closest('button[data-act]');
  if (!btn) return;
  const r = ctx.S.rooms.get(membersDlg.dataset.room);
  const user = btn.closest('li').dataset.user;
  if (!r) return;
  const act = btn.dataset.act;
  const req = act === 'role' ? { type: 'role', room: r.name, user, role: btn.dataset.role }
    : { type: 'kick', room: r.name, user, ban: act === 'ban' };
  try {
    await request(req);
  } catch (e) {
    say(e.code === 'forbidden' ? 'Your role does not allow that.'
      : e.code === 'not_member' ? `${user} is no longer a member.` : 'That did not work: ' + (e.message || e.code));
  }
}

function say(text) {
  if (membersDlg && membersDlg.open) $('members-status').textContent = text;
}

// ---------------------------------------------------- invite completion

let suggestGen = 0;
let suggestTimer = null;
let active = -1;

function suggest(prefix) {
  clearTimeout(suggestTimer);
  prefix = prefix.trim().replace(/^@/, '').toLowerCase();
  if (!prefix || !/^[a-z0-9_.-]+$/.test(prefix)) { closeSuggestions(); return; }
  const gen = ++suggestGen;
  suggestTimer = setTimeout(async () => {
    let users = [];
    try {
      const res = await ctx.api('GET', '/api/users?q=' + encodeURIComponent(prefix) + '&limit=10', { token: ctx.S.token });
      users = res.users || [];
    } catch { users = []; }
    if (gen !== suggestGen || !membersDlg || !membersDlg.open) return;
    const r = ctx.S.rooms.get(membersDlg.dataset.room);
    users = users.filter((u) => !(r && r.members && r.members.has(u.username)));
    showSuggestions(users);
  }, 120);
}

function showSuggestions(users) {
  const ul = $('invite-options');
  active = -1;
  $('invite-input').removeAttribute('aria-activedescendant');
  if (!users.length) { closeSuggestions(); return; }
  ul.replaceChildren(...users.map((u, i) => h('li', {
    id: 'invite-opt-' + i, role: 'option', 'aria-selected': 'false', dataset: { user: u.username }, class: u.online ? 'online' : '',
  }, h('span', { class: 'dot', 'aria-hidden': 'true' }), u.username)));
  ul.hidden = false;
}

function closeSuggestions() {
  suggestGen++;
  clearTimeout(suggestTimer);
  const ul = $('invite-options');
  if (!ul) return;
  ul.hidden = true;
  ul.replaceChildren();
  active = -1;
  $('invite-input').removeAttribute('aria-activedescendant');
}

function onSuggestKey(ev) {
  const ul = $('invite-options');
  const opts = [...ul.children];
  if (ev.key === 'Escape' && !ul.hidden) { ev.preventDefault(); ev.stopPropagation(); closeSuggestions(); return; }
  if (ul.hidden || !opts.length) return;
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    ev.preventDefault();
    active = ev.key === 'ArrowDown' ? (active + 1) % opts.length : (active <= 0 ? opts.length - 1 : active - 1);
    opts.forEach((o, i) => o.setAttribute('aria-selected', String(i === active)));
    $('invite-input').setAttribute('aria-activedescendant', opts[active].id);
    opts[active].scrollIntoView({ block: 'nearest' });
  } else if ((ev.key === 'Enter' || ev.key === 'Tab') && active >= 0) {
    ev.preventDefault();
    pick(opts[active].dataset.user);
  }
}

function pick(user) {
  $('invite-input').value = user;
  closeSuggestions();
  $('invite-input').focus();
}

async function invite() {
  const r = ctx.S.rooms.get(membersDlg.dataset.room);
  const input = $('invite-input');
  const err = $('invite-error');
  const user = input.value.trim().replace(/^@/, '').toLowerCase();
  err.textContent = '';
  closeSuggestions();
  if (!r) return;
  if (!USER_RE.test(user)) { err.textContent = 'Type a valid username.'; return; }
  try {
    await request({ type: 'invite', room: r.name, user });
    input.value = '';
    say(`Invited ${user}.`);
  } catch (e) {
    err.textContent = e.code === 'not_found' ? `There is no user named “${user}”.`
      : e.code === 'forbidden' ? `${user} is banned from this room; a moderator can invite them back.`
        : 'Could not invite: ' + (e.message || e.code);
  }
}
