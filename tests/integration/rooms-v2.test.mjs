// Team rooms (PROTOCOL.md version 2, "Rooms, roles and moderation",
// notification levels, GET /api/users): create, private rooms, roles,
// invite, kick and ban, unban, role, topic, notify, moderator deletes,
// and the ban on every read path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	useChatd, newUser, wsAuth, join, send, api, uniq,
} from './lib/chatd.mjs';

/** A server and n signed-in users, each with one connection. */
async function setup(t, n) {
	const srv = await useChatd(t);
	const users = [];
	for (let i = 0; i < n; i++) {
		const u = await newUser(srv.url, 'm');
		u.c = await wsAuth(srv.wsUrl, u.token);
		t.after(() => u.c.close());
		users.push(u);
	}
	return { srv, users };
}

/** A request that must fail with code. */
async function fails(c, req, code) {
	const r = await c.request(req);
	assert.equal(r.type, 'error', `${JSON.stringify(req)} -> ${JSON.stringify(r)}`);
	assert.equal(r.code, code, `${JSON.stringify(req)} -> ${JSON.stringify(r)}`);
	return r;
}

test('create: public by default, owner, topic, room event to other connections', async (t) => {
	const { srv, users: [a] } = await setup(t, 1);
	const a2 = await wsAuth(srv.wsUrl, a.token);
	t.after(() => a2.close());
	const room = uniq('r');
	const r = await a.c.request({ type: 'create', room, topic: 'hello there' });
	assert.equal(r.type, 'joined');
	assert.equal(r.kind, 'public');
	assert.equal(r.topic, 'hello there');
	assert.equal(r.role, 'owner');
	assert.deepEqual(r.roles, { [a.name]: 'owner' });
	assert.deepEqual(r.members, [a.name]);
	assert.equal(r.last_seq, 0);
	assert.deepEqual(await a2.next('room'), { type: 'room', room, kind: 'public' });
	await fails(a.c, { type: 'create', room }, 'room_exists');
	await fails(a.c, { type: 'create', room: room.toUpperCase() }, 'room_exists');
	await fails(a.c, { type: 'create', room: 'dm:a:b' }, 'invalid_room');
	await fails(a.c, { type: 'create', room: 'bad name' }, 'invalid_room');
	await fails(a.c, { type: 'create', room: uniq('r'), kind: 'dm' }, 'bad_request');
	await fails(a.c, { type: 'create', room: uniq('r'), kind: 'secret' }, 'bad_request');
	await fails(a.c, { type: 'create', room: uniq('r'), kind: 1 }, 'bad_request');
	await fails(a.c, { type: 'create', room: uniq('r'), topic: 'x'.repeat(251) }, 'too_long');
	const ok = await a.c.request({ type: 'create', room: uniq('r'), topic: 'é'.repeat(250) });
	assert.equal(ok.type, 'joined');
	const list = await api(srv, 'GET', '/api/rooms', { token: a.token });
	const entry = list.json.rooms.find((x) => x.name === room);
	assert.equal(entry.topic, 'hello there');
	const me = await api(srv, 'GET', '/api/me', { token: a.token });
	const st = me.json.rooms.find((x) => x.name === room);
	assert.equal(st.kind, 'public');
	assert.equal(st.topic, 'hello there');
	assert.equal(st.role, 'owner');
	assert.equal(st.notify, 'all');
});

test('join-creating makes the creator owner; leaving gives the role up', async (t) => {
	const { users: [a, b] } = await setup(t, 2);
	const room = uniq('r');
	const j = await join(a.c, room);
	assert.equal(j.role, 'owner');
	assert.equal(j.topic, '');
	const jb = await join(b.c, room);
	assert.equal(jb.role, 'member');
	assert.deepEqual(jb.roles, { [a.name]: 'owner' });
	assert.equal((await a.c.request({ type: 'leave', room })).type, 'left');
	const again = await join(a.c, room);
	assert.equal(again.role, 'member');
	assert.deepEqual(again.roles, {});
});

