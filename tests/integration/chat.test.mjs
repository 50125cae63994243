// Chat requests over the WebSocket and the HTTP reads: join/leave/dm, send,
// edit, delete, history, read, typing, presence, search, and every error
// (PROTOCOL.md "Requests and replies", "Delivery rules", HTTP table).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	startChatd, useChatd, api, newUser, login, uniq, rand,
	wsConnect, wsAuth, wsHeaderAuth, join, send,
	PG_URL,
} from './lib/chatd.mjs';

let srv;
before(async () => { srv = await startChatd(); });
after(() => srv.cleanup());

/** A WebSocket authenticated as u (by message), closed after the test. */
async function open(t, u, opts = {}) {
	const c = await wsAuth(srv.wsUrl, u.token, opts);
	t.after(() => c.close());
	return c;
}

async function users(n) {
	return Promise.all(Array.from({ length: n }, () => newUser(srv)));
}

function assertMessage(m, { room, user, text }) {
	assert.equal(typeof m.id, 'number');
	assert.equal(typeof m.seq, 'number');
	assert.equal(typeof m.ts, 'number');
	assert.ok(Math.abs(m.ts - Date.now()) < 5 * 60 * 1000, `ts ${m.ts} is ms now`);
	if (room !== undefined) assert.equal(m.room, room);
	if (user !== undefined) assert.equal(m.user, user);
	if (text !== undefined) assert.equal(m.text, text);
}

function assertErr(r, code) {
	assert.equal(r.type, 'error', JSON.stringify(r));
	assert.equal(r.code, code, JSON.stringify(r));
	assert.equal(typeof r.message, 'string');
}

const dmName = (a, b) => {
	const [x, y] = Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? [a, b] : [b, a];
	return `dm:${x}:${y}`;
};

/** Room state of room in hello / api/me rooms. */
function stateOf(rooms, name) {
	return rooms.find((r) => r.name === name);
}

describe('join and leave', () => {
	test('joined shape, members and last_seq', async (t) => {
		const [a, b] = await users(2);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('j');
		const ja = await ca.request({ type: 'join', room });
		assert.equal(ja.type, 'joined');
		assert.equal(typeof ja.ref, 'string');
		assert.equal(ja.room, room);
		assert.equal(ja.kind, 'public');
		assert.deepEqual(ja.members, [a.name]);
		assert.equal(ja.last_seq, 0);
		const m = await send(ca, room, 'hi');
		const jb = await join(cb, room);
		assert.deepEqual([...jb.members].sort(), [a.name, b.name].sort());
		assert.equal(jb.last_seq, m.seq);
		assert.equal(jb.kind, 'public');
	});

	test('join is idempotent: a second join just replies joined', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('idem');
		await join(cb, room);
		await join(a1, room);
		await a2.next((e) => e.type === 'room' && e.room === room);
		await cb.next((e) => e.type === 'member' && e.user === a.name);
		const again = await join(a1, room);
		assert.deepEqual([...again.members].sort(), [a.name, b.name].sort());
		await a2.none((e) => e.room === room, 'no room event for a repeated join');
		await cb.none((e) => e.type === 'member', 'no member event for a repeated join');
	});

	test('upper-case room names are folded', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const room = uniq('fold');
		const j = await join(c, room.toUpperCase());
		assert.equal(j.room, room);
		const m = await send(c, room.toUpperCase(), 'x');
		assert.equal(m.room, room);
	});

	test('room event on the user\'s other connections, which then get live events', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('oc');
		await join(cb, room);
		const j = await join(a1, room);
		assert.equal(j.type, 'joined');
		const ev = await a2.next('room');
		assert.deepEqual({ type: ev.type, room: ev.room, kind: ev.kind }, { type: 'room', room, kind: 'public' });
		assert.equal(ev.ref, undefined);
		const m = await send(cb, room, 'to both of a');
		const got1 = await a1.next((e) => e.type === 'message' && e.id === m.id);
		const got2 = await a2.next((e) => e.type === 'message' && e.id === m.id);
		assert.equal(got1.ref, undefined);
		assert.equal(got2.ref, undefined);
	});

	test('member join/leave events to the other members; left on own connections', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('ml');
		await join(cb, room);
		await join(a1, room);
		const mj = await cb.next('member');
		assert.deepEqual({ type: mj.type, room: mj.room, user: mj.user, event: mj.event }, { type: 'member', room, user: a.name, event: 'join' });
		await a2.next('room');
		const l = await a1.request({ type: 'leave', room });
		assert.equal(l.type, 'left');
		assert.equal(l.room, room);
		const l2 = await a2.next('left');
		assert.equal(l2.room, room);
		assert.equal(l2.ref, undefined);
		const ml = await cb.next('member');
		assert.deepEqual({ room: ml.room, user: ml.user, event: ml.event }, { room, user: a.name, event: 'leave' });
		// a no longer gets the room's events
		const m = await send(cb, room, 'after leave');
		await a1.none((e) => e.id === m.id, 'message after leave');
		await a2.none((e) => e.id === m.id, 'message after leave');
		// and is not a member any more
		assertErr(await a1.request({ type: 'send', room, text: 'x' }), 'not_member');
		assertErr(await a1.request({ type: 'leave', room }), 'not_member');
		const me = await api(srv, 'GET', '/api/me', { token: a.token });
		assert.equal(stateOf(me.json.rooms, room), undefined);
	});

	test('leave: not_member, unknown room, invalid room', async (t) => {
		const [a, b] = await users(2);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('lv');
		await join(cb, room);
		assertErr(await ca.request({ type: 'leave', room }), 'not_member');
		const unknown = await ca.request({ type: 'leave', room: uniq('none') });
		assert.equal(unknown.type, 'error');
		assert.ok(['no_such_room', 'not_member'].includes(unknown.code), unknown.code);
		assertErr(await ca.request({ type: 'leave', room: 'bad room' }), 'invalid_room');
	});

	test('membership persists across reconnects', async (t) => {
		const [a] = await users(1);
		const c1 = await wsAuth(srv.wsUrl, a.token);
		const room = uniq('pers');
		const m = await (async () => { await join(c1, room); return send(c1, room, 'x'); })();
		await c1.close();
		const c2 = await open(t, a);
		const st = stateOf(c2.hello.rooms, room);
		assert.deepEqual(st, { name: room, kind: 'public', last_seq: m.seq, read_seq: 0, unread: 0, mentions: 0, topic: '', role: 'owner', notify: 'all' });
		// a message from someone else reaches the new connection without re-joining
		const [b] = await users(1);
		const cb = await open(t, b);
		await join(cb, room);
		const mb = await send(cb, room, 'hello again');
		await c2.next((e) => e.type === 'message' && e.id === mb.id);
	});
});