test('private rooms: invisible and forbidden to non-members', async (t) => {
	const { srv, users: [a, b, c] } = await setup(t, 3);
	const room = uniq('p');
	const r = await a.c.request({ type: 'create', room, kind: 'private' });
	assert.equal(r.kind, 'private');
	await send(a.c, room, 'secret words here');
	const list = await api(srv, 'GET', '/api/rooms', { token: b.token });
	assert.ok(!list.json.rooms.some((x) => x.name === room), 'not listed');
	await fails(b.c, { type: 'join', room }, 'forbidden');
	await fails(b.c, { type: 'history', room }, 'forbidden');
	await fails(b.c, { type: 'send', room, text: 'hi' }, 'forbidden');
	await fails(b.c, { type: 'leave', room }, 'forbidden');
	await fails(b.c, { type: 'read', room, seq: 1 }, 'forbidden');
	assert.equal((await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: b.token })).status, 403);
	const s1 = await api(srv, 'GET', `/api/search?q=secret&room=${room}`, { token: b.token });
	assert.equal(s1.status, 403);
	assert.equal(s1.json.error.code, 'forbidden');
	const s2 = await api(srv, 'GET', '/api/search?q=secret', { token: b.token });
	assert.deepEqual(s2.json.results, []);
	// Any member may invite; the invitee sees the room and its events.
	const inv = await a.c.request({ type: 'invite', room, user: b.name });
	assert.deepEqual(inv, { type: 'invited', room, user: b.name, ref: inv.ref });
	assert.deepEqual(await b.c.next('room'), { type: 'room', room, kind: 'private' });
	await a.c.none('member', 'the requester gets its reply, not the member event');
	const inv2 = await b.c.request({ type: 'invite', room, user: c.name });
	assert.equal(inv2.type, 'invited');
	assert.deepEqual(await a.c.next('member'), { type: 'member', room, user: c.name, event: 'join', by: b.name });
	await c.c.next('room');
	const m = await send(c.c, room, 'from c');
	assert.equal((await a.c.next('message')).id, m.id);
	assert.equal((await b.c.next('message')).id, m.id);
	const me = await api(srv, 'GET', '/api/me', { token: c.token });
	const st = me.json.rooms.find((x) => x.name === room);
	assert.equal(st.kind, 'private');
	assert.equal(st.role, 'member');
	assert.equal(st.read_seq, st.last_seq - 1, 'invite sets read_seq to last_seq');
	assert.equal((await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: c.token })).status, 200);
	// Already a member: the reply, no events.
	assert.equal((await a.c.request({ type: 'invite', room, user: c.name })).type, 'invited');
	await b.c.none('member', 'no member event for a repeated invite');
});

test('invite errors: not_member, not_found, DM forbidden', async (t) => {
	const { users: [a, b] } = await setup(t, 2);
	const room = uniq('r');
	await join(a.c, room);
	await fails(b.c, { type: 'invite', room, user: a.name }, 'not_member');
	await fails(a.c, { type: 'invite', room, user: uniq('nobody') }, 'not_found');
	await fails(a.c, { type: 'invite', room: uniq('r'), user: b.name }, 'no_such_room');
	await fails(a.c, { type: 'invite', room, user: 5 }, 'bad_request');
	const dm = await a.c.request({ type: 'dm', user: b.name });
	for (const req of [
		{ type: 'invite', room: dm.room, user: b.name },
		{ type: 'kick', room: dm.room, user: b.name },
		{ type: 'unban', room: dm.room, user: b.name },
		{ type: 'role', room: dm.room, user: b.name, role: 'owner' },
		{ type: 'topic', room: dm.room, topic: 'x' },
	]) await fails(a.c, req, 'forbidden');
	assert.equal(dm.role, undefined);
	assert.deepEqual(dm.roles, {});
});