describe('direct messages', () => {
	test('dm creates dm:<a>:<b> in byte order; room events to both users\' other connections', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const b1 = await open(t, b);
		const b2 = await open(t, b);
		const name = dmName(a.name, b.name);
		const j = await a1.request({ type: 'dm', user: b.name });
		assert.equal(j.type, 'joined');
		assert.equal(j.room, name);
		assert.equal(j.kind, 'dm');
		assert.deepEqual([...j.members].sort(), [a.name, b.name].sort());
		assert.equal(j.last_seq, 0);
		for (const c of [a2, b1, b2]) {
			const ev = await c.next('room');
			assert.equal(ev.room, name);
			assert.equal(ev.kind, 'dm');
		}
		await a1.none('room', 'no room event on the requesting connection');
		// both can talk; both of b's connections get it
		const m = await send(a1, name, 'psst');
		assertMessage(m, { room: name, user: a.name, text: 'psst' });
		await b1.next((e) => e.type === 'message' && e.id === m.id);
		await b2.next((e) => e.type === 'message' && e.id === m.id);
		await a2.next((e) => e.type === 'message' && e.id === m.id);
		// dm again (from either side): just the reply, no events
		const again = await b1.request({ type: 'dm', user: a.name.toUpperCase() });
		assert.equal(again.type, 'joined');
		assert.equal(again.room, name);
		assert.equal(again.last_seq, m.seq);
		for (const c of [a1, a2, b2]) await c.none('room', 'no room event when the DM exists');
		// in hello and /api/me as kind dm
		const me = await api(srv, 'GET', '/api/me', { token: b.token });
		assert.equal(stateOf(me.json.rooms, name).kind, 'dm');
		// every field of a DM room state; no role in a DM room
		assert.deepEqual(stateOf(me.json.rooms, name), { name, kind: 'dm', last_seq: m.seq, read_seq: 0, unread: 1, mentions: 0, topic: '', notify: 'all' });
		// not in /api/rooms
		const rooms = await api(srv, 'GET', '/api/rooms', { token: a.token });
		assert.equal(rooms.json.rooms.find((r) => r.name === name), undefined);
	});

	test('dm with oneself lists the user once', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const j = await c.request({ type: 'dm', user: a.name });
		assert.equal(j.type, 'joined');
		assert.equal(j.room, `dm:${a.name}:${a.name}`);
		assert.deepEqual(j.members, [a.name]);
		const m = await send(c, j.room, 'note to self');
		assert.equal(m.room, j.room);
	});

	test('dm: unknown user not_found, bad input', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		assertErr(await c.request({ type: 'dm', user: uniq('ghost') }), 'not_found');
		assertErr(await c.request({ type: 'dm' }), 'bad_request');
		assertErr(await c.request({ type: 'dm', user: 5 }), 'bad_request');
	});

	test('join of a dm: name: joined for its users, forbidden for others and for a missing DM', async (t) => {
		const [a, b, x] = await users(3);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const cx = await open(t, x);
		const j = await ca.request({ type: 'dm', user: b.name });
		await cb.next('room');
		const ja = await ca.request({ type: 'join', room: j.room });
		assert.equal(ja.type, 'joined');
		assert.equal(ja.kind, 'dm');
		const jb = await cb.request({ type: 'join', room: j.room });
		assert.equal(jb.type, 'joined');
		assertErr(await cx.request({ type: 'join', room: j.room }), 'forbidden');
		assertErr(await ca.request({ type: 'join', room: dmName(a.name, x.name) }), 'forbidden');
		// third users can neither read nor send nor leave it; its users can't leave it
		assertErr(await cx.request({ type: 'history', room: j.room }), 'forbidden');
		const h = await api(srv, 'GET', `/api/rooms/${encodeURIComponent(j.room)}/messages`, { token: x.token });
		assert.equal(h.status, 403);
		assert.equal(h.json.error.code, 'forbidden');
		const hs = await cx.request({ type: 'send', room: j.room, text: 'intrude' });
		assert.equal(hs.type, 'error');
		assert.ok(['forbidden', 'not_member'].includes(hs.code), hs.code);
		assertErr(await ca.request({ type: 'leave', room: j.room }), 'forbidden');
		const hOk = await api(srv, 'GET', `/api/rooms/${encodeURIComponent(j.room)}/messages`, { token: b.token });
		assert.equal(hOk.status, 200);
	});
});

describe('send', () => {
	test('the sender gets one copy with ref; every other connection of every member one without', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const b1 = await open(t, b);
		const b2 = await wsHeaderAuth(srv.wsUrl, b.token);
		t.after(() => b2.close());
		const room = uniq('s');
		await join(a1, room);
		await join(b1, room);
		const ref = `send-${rand()}`;
		a1.send({ type: 'send', room, text: 'hello world', ref });
		const m = await a1.next((e) => e.ref === ref);
		assert.equal(m.type, 'message');
		assertMessage(m, { room, user: a.name, text: 'hello world' });
		assert.equal(m.id, m.seq);
		assert.equal(m.edited_ts, undefined);
		assert.equal(m.deleted, undefined);
		for (const c of [a2, b1, b2]) {
			const e = await c.next((x) => x.type === 'message' && x.id === m.id);
			assert.equal(e.ref, undefined);
			const { ref: _r, ...rest } = m;
			assert.deepEqual(e, rest);
		}
		for (const c of [a1, a2, b1, b2]) await c.none((e) => e.type === 'message' && e.id === m.id, 'duplicate copy');
	});

	test('ids and seqs increase; last_seq follows', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const room = uniq('inc');
		await join(c, room);
		const ms = [];
		for (let i = 0; i < 5; i++) ms.push(await send(c, room, `m${i}`));
		for (let i = 1; i < ms.length; i++) assert.ok(ms[i].id > ms[i - 1].id);
		const j = await join(c, room);
		assert.equal(j.last_seq, ms[4].seq);
	});

	test('empty → empty; 4000 code points ok; 4001 → too_long (code points, not bytes)', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const room = uniq('len');
		await join(c, room);
		assertErr(await c.request({ type: 'send', room, text: '' }), 'empty');
		const emoji4000 = '😀'.repeat(4000);
		const ok = await send(c, room, emoji4000);
		assert.equal(ok.text, emoji4000);
		assertErr(await c.request({ type: 'send', room, text: '😀'.repeat(4001) }), 'too_long');
		assertErr(await c.request({ type: 'send', room, text: 'a'.repeat(4001) }), 'too_long');
		assert.equal((await send(c, room, 'é'.repeat(4000))).text.length, 4000);
		const one = await send(c, room, 'x');
		assert.equal(one.text, 'x');
		// unicode survives the round trip
		const s = 'ünïcödé 漢字 👩‍👩‍👧 tab\t"quote" \\ / \u2028';
		assert.equal((await send(c, room, s)).text, s);
	});

	test('U+0000 is a code point like any other: in text it is stored, in a room name invalid_room', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const room = uniq('nul');
		await join(c, room);
		const s = 'before\u0000after';
		if (PG_URL) {
			// PostgreSQL's text cannot hold it: refused, nothing stored.
			assertErr(await c.request({ type: 'send', room, text: s }), 'bad_request');
		} else {
			assert.equal((await send(c, room, s)).text, s);
		}
		assertErr(await c.request({ type: 'join', room: 'ab\u0000' }), 'invalid_room');
	});

	test('not_member, no_such_room, invalid_room', async (t) => {
		const [a, b] = await users(2);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('nm');
		await join(cb, room);
		assertErr(await ca.request({ type: 'send', room, text: 'x' }), 'not_member');
		assertErr(await ca.request({ type: 'send', room: uniq('nosuch'), text: 'x' }), 'no_such_room');
		const bad = ['', 'a'.repeat(65), 'a b', '-abc', '_abc', 'ab.c', 'äbc', 'a/b'];
		for (const name of bad) {
			assertErr(await ca.request({ type: 'send', room: name, text: 'x' }), 'invalid_room');
			assertErr(await ca.request({ type: 'join', room: name }), 'invalid_room');
			assertErr(await ca.request({ type: 'history', room: name }), 'invalid_room');
		}
		const j64 = await ca.request({ type: 'join', room: 'a'.repeat(56) + rand(8) });
		assert.equal(j64.type, 'joined');
	});
});

describe('client_msg_id', () => {
	test('same id again → the original message back, nothing delivered or stored', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('cm');
		await join(a1, room);
		await join(cb, room);
		await a2.next('room');
		const id = `cmid-${rand()}`;
		const m1 = await send(a1, room, 'first', { client_msg_id: id });
		await cb.next((e) => e.id === m1.id);
		await a2.next((e) => e.id === m1.id);
		const m2 = await send(a1, room, 'second text', { client_msg_id: id });
		assert.equal(m2.id, m1.id);
		assert.equal(m2.seq, m1.seq);
		assert.equal(m2.text, 'first');
		await cb.none('message', 'nothing delivered for a repeated client_msg_id');
		await a2.none('message', 'nothing delivered for a repeated client_msg_id');
		// from another connection of the same user, too
		const m3 = await send(a2, room, 'third', { client_msg_id: id });
		assert.equal(m3.id, m1.id);
		const h = await cb.request({ type: 'history', room });
		assert.deepEqual(h.messages.map((m) => m.id), [m1.id]);
		// after an edit, the current state comes back
		const ed = await a1.request({ type: 'edit', room, id: m1.id, text: 'edited' });
		assert.equal(ed.type, 'edited');
		const m4 = await send(a1, room, 'again', { client_msg_id: id });
		assert.equal(m4.id, m1.id);
		assert.equal(m4.text, 'edited');
		assert.equal(m4.seq, ed.seq);
		assert.equal(m4.type, 'message');
	});

	test('same id after a reconnect is still idempotent', async (t) => {
		const [a] = await users(1);
		const c1 = await wsAuth(srv.wsUrl, a.token);
		const room = uniq('cmr');
		await join(c1, room);
		const id = `cmid-${rand()}`;
		const m1 = await send(c1, room, 'once', { client_msg_id: id });
		await c1.close();
		const c2 = await open(t, a);
		const m2 = await send(c2, room, 'once', { client_msg_id: id });
		assert.equal(m2.id, m1.id);
		const h = await c2.request({ type: 'history', room });
		assert.equal(h.messages.length, 1);
	});

	test('different users with the same id → two messages', async (t) => {
		const [a, b] = await users(2);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('cmu');
		await join(ca, room);
		await join(cb, room);
		const id = `shared-${rand()}`;
		const ma = await send(ca, room, 'from a', { client_msg_id: id });
		const mb = await send(cb, room, 'from b', { client_msg_id: id });
		assert.notEqual(ma.id, mb.id);
		assert.equal(mb.text, 'from b');
		// the same user in another room with the same id: the original back
		const room2 = uniq('cmu2');
		await join(ca, room2);
		const ma2 = await ca.request({ type: 'send', room: room2, text: 'x', client_msg_id: id });
		assert.equal(ma2.type, 'message');
		assert.equal(ma2.id, ma.id);
	});

	test('client_msg_id over 64 characters or of a wrong type → bad_request', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const room = uniq('cml');
		await join(c, room);
		assertErr(await c.request({ type: 'send', room, text: 'x', client_msg_id: 'x'.repeat(65) }), 'bad_request');
		assertErr(await c.request({ type: 'send', room, text: 'x', client_msg_id: 42 }), 'bad_request');
		const ok = await send(c, room, 'x', { client_msg_id: 'y'.repeat(64) });
		assert.equal(ok.type, 'message');
	});

	test('same id after a server restart is still idempotent', async (t) => {
		const s = await useChatd(t);
		const a = await newUser(s);
		const c1 = await wsAuth(s.wsUrl, a.token);
		const room = uniq('cmrs');
		await join(c1, room);
		const id = `cmid-${rand()}`;
		const m1 = await send(c1, room, 'durable', { client_msg_id: id });
		await c1.close();
		await s.restart();
		const c2 = await wsAuth(s.wsUrl, a.token);
		try {
			const m2 = await send(c2, room, 'durable', { client_msg_id: id });
			assert.equal(m2.id, m1.id);
			const h = await c2.request({ type: 'history', room });
			assert.deepEqual(h.messages.map((m) => m.id), [m1.id]);
		} finally {
			await c2.close();
		}
	});
});