test('roles: member, moderator, owner; kick rules; role events', async (t) => {
	const { srv, users: [o, mod, m1, m2] } = await setup(t, 4);
	const o2 = await wsAuth(srv.wsUrl, o.token);
	t.after(() => o2.close());
	const room = uniq('r');
	await join(o.c, room);
	for (const u of [mod, m1, m2]) await join(u.c, room);
	await o.c.fence(); await o2.fence(); await mod.c.fence(); await m1.c.fence();
	// Plain members: no kick, topic, unban, role.
	await fails(m1.c, { type: 'kick', room, user: m2.name }, 'forbidden');
	await fails(m1.c, { type: 'topic', room, topic: 't' }, 'forbidden');
	await fails(m1.c, { type: 'unban', room, user: m2.name }, 'forbidden');
	await fails(m1.c, { type: 'role', room, user: m1.name, role: 'owner' }, 'forbidden');
	await fails(o.c, { type: 'role', room, user: mod.name, role: 'admin' }, 'bad_request');
	await fails(o.c, { type: 'role', room, user: uniq('x'), role: 'member' }, 'not_found');
	const outsider = await newUser(srv.url, 'x');
	await fails(o.c, { type: 'role', room, user: outsider.name, role: 'member' }, 'not_member');
	// The owner makes a moderator: every member's connections get the event.
	const ev = await o.c.request({ type: 'role', room, user: mod.name, role: 'moderator' });
	assert.deepEqual(ev, { type: 'role', room, user: mod.name, role: 'moderator', by: o.name, ref: ev.ref });
	for (const c of [o2, mod.c, m1.c, m2.c]) {
		assert.deepEqual(await c.next('role'), { type: 'role', room, user: mod.name, role: 'moderator', by: o.name });
	}
	// Same role again: reply and event as usual.
	assert.equal((await o.c.request({ type: 'role', room, user: mod.name, role: 'moderator' })).type, 'role');
	await m1.c.next('role');
	// Moderators can't kick moderators or owners, nor give roles.
	await fails(mod.c, { type: 'kick', room, user: o.name }, 'forbidden');
	await fails(mod.c, { type: 'kick', room, user: mod.name }, 'forbidden');
	await fails(mod.c, { type: 'role', room, user: m1.name, role: 'moderator' }, 'forbidden');
	await fails(mod.c, { type: 'kick', room, user: uniq('x') }, 'not_found');
	await fails(mod.c, { type: 'kick', room, user: outsider.name }, 'not_member');
	await fails(mod.c, { type: 'kick', room, user: m1.name, ban: 'yes' }, 'bad_request');
	await fails(o.c, { type: 'kick', room, user: o.name }, 'forbidden');
	// Topic by a moderator.
	const tp = await mod.c.request({ type: 'topic', room, topic: 'new topic' });
	assert.deepEqual(tp, { type: 'topic', room, topic: 'new topic', by: mod.name, ref: tp.ref });
	assert.deepEqual(await o2.next('topic'), { type: 'topic', room, topic: 'new topic', by: mod.name });
	await fails(mod.c, { type: 'topic', room, topic: 'y'.repeat(251) }, 'too_long');
	await fails(mod.c, { type: 'topic', room }, 'bad_request');
	// A moderator kicks a member: left with by to the target, member to the others.
	const k = await mod.c.request({ type: 'kick', room, user: m1.name });
	assert.deepEqual(k, { type: 'kicked', room, user: m1.name, ban: false, ref: k.ref });
	assert.deepEqual(await m1.c.next('left'), { type: 'left', room, by: mod.name });
	assert.deepEqual(await o.c.next('member'), { type: 'member', room, user: m1.name, event: 'kick', by: mod.name });
	await fails(m1.c, { type: 'send', room, text: 'still here?' }, 'not_member');
	await send(o.c, room, 'after the kick');
	await m1.c.none('message', 'a kicked user gets no more events');
	// Owners kick moderators; owners make owners; an owner may demote themselves.
	await send(m2.c, room, 'x');
	assert.equal((await o.c.request({ type: 'role', room, user: m2.name, role: 'owner' })).role, 'owner');
	await fails(o.c, { type: 'kick', room, user: m2.name }, 'forbidden');
	assert.equal((await o.c.request({ type: 'role', room, user: o.name, role: 'member' })).role, 'member');
	const k2 = await m2.c.request({ type: 'kick', room, user: mod.name });
	assert.equal(k2.type, 'kicked');
	const j = await join(m2.c, room);
	assert.deepEqual(j.roles, { [m2.name]: 'owner' });
});