describe('edit and delete', () => {
	test('edit: edited event with edited_ts and a new seq; others get it without ref', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('ed');
		await join(a1, room);
		await join(cb, room);
		await a2.next('room');
		const m = await send(a1, room, 'typo');
		const r = await a1.request({ type: 'edit', room, id: m.id, text: 'fixed' });
		assert.equal(r.type, 'edited');
		assert.equal(r.id, m.id);
		assert.equal(r.room, room);
		assert.equal(r.user, a.name);
		assert.equal(r.text, 'fixed');
		assert.equal(r.ts, m.ts);
		assert.ok(r.seq > m.seq);
		assert.equal(typeof r.edited_ts, 'number');
		assert.ok(r.edited_ts >= m.ts);
		for (const c of [a2, cb]) {
			const e = await c.next((x) => x.type === 'edited' && x.id === m.id);
			assert.equal(e.ref, undefined);
			const { ref: _r, ...rest } = r;
			assert.deepEqual(e, rest);
		}
		await a1.none('edited', 'the editing connection gets only the reply');
		// history has the edit; last_seq moved
		const h = await cb.request({ type: 'history', room });
		assert.deepEqual(h.messages, [{ id: m.id, seq: r.seq, room, user: a.name, text: 'fixed', ts: m.ts, edited_ts: r.edited_ts }]);
		assert.equal((await join(a1, room)).last_seq, r.seq);
	});

	test('edit: forbidden for others, not_found for missing/deleted, empty, too_long', async (t) => {
		const [a, b] = await users(2);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('edx');
		await join(ca, room);
		await join(cb, room);
		const m = await send(ca, room, 'mine');
		assertErr(await cb.request({ type: 'edit', room, id: m.id, text: 'theirs' }), 'forbidden');
		assertErr(await ca.request({ type: 'edit', room, id: m.id + 1000000, text: 'x' }), 'not_found');
		assertErr(await ca.request({ type: 'edit', room, id: m.id, text: '' }), 'empty');
		assertErr(await ca.request({ type: 'edit', room, id: m.id, text: 'x'.repeat(4001) }), 'too_long');
		// a message of another room
		const other = uniq('edo');
		await join(ca, other);
		assertErr(await ca.request({ type: 'edit', room: other, id: m.id, text: 'x' }), 'not_found');
		const d = await ca.request({ type: 'delete', room, id: m.id });
		assert.equal(d.type, 'deleted');
		assertErr(await ca.request({ type: 'edit', room, id: m.id, text: 'x' }), 'not_found');
		assertErr(await ca.request({ type: 'edit', room, id: 'x', text: 'x' }), 'bad_request');
	});

	test('delete: tombstone without text; others get deleted without ref', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('del');
		await join(a1, room);
		await join(cb, room);
		await a2.next('room');
		const m = await send(a1, room, 'oops');
		assertErr(await cb.request({ type: 'delete', room, id: m.id }), 'forbidden');
		const d = await a1.request({ type: 'delete', room, id: m.id });
		assert.equal(d.type, 'deleted');
		const { ref, ...tomb } = d;
		assert.equal(typeof ref, 'string');
		assert.deepEqual(Object.keys(tomb).sort(), ['deleted', 'id', 'room', 'seq', 'ts', 'type', 'user'].sort());
		assert.equal(tomb.deleted, true);
		assert.equal(tomb.id, m.id);
		assert.ok(tomb.seq > m.seq);
		assert.equal(tomb.user, a.name);
		assert.equal(tomb.ts, m.ts);
		for (const c of [a2, cb]) {
			const e = await c.next((x) => x.type === 'deleted' && x.id === m.id);
			assert.deepEqual(e, tomb);
		}
		assertErr(await a1.request({ type: 'delete', room, id: m.id }), 'not_found');
		assertErr(await a1.request({ type: 'delete', room, id: m.id + 1000000 }), 'not_found');
		const h = await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: b.token });
		assert.deepEqual(h.json.messages, [{ id: m.id, seq: tomb.seq, room, user: a.name, ts: m.ts, deleted: true }]);
	});
});

describe('history', () => {
	let a, b, x, room, ids;
	before(async () => {
		[a, b, x] = await users(3);
		room = uniq('hist');
		const c = await wsAuth(srv.wsUrl, a.token);
		await join(c, room);
		// 120 messages, pipelined
		const replies = await Promise.all(Array.from({ length: 120 }, (_, i) => c.request({ type: 'send', room, text: `msg ${i}` }, 20000)));
		assert.ok(replies.every((r) => r.type === 'message'));
		ids = replies.map((r) => r.id).sort((p, q) => p - q);
		await c.close();
	});

	const http = (q) => api(srv, 'GET', `/api/rooms/${room}/messages${q}`, { token: x.token });
	const range = (from, to) => ids.slice(from, to);

	test('paging over HTTP', async () => {
		const cases = [
			['', range(70, 120), true],
			['?limit=100', range(20, 120), true],
			['?limit=1', range(119, 120), true],
			[`?before=${ids[50]}`, range(0, 50), false],
			[`?before=${ids[51]}`, range(1, 51), true],
			[`?before=${ids[51]}&limit=10`, range(41, 51), true],
			[`?after=${ids[69]}`, range(70, 120), false],
			[`?after=${ids[68]}`, range(69, 119), true],
			['?after=0', range(0, 50), true],
			['?after=0&limit=100', range(0, 100), true],
			['?before=0', [], false],
			[`?before=${ids[0]}`, [], false],
			[`?after=${ids[119]}`, [], false],
			['?after=999999999999', [], false],
			['?before=999999999999', range(70, 120), true],
			[`?before=${ids[119] + 1}&limit=100`, range(20, 120), true],
		];
		for (const [q, want, more] of cases) {
			const r = await http(q);
			assert.equal(r.status, 200, `${q}: ${r.text}`);
			assert.equal(r.json.room, room);
			assert.deepEqual(r.json.messages.map((m) => m.id), want, `ids for ${q}`);
			assert.equal(r.json.has_more, more, `has_more for ${q}`);
			for (const m of r.json.messages) assertMessage(m, { room, user: a.name });
		}
		const r = await http('?limit=3');
		assert.deepEqual(r.json.messages.map((m) => m.text), ['msg 117', 'msg 118', 'msg 119']);
	});

	test('paging over WebSocket', async (t) => {
		const c = await open(t, x);
		const cases = [
			[{}, range(70, 120), true],
			[{ limit: 100 }, range(20, 120), true],
			[{ before: ids[50] }, range(0, 50), false],
			[{ before: ids[51], limit: 10 }, range(41, 51), true],
			[{ after: ids[69] }, range(70, 120), false],
			[{ after: ids[68] }, range(69, 119), true],
			[{ after: 0 }, range(0, 50), true],
			[{ before: 0 }, [], false],
		];
		for (const [q, want, more] of cases) {
			const r = await c.request({ type: 'history', room, ...q });
			assert.equal(r.type, 'history', JSON.stringify(r));
			assert.equal(r.room, room);
			assert.deepEqual(r.messages.map((m) => m.id), want, `ids for ${JSON.stringify(q)}`);
			assert.equal(r.has_more, more, `has_more for ${JSON.stringify(q)}`);
		}
	});

	test('bad paging parameters → 400 / bad_request', async (t) => {
		const c = await open(t, x);
		for (const q of [`?before=${ids[5]}&after=${ids[1]}`, '?limit=0', '?limit=101', '?limit=abc', '?limit=-1', '?limit=1.5', '?before=-1', '?after=-5', '?before=abc', '?after=', '?limit=']) {
			const r = await http(q);
			assert.equal(r.status, 400, `${q}: ${r.status}`);
			assert.equal(r.json?.error?.code, 'bad_request', `${q}: ${r.text}`);
		}
		for (const q of [{ before: ids[5], after: ids[1] }, { limit: 0 }, { limit: 101 }, { limit: '5' }, { limit: -1 }, { limit: 1.5 }, { before: -1 }, { after: -1 }, { before: 'x' }, { before: true }]) {
			assertErr(await c.request({ type: 'history', room, ...q }), 'bad_request');
		}
		// still usable
		assert.equal((await c.request({ type: 'history', room, limit: 1 })).type, 'history');
	});

	test('public rooms are readable without membership; errors for unknown, invalid, DM', async (t) => {
		const r = await http('?limit=5');
		assert.equal(r.status, 200);
		const unknown = await api(srv, 'GET', `/api/rooms/${uniq('nosuch')}/messages`, { token: x.token });
		assert.equal(unknown.status, 404);
		assert.equal(unknown.json.error.code, 'no_such_room');
		for (const bad of ['bad%20room', '-abc', 'a'.repeat(65), '%C3%A4bc']) {
			const inv = await api(srv, 'GET', `/api/rooms/${bad}/messages`, { token: x.token });
			assert.equal(inv.status, 400, bad);
			assert.equal(inv.json.error.code, 'invalid_room', bad);
		}
		const upper = await api(srv, 'GET', `/api/rooms/${room.toUpperCase()}/messages?limit=1`, { token: x.token });
		assert.equal(upper.status, 200);
		assert.equal(upper.json.room, room);
		const c = await open(t, x);
		assertErr(await c.request({ type: 'history', room: uniq('nosuch') }), 'no_such_room');
		// someone else's DM
		const ca = await open(t, a);
		const dm = await ca.request({ type: 'dm', user: b.name });
		const f = await api(srv, 'GET', `/api/rooms/${encodeURIComponent(dm.room)}/messages`, { token: x.token });
		assert.equal(f.status, 403);
		assert.equal(f.json.error.code, 'forbidden');
		const f2 = await api(srv, 'GET', `/api/rooms/${dm.room}/messages`, { token: x.token });
		assert.equal(f2.status, 403);
		assertErr(await c.request({ type: 'history', room: dm.room }), 'forbidden');
	});
});