test('moderator delete: tombstone with deleted_by; plain members only their own', async (t) => {
	const { users: [o, m1, m2] } = await setup(t, 3);
	const room = uniq('r');
	await join(o.c, room);
	await join(m1.c, room);
	await join(m2.c, room);
	const msg = await send(m1.c, room, 'rude');
	await fails(m2.c, { type: 'delete', room, id: msg.id }, 'forbidden');
	await fails(o.c, { type: 'edit', room, id: msg.id, text: 'nicer' }, 'forbidden');
	const d = await o.c.request({ type: 'delete', room, id: msg.id });
	assert.equal(d.type, 'deleted');
	assert.equal(d.deleted_by, o.name);
	const seen = await m1.c.next('deleted');
	assert.equal(seen.deleted_by, o.name);
	const own = await send(m1.c, room, 'mine');
	const d2 = await m1.c.request({ type: 'delete', room, id: own.id });
	assert.equal(d2.deleted_by, undefined);
	const h = await m2.c.request({ type: 'history', room });
	assert.equal(h.messages.find((x) => x.id === msg.id).deleted_by, o.name);
	assert.equal(h.messages.find((x) => x.id === own.id).deleted_by, undefined);
});

test('ban: every read path, join, and a plain member\'s invite are forbidden until unban', async (t) => {
	const { srv, users: [o, m, v] } = await setup(t, 3);
	const v2 = await wsAuth(srv.wsUrl, v.token);
	t.after(() => v2.close());
	const room = uniq('r');
	await join(o.c, room);
	await join(m.c, room);
	await join(v.c, room);
	await v2.next('room').catch(() => {});
	await send(o.c, room, 'findable needle');
	const k = await o.c.request({ type: 'kick', room, user: v.name, ban: true });
	assert.deepEqual(k, { type: 'kicked', room, user: v.name, ban: true, ref: k.ref });
	assert.deepEqual(await v.c.next('left'), { type: 'left', room, by: o.name });
	assert.deepEqual(await v2.next('left'), { type: 'left', room, by: o.name });
	await fails(v.c, { type: 'join', room }, 'forbidden');
	await fails(v.c, { type: 'history', room }, 'forbidden');
	const h = await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: v.token });
	assert.equal(h.status, 403);
	assert.equal(h.json.error.code, 'forbidden');
	const s1 = await api(srv, 'GET', `/api/search?q=needle&room=${room}`, { token: v.token });
	assert.equal(s1.status, 403);
	const s2 = await api(srv, 'GET', '/api/search?q=needle', { token: v.token });
	assert.deepEqual(s2.json.results, []);
	await fails(m.c, { type: 'invite', room, user: v.name }, 'forbidden');
	await fails(v.c, { type: 'unban', room, user: v.name }, 'not_member');
	await fails(o.c, { type: 'unban', room, user: o.name }, 'forbidden');
	await fails(m.c, { type: 'unban', room, user: v.name }, 'forbidden');
	const u = await o.c.request({ type: 'unban', room, user: v.name });
	assert.deepEqual(u, { type: 'unbanned', room, user: v.name, ref: u.ref });
	assert.equal((await v.c.request({ type: 'history', room })).type, 'history');
	await join(v.c, room);
	// Ban of a non-member; a moderator's invite lifts it.
	const stranger = await newUser(srv.url, 's');
	const kb = await o.c.request({ type: 'kick', room, user: stranger.name, ban: true });
	assert.deepEqual(kb, { type: 'kicked', room, user: stranger.name, ban: true, ref: kb.ref });
	const sc = await wsAuth(srv.wsUrl, stranger.token);
	t.after(() => sc.close());
	await fails(sc, { type: 'join', room }, 'forbidden');
	await fails(m.c, { type: 'invite', room, user: stranger.name }, 'forbidden');
	assert.equal((await o.c.request({ type: 'invite', room, user: stranger.name })).type, 'invited');
	await sc.next('room');
	await send(sc, room, 'back');
});

test('a kick reaches every connection at once; racing sends fail', async (t) => {
	const { srv, users: [o, v] } = await setup(t, 2);
	const room = uniq('r');
	await join(o.c, room);
	await join(v.c, room);
	// The kick and the victim's send in flight together: either the send
	// lands before the kick (and is delivered), or it fails.
	const kp = o.c.request({ type: 'kick', room, user: v.name });
	const sp = v.c.request({ type: 'send', room, text: 'racing' });
	const [k, s] = await Promise.all([kp, sp]);
	assert.equal(k.type, 'kicked');
	if (s.type === 'error') assert.equal(s.code, 'not_member');
	else assert.equal(s.type, 'message');
	await v.c.next('left');
	await fails(v.c, { type: 'send', room, text: 'after' }, 'not_member');
	const h = await o.c.request({ type: 'history', room });
	assert.ok(!h.messages.some((x) => x.text === 'after'));
});