describe('read positions', () => {
	test('read: reply shape, capped at last_seq, never backwards, events only when moved', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('rd');
		await join(a1, room);
		await join(cb, room);
		await a2.next('room');
		const ms = [];
		for (let i = 0; i < 3; i++) ms.push(await send(cb, room, `m${i}`));
		const r1 = await a1.request({ type: 'read', room, seq: ms[1].seq });
		assert.deepEqual({ type: r1.type, room: r1.room, user: r1.user, seq: r1.seq }, { type: 'read', room, user: a.name, seq: ms[1].seq });
		for (const c of [a2, cb]) {
			const e = await c.next((x) => x.type === 'read');
			assert.deepEqual(e, { type: 'read', room, user: a.name, seq: ms[1].seq });
		}
		// backwards: reply carries the stored one, no events
		const r2 = await a1.request({ type: 'read', room, seq: ms[0].seq });
		assert.equal(r2.seq, ms[1].seq);
		const r2b = await a1.request({ type: 'read', room, seq: 0 });
		assert.equal(r2b.seq, ms[1].seq);
		await a2.none('read', 'no read event when not moved');
		await cb.none('read', 'no read event when not moved');
		// above last_seq: capped
		const r3 = await a1.request({ type: 'read', room, seq: ms[2].seq + 1000000 });
		assert.equal(r3.seq, ms[2].seq);
		assert.equal((await a2.next('read')).seq, ms[2].seq);
		assert.equal((await cb.next('read')).seq, ms[2].seq);
		// same again: nothing
		assert.equal((await a1.request({ type: 'read', room, seq: ms[2].seq })).seq, ms[2].seq);
		await a2.none('read');
		await a1.none('read');
	});

	test('read: not_member, no_such_room, bad input', async (t) => {
		const [a, b] = await users(2);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('rdx');
		await join(cb, room);
		assertErr(await ca.request({ type: 'read', room, seq: 1 }), 'not_member');
		const r = await ca.request({ type: 'read', room: uniq('nosuch'), seq: 1 });
		assert.ok(['no_such_room', 'not_member'].includes(r.code), r.code);
		for (const seq of [-1, 'x', 1.5, null, undefined]) {
			assertErr(await cb.request({ type: 'read', room, seq }), 'bad_request');
		}
	});

	test('unread in hello and /api/me: others\' messages above read_seq, not deleted; join sets read_seq to last_seq', async (t) => {
		const [a, b, c] = await users(3);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('un');
		await join(cb, room);
		const old = await send(cb, room, 'old');
		const ja = await join(ca, room);
		assert.equal(ja.last_seq, old.seq);
		let me = await api(srv, 'GET', '/api/me', { token: a.token });
		assert.deepEqual(stateOf(me.json.rooms, room), { name: room, kind: 'public', last_seq: old.seq, read_seq: old.seq, unread: 0, mentions: 0, topic: '', role: 'member', notify: 'all' });
		const m1 = await send(cb, room, 'one');
		const m2 = await send(cb, room, 'two');
		const m3 = await send(cb, room, 'three');
		await send(ca, room, 'my own does not count');
		const del = await cb.request({ type: 'delete', room, id: m3.id });
		me = await api(srv, 'GET', '/api/me', { token: a.token });
		let st = stateOf(me.json.rooms, room);
		assert.equal(st.unread, 2);
		assert.equal(st.read_seq, old.seq);
		assert.equal(st.last_seq, del.seq);
		const h = await wsAuth(srv.wsUrl, a.token);
		assert.deepEqual(stateOf(h.hello.rooms, room), st);
		await h.close();
		// b's own view: a's one message is unread (b joined at last_seq 0)
		const meb = await api(srv, 'GET', '/api/me', { token: b.token });
		assert.equal(stateOf(meb.json.rooms, room).unread, 1);
		await ca.request({ type: 'read', room, seq: m1.seq });
		me = await api(srv, 'GET', '/api/me', { token: a.token });
		st = stateOf(me.json.rooms, room);
		assert.equal(st.read_seq, m1.seq);
		assert.equal(st.unread, 1);
		await ca.request({ type: 'read', room, seq: m2.seq + 1000000 });
		me = await api(srv, 'GET', '/api/me', { token: a.token });
		st = stateOf(me.json.rooms, room);
		assert.equal(st.read_seq, del.seq);
		assert.equal(st.unread, 0);
		// c joins later: old messages are not unread
		const cc = await open(t, c);
		await join(cc, room);
		const mec = await api(srv, 'GET', '/api/me', { token: c.token });
		assert.deepEqual(stateOf(mec.json.rooms, room), { name: room, kind: 'public', last_seq: del.seq, read_seq: del.seq, unread: 0, mentions: 0, topic: '', role: 'member', notify: 'all' });
	});
});

describe('typing and presence', () => {
	test('typing reaches other users, not the sender, and is never stored', async (t) => {
		const [a, b] = await users(2);
		const a1 = await open(t, a);
		const a2 = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('ty');
		await join(a1, room);
		await join(cb, room);
		await a2.next('room');
		a1.send({ type: 'typing', room });
		const e = await cb.next('typing');
		assert.deepEqual(e, { type: 'typing', room, user: a.name });
		await a1.none('typing', 'sender gets no typing');
		await a2.none('typing', 'the sender\'s other connections get no typing');
		const j = await join(cb, room);
		assert.equal(j.last_seq, 0);
		const h = await cb.request({ type: 'history', room });
		assert.deepEqual(h.messages, []);
	});

	test('presence: online on the first connection, offline when the last closes, only to room-sharers', async (t) => {
		const [a, b, c] = await users(3);
		const ca = await open(t, a);
		const cc = await open(t, c);
		const room = uniq('pr');
		await join(ca, room);
		const b0 = await wsAuth(srv.wsUrl, b.token);
		await join(b0, room);
		await b0.close();
		const off0 = await ca.next((e) => e.type === 'presence' && e.user === b.name);
		assert.equal(off0.status, 'offline');
		const b1 = await wsAuth(srv.wsUrl, b.token);
		const on = await ca.next((e) => e.type === 'presence' && e.user === b.name);
		assert.deepEqual(on, { type: 'presence', user: b.name, status: 'online' });
		const b2 = await wsHeaderAuth(srv.wsUrl, b.token);
		await ca.none((e) => e.type === 'presence', 'no presence for a second connection');
		await b1.close();
		await ca.none((e) => e.type === 'presence', 'no presence while a connection remains');
		await b2.close();
		const off = await ca.next((e) => e.type === 'presence' && e.user === b.name);
		assert.deepEqual(off, { type: 'presence', user: b.name, status: 'offline' });
		await cc.none((e) => e.type === 'presence' && e.user === b.name, 'presence to a user sharing no room');
		// unauthenticated sockets count for nothing
		const anon = await wsConnect(srv.wsUrl);
		await ca.none((e) => e.type === 'presence');
		await anon.close();
	});
});