test('notify: stored, to the other connections, in room states', async (t) => {
	const { srv, users: [a, b] } = await setup(t, 2);
	const a2 = await wsAuth(srv.wsUrl, a.token);
	t.after(() => a2.close());
	const room = uniq('r');
	await join(a.c, room);
	await a2.next('room');
	const r = await a.c.request({ type: 'notify', room, level: 'mentions' });
	assert.deepEqual(r, { type: 'notify', room, level: 'mentions', ref: r.ref });
	assert.deepEqual(await a2.next('notify'), { type: 'notify', room, level: 'mentions' });
	await fails(a.c, { type: 'notify', room, level: 'loud' }, 'bad_request');
	await fails(a.c, { type: 'notify', room }, 'bad_request');
	await fails(b.c, { type: 'notify', room, level: 'none' }, 'not_member');
	await fails(b.c, { type: 'notify', room: uniq('r'), level: 'none' }, 'no_such_room');
	const a3 = await wsAuth(srv.wsUrl, a.token);
	t.after(() => a3.close());
	assert.equal(a3.hello.rooms.find((x) => x.name === room).notify, 'mentions');
	const dm = await a.c.request({ type: 'dm', user: b.name });
	assert.equal((await a.c.request({ type: 'notify', room: dm.room, level: 'none' })).level, 'none');
	const me = await api(srv, 'GET', '/api/me', { token: a.token });
	const st = me.json.rooms.find((x) => x.name === dm.room);
	assert.equal(st.notify, 'none');
	assert.equal(st.kind, 'dm');
	assert.ok(!('role' in st), 'no role in a DM room state');
	assert.equal(st.topic, '');
});

test('GET /api/users: prefix, order, limit, online', async (t) => {
	const srv = await useChatd(t);
	const p = uniq('q');
	const names = [`${p}b`, `${p}a`, `${p}c.d`, `${p}ca`];
	const tokens = {};
	for (const n of names) {
		await api(srv, 'POST', '/api/register', { body: { username: n, password: 'password1' } });
		tokens[n] = (await api(srv, 'POST', '/api/login', { body: { username: n, password: 'password1' } })).json.token;
	}
	const token = tokens[names[0]];
	const c = await wsAuth(srv.wsUrl, tokens[`${p}a`]);
	t.after(() => c.close());
	let r = await api(srv, 'GET', `/api/users?q=${p.toUpperCase()}`, { token });
	assert.equal(r.status, 200);
	assert.deepEqual(r.json.users, [
		{ username: `${p}a`, online: true },
		{ username: `${p}b`, online: false },
		{ username: `${p}c.d`, online: false },
		{ username: `${p}ca`, online: false },
	]);
	r = await api(srv, 'GET', `/api/users?q=${p}c&limit=1`, { token });
	assert.deepEqual(r.json.users, [{ username: `${p}c.d`, online: false }]);
	r = await api(srv, 'GET', '/api/users', { token });
	assert.equal(r.json.users.length, 4);
	r = await api(srv, 'GET', '/api/users?q=', { token });
	assert.equal(r.json.users.length, 4);
	r = await api(srv, 'GET', '/api/users?q=%25', { token });
	assert.deepEqual(r.json.users, []);
	r = await api(srv, 'GET', `/api/users?q=${'z'.repeat(40)}`, { token });
	assert.deepEqual(r.json.users, []);
	for (const l of ['0', '101', '-1', 'x', '']) {
		r = await api(srv, 'GET', `/api/users?limit=${l}`, { token });
		assert.equal(r.status, 400, `limit=${l}`);
		assert.equal(r.json.error.code, 'bad_request');
	}
	assert.equal((await api(srv, 'GET', '/api/users?limit=100', { token })).status, 200);
	assert.equal((await api(srv, 'GET', '/api/users')).status, 401);
	await c.close();
});