describe('search', () => {
	let a, b, x, room, other, texts, ca;
	before(async () => {
		[a, b, x] = await users(3);
		room = uniq('se');
		other = uniq('seo');
		ca = await wsAuth(srv.wsUrl, a.token);
		const cb = await wsAuth(srv.wsUrl, b.token);
		await join(ca, room);
		await join(cb, other);
		texts = {};
		const put = async (k, text, c = ca, r = room) => { texts[k] = await send(c, r, text); };
		await put('fox', 'the quick brown fox jumps');
		await put('cjk', '漢字テスト');
		await put('quote', 'say "hello" world');
		await put('star', 'star*power');
		await put('or', 'this OR that');
		await put('this', 'this alone');
		await put('that', 'that alone');
		await put('go', 'go now');
		await put('partial', 'supercalifragilistic');
		await put('paren', 'f(x) NEAR(a b) col:umn');
		await put('edited', 'before-edit-word');
		await ca.request({ type: 'edit', room, id: texts.edited.id, text: 'after-edit-word' });
		await put('deleted', 'vanishing-word');
		await ca.request({ type: 'delete', room, id: texts.deleted.id });
		await put('fox2', 'another quick fox');
		await put('otherfox', 'quick fox elsewhere', cb, other);
		await cb.close();
	});
	after(() => ca?.close());

	const search = (q, extra = '', token = a.token) => api(srv, 'GET', `/api/search?q=${encodeURIComponent(q)}${extra}`, { token });
	const ids = (r) => r.json.results.map((m) => m.id);

	test('words, newest first, only the member\'s rooms', async () => {
		const r = await search('quick');
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(ids(r), [texts.fox2.id, texts.fox.id]);
		for (const m of r.json.results) assertMessage(m, { room, user: a.name });
		assert.equal(r.json.results[1].text, 'the quick brown fox jumps');
		const r2 = await search('go', `&room=${room}`);
		assert.deepEqual(ids(r2), [texts.go.id]);
	});

	test('substrings of 3+ characters, CJK included', async () => {
		assert.deepEqual(ids(await search('uic', `&room=${room}`)), [texts.fox2.id, texts.fox.id]);
		assert.deepEqual(ids(await search('califrag', `&room=${room}`)), [texts.partial.id]);
		assert.deepEqual(ids(await search('字テス', `&room=${room}`)), [texts.cjk.id]);
	});

	test('search syntax is taken literally', async () => {
		assert.deepEqual(ids(await search('"hello"', `&room=${room}`)), [texts.quote.id]);
		assert.deepEqual(ids(await search('star*', `&room=${room}`)), [texts.star.id]);
		assert.deepEqual(ids(await search('this OR that', `&room=${room}`)), [texts.or.id]);
		assert.deepEqual(ids(await search('NEAR(a b)', `&room=${room}`)), [texts.paren.id]);
		assert.deepEqual(ids(await search('col:umn', `&room=${room}`)), [texts.paren.id]);
		for (const q of ['"', '*', '(', ')', 'OR', 'AND', 'NOT', '-', '^', '\'', '"unbalanced', 'a"b', '{x}', ':', '\\', '%', '_']) {
			const r = await search(q, `&room=${room}`);
			assert.equal(r.status, 200, `q=${q}: ${r.status} ${r.text}`);
			assert.ok(Array.isArray(r.json.results));
		}
	});

	test('edited text is found by its new text; deleted messages not at all', async () => {
		assert.deepEqual(ids(await search('after-edit-word', `&room=${room}`)), [texts.edited.id]);
		assert.deepEqual(ids(await search('before-edit', `&room=${room}`)), []);
		assert.deepEqual(ids(await search('vanishing', `&room=${room}`)), []);
	});

	test('room parameter: public rooms readable, DMs forbidden, unknown/invalid rooms', async (t) => {
		const r = await search('quick', `&room=${other}`);
		assert.equal(r.status, 200);
		assert.deepEqual(ids(r), [texts.otherfox.id]);
		const mine = await search('elsewhere');
		assert.deepEqual(ids(mine), []);
		const cbx = await open(t, b);
		const dm = await cbx.request({ type: 'dm', user: x.name });
		await send(cbx, dm.room, 'secret quick');
		const f = await search('quick', `&room=${encodeURIComponent(dm.room)}`);
		assert.equal(f.status, 403);
		assert.equal(f.json.error.code, 'forbidden');
		const okx = await search('secret', `&room=${encodeURIComponent(dm.room)}`, x.token);
		assert.equal(okx.status, 200);
		assert.equal(okx.json.results.length, 1);
		const nf = await search('quick', `&room=${uniq('nosuch')}`);
		assert.equal(nf.status, 404);
		assert.equal(nf.json.error.code, 'no_such_room');
		const inv = await search('quick', '&room=bad%20room');
		assert.equal(inv.status, 400);
		assert.equal(inv.json.error.code, 'invalid_room');
	});

	test('q required, limit 1–100', async () => {
		const miss = await api(srv, 'GET', '/api/search', { token: a.token });
		assert.equal(miss.status, 400);
		assert.equal(miss.json.error.code, 'bad_request');
		const empty = await api(srv, 'GET', '/api/search?q=', { token: a.token });
		assert.equal(empty.status, 400);
		for (const l of ['0', '101', 'abc', '-1', '1.5']) {
			const r = await search('quick', `&limit=${l}`);
			assert.equal(r.status, 400, `limit=${l}`);
			assert.equal(r.json.error.code, 'bad_request');
		}
		assert.deepEqual(ids(await search('quick', '&limit=1')), [texts.fox2.id]);
		assert.equal((await search('quick', '&limit=100')).status, 200);
	});

	test('default limit is 20', async (t) => {
		const [u] = await users(1);
		const c = await open(t, u);
		const r = uniq('lim');
		await join(c, r);
		await Promise.all(Array.from({ length: 25 }, (_, i) => c.request({ type: 'send', room: r, text: `needle ${i}` })));
		const res = await search('needle', `&room=${r}`, u.token);
		assert.equal(res.json.results.length, 20);
		const sorted = [...ids(res)].sort((p, q) => q - p);
		assert.deepEqual(ids(res), sorted);
	});
});

describe('/api/rooms', () => {
	test('lists public rooms with a member count', async (t) => {
		const [a, b] = await users(2);
		const ca = await open(t, a);
		const cb = await open(t, b);
		const room = uniq('lst');
		const t0 = Date.now();
		await join(ca, room);
		await join(cb, room);
		const m = await send(ca, room, 'x');
		const r = await api(srv, 'GET', '/api/rooms', { token: b.token });
		const entry = r.json.rooms.find((x) => x.name === room);
		assert.ok(entry, 'room listed');
		assert.equal(entry.members, 2);
		assert.equal(entry.last_seq, m.seq);
		assert.ok(Math.abs(entry.created_at - t0) < 60000, `created_at ${entry.created_at} in ms`);
		await cb.request({ type: 'leave', room });
		const r2 = await api(srv, 'GET', '/api/rooms', { token: b.token });
		assert.equal(r2.json.rooms.find((x) => x.name === room).members, 1);
	});
});

describe('bad input keeps the connection usable', () => {
	test('malformed JSON, non-objects, unknown or missing type → bad_request', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		for (const raw of ['{', 'not json', '[]', '5', 'null', '"str"', '{"type":5}', '{}', '{"type":"nonsense"}', '{"type":"hello"}', '{"type":"message"}']) {
			c.send(raw);
			const e = await c.next('error');
			assert.equal(e.code, 'bad_request', raw);
			await c.fence();
		}
		const r = await c.request({ type: 'nonsense' });
		assertErr(r, 'bad_request');
		assert.equal(c.isClosed, false);
	});

	test('missing fields and wrong types on every request type', async (t) => {
		const [a, b] = await users(2);
		const c = await open(t, a);
		const room = uniq('bi');
		await join(c, room);
		const m = await send(c, room, 'x');
		const bad = [
			{ type: 'join' }, { type: 'join', room: 5 }, { type: 'join', room: null }, { type: 'join', room: ['x'] },
			{ type: 'leave' }, { type: 'leave', room: 5 },
			{ type: 'dm' }, { type: 'dm', user: 5 }, { type: 'dm', user: {} },
			{ type: 'send', room }, { type: 'send', text: 'x' }, { type: 'send', room, text: 5 }, { type: 'send', room: 5, text: 'x' }, { type: 'send', room, text: null },
			{ type: 'edit', room, text: 'x' }, { type: 'edit', room, id: m.id }, { type: 'edit', id: m.id, text: 'x' }, { type: 'edit', room, id: String(m.id), text: 'x' }, { type: 'edit', room, id: m.id, text: 5 }, { type: 'edit', room, id: 1.5, text: 'x' },
			{ type: 'delete', room }, { type: 'delete', id: m.id }, { type: 'delete', room, id: 'x' },
			{ type: 'history' }, { type: 'history', room: 5 }, { type: 'history', room, limit: 'x' },
			{ type: 'read', room }, { type: 'read', seq: 1 }, { type: 'read', room, seq: '1' },
			{ type: 'typing' }, { type: 'typing', room: 5 },
		];
		for (const req of bad) {
			const r = await c.request(req);
			assert.equal(r.type, 'error', JSON.stringify(req));
			assert.equal(r.code, 'bad_request', `${JSON.stringify(req)} → ${r.code}`);
		}
		// still usable and nothing happened
		const h = await c.request({ type: 'history', room });
		assert.deepEqual(h.messages.map((x) => [x.id, x.text]), [[m.id, 'x']]);
		void b;
	});

	test('ref: up to 64 characters echoed; longer → bad_request', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const room = uniq('ref');
		const ref64 = 'r'.repeat(64);
		const ok = await c.request({ type: 'join', room, ref: ref64 });
		assert.equal(ok.type, 'joined');
		assert.equal(ok.ref, ref64);
		c.send({ type: 'join', room, ref: 'r'.repeat(65) });
		const e = await c.next('error');
		assert.equal(e.code, 'bad_request');
		c.send({ type: 'join', room, ref: 5 });
		const e2 = await c.next((x) => x.type === 'error' || x.type === 'joined');
		assert.ok(e2.type === 'error' ? e2.code === 'bad_request' : true);
		assert.equal((await c.request({ type: 'join', room })).type, 'joined');
	});

	test('error replies carry ref, code and message', async (t) => {
		const [a] = await users(1);
		const c = await open(t, a);
		const r = await c.request({ type: 'send', room: uniq('nosuch'), text: 'x', ref: 'my-ref' });
		assert.deepEqual(Object.keys(r).sort(), ['code', 'message', 'ref', 'type']);
		assert.equal(r.ref, 'my-ref');
	});
});
