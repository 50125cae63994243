// An attacker's pass over the version 2 requests (issue 13's rule: a client
// that never reads, floods, sends hostile names or sizes, or races itself):
// what one member can make a message, a room or a request cost everyone
// else, and what hostile values get. docs/operations.md "Limits and abuse".
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	startChatd, api, newUser, uniq, wsAuth, join, send, openWs, usersInRoom,
} from './lib/chatd.mjs';

// The caps of storage/storage.h (docs/protocol.md 7.2).
const USER_MAX = 20;
const EMOJIS_MAX = 50;

let srv;
before(async () => { srv = await startChatd(); });
after(() => srv.cleanup());

const open = (t, u, opts) => openWs(t, srv, u, opts);
/** n users, each with one connection, all in a fresh room. */
const roomOf = (t, n, prefix = 'ab') => usersInRoom(t, srv, n, prefix);

const react = (u, room, id, emoji, on = true) =>
	u.c.request({ type: 'react', room, id, emoji, on });

describe('reactions are bounded per message', () => {
	test(`one user: at most ${USER_MAX} reactions on a message; removing always works`, async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const m = await send(a.c, room, 'flood me');
		let last;
		for (let i = 0; i < USER_MAX; i++) {
			last = await react(b, room, m.id, `e${i}`);
			assert.equal(last.type, 'reaction', JSON.stringify(last));
		}
		const over = await react(b, room, m.id, 'one-more');
		assert.equal(over.type, 'error');
		assert.equal(over.code, 'too_large');
		assert.match(over.message, new RegExp(`${USER_MAX}`));
		// Nothing stored or sent: the seq did not move, nobody heard of it.
		await a.c.fence();
		const h = await a.c.request({ type: 'history', room, around: m.id, limit: 1 });
		assert.equal(h.messages[0].seq, last.seq);
		assert.equal(h.messages[0].reactions.length, USER_MAX);
		// One the user has: the usual no-op reply, not an error.
		const again = await react(b, room, m.id, 'e0');
		assert.equal(again.type, 'reaction');
		assert.equal(again.seq, last.seq);
		// Removing at the cap works, and makes room for one.
		const off = await react(b, room, m.id, 'e5', false);
		assert.equal(off.type, 'reaction');
		assert.equal(off.reactions.length, USER_MAX - 1);
		const now = await react(b, room, m.id, 'one-more');
		assert.equal(now.type, 'reaction');
		assert.equal(now.reactions.at(-1).emoji, 'one-more');
		// Other users are not held back by b's cap.
		assert.equal((await react(a, room, m.id, 'mine')).type, 'reaction');
	});

	test(`a message: at most ${EMOJIS_MAX} different emojis`, async (t) => {
		const { room, users } = await roomOf(t, 4);
		const m = await send(users[0].c, room, 'a wall of emojis');
		for (let i = 0; i < EMOJIS_MAX; i++) {
			const r = await react(users[Math.floor(i / USER_MAX)], room, m.id, `x${i}`);
			assert.equal(r.type, 'reaction', JSON.stringify(r));
		}
		const over = await react(users[3], room, m.id, 'x-new');
		assert.equal(over.code, 'too_large');
		assert.match(over.message, new RegExp(`${EMOJIS_MAX}`));
		// An emoji already there is still welcome.
		const same = await react(users[3], room, m.id, 'x7');
		assert.equal(same.type, 'reaction');
		assert.equal(same.reactions.length, EMOJIS_MAX);
		assert.equal(same.reactions.find((r) => r.emoji === 'x7').count, 2);
		// An emoji that falls to 0 makes room.
		await react(users[0], room, m.id, 'x0', false);
		const now = await react(users[3], room, m.id, 'x-new');
		assert.equal(now.type, 'reaction');
		assert.equal(now.reactions.length, EMOJIS_MAX);
	});
});

/** A request that must fail with code. */
async function fails(c, req, code) {
	const r = await c.request(req);
	assert.equal(r.type, 'error', `${JSON.stringify(req)} -> ${JSON.stringify(r)}`);
	assert.equal(r.code, code, `${JSON.stringify(req)} -> ${JSON.stringify(r)}`);
	return r;
}

describe('roles and moderation under races and floods', () => {
	test('two owners demoting each other at once: one wins, an owner stays', async (t) => {
		const { room, users: [a, b, w] } = await roomOf(t, 3);
		await a.c.request({ type: 'role', room, user: b.name, role: 'owner' });
		await b.c.fence();
		const [ra, rb] = await Promise.all([
			a.c.request({ type: 'role', room, user: b.name, role: 'member' }),
			b.c.request({ type: 'role', room, user: a.name, role: 'member' }),
		]);
		const won = [ra, rb].filter((r) => r.type === 'role');
		assert.equal(won.length, 1, `${JSON.stringify(ra)} ${JSON.stringify(rb)}`);
		const lost = ra.type === 'role' ? rb : ra;
		assert.equal(lost.code, 'forbidden');
		const j = await w.c.request({ type: 'join', room });
		assert.deepEqual(Object.values(j.roles), ['owner']);
		// The last owner may demote themself (docs/protocol.md 6): the
		// room is then without an owner, and nobody can give roles.
		const owner = ra.type === 'role' ? a : b;
		const d = await owner.c.request({ type: 'role', room, user: owner.name, role: 'member' });
		assert.equal(d.role, 'member');
		await fails(owner.c, { type: 'role', room, user: owner.name, role: 'owner' }, 'forbidden');
	});

	test('a kicked and banned user: every in-flight request after the kick finds no membership', async (t) => {
		const { room, users: [o, v] } = await roomOf(t, 2);
		const mine = await send(v.c, room, 'mine');
		const theirs = await send(o.c, room, 'theirs');
		await v.c.fence();
		const k = await o.c.request({ type: 'kick', room, user: v.name, ban: true });
		assert.equal(k.type, 'kicked');
		await v.c.next('left');
		await o.c.fence();
		const reqs = [
			[{ type: 'send', room, text: 'x' }, 'not_member'],
			[{ type: 'react', room, id: theirs.id, emoji: '👎' }, 'not_member'],
			[{ type: 'edit', room, id: mine.id, text: 'edited' }, 'not_member'],
			[{ type: 'delete', room, id: mine.id }, 'not_member'],
			[{ type: 'read', room, seq: theirs.seq }, 'not_member'],
			[{ type: 'notify', room, level: 'none' }, 'not_member'],
			[{ type: 'invite', room, user: v.name }, 'not_member'],
			[{ type: 'topic', room, topic: 'mine now' }, 'not_member'],
			[{ type: 'kick', room, user: o.name }, 'not_member'],
			[{ type: 'unban', room, user: v.name }, 'not_member'],
			[{ type: 'role', room, user: v.name, role: 'owner' }, 'not_member'],
			[{ type: 'history', room }, 'forbidden'],
			[{ type: 'history', room, around: theirs.id }, 'forbidden'],
			[{ type: 'join', room }, 'forbidden'],
		];
		// All at once, as a client that does not wait for replies.
		const rs = await Promise.all(reqs.map(([r]) => v.c.request(r)));
		rs.forEach((r, i) => {
			assert.equal(r.type, 'error', `${JSON.stringify(reqs[i][0])} -> ${JSON.stringify(r)}`);
			assert.equal(r.code, reqs[i][1], `${JSON.stringify(reqs[i][0])} -> ${JSON.stringify(r)}`);
		});
		v.c.send({ type: 'typing', room });
		const evs = await o.c.fence();
		assert.deepEqual(evs.filter((e) => e.room === room), [], 'the owner heard nothing from the banned user');
		const h = await o.c.request({ type: 'history', room, around: mine.id, limit: 3 });
		const m = h.messages.find((x) => x.id === mine.id);
		assert.equal(m.text, 'mine');
		assert.equal(h.messages.find((x) => x.id === theirs.id).reactions, undefined);
		const r = await api(srv, 'GET', `/api/rooms/${room}/messages?around=${mine.id}`, { token: v.token });
		assert.equal(r.status, 403);
	});
});

describe('hostile values', () => {
	test('topic: NUL, non-strings, 251 code points refused; 250 astral code points fit', async (t) => {
		const { room, users: [o] } = await roomOf(t, 1);
		await fails(o.c, { type: 'topic', room, topic: 'a\u0000b' }, 'bad_request');
		await fails(o.c, { type: 'topic', room, topic: 5 }, 'bad_request');
		await fails(o.c, { type: 'topic', room, topic: null }, 'bad_request');
		await fails(o.c, { type: 'topic', room, topic: ['x'] }, 'bad_request');
		await fails(o.c, { type: 'topic', room, topic: '😀'.repeat(251) }, 'too_long');
		await fails(o.c, { type: 'create', room: uniq('c'), topic: 'x\u0000' }, 'bad_request');
		await fails(o.c, { type: 'create', room: uniq('c'), topic: 'y'.repeat(251) }, 'too_long');
		const ok = await o.c.request({ type: 'topic', room, topic: '😀'.repeat(250) });
		assert.equal(ok.topic, '😀'.repeat(250));
	});

	test('notify: only all, mentions or none, exactly', async (t) => {
		const { room, users: [o] } = await roomOf(t, 1);
		for (const level of ['ALL', 'All', '', ' all', 'all\u0000', 0, 1, true, null, ['all'], { all: 1 }]) {
			await fails(o.c, { type: 'notify', room, level }, 'bad_request');
		}
		const me = await api(srv, 'GET', '/api/me', { token: o.token });
		assert.equal(me.json.rooms.find((x) => x.name === room).notify, 'all');
	});

	test('around never shows another room\'s message, whatever the id', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const priv = uniq('p');
		await b.c.request({ type: 'create', room: priv, kind: 'private' });
		const pub = await send(a.c, room, 'public');
		const secret = await send(b.c, priv, 'secret');
		const after = await send(a.c, room, 'public 2');
		for (const around of [secret.id, secret.id - 1, 2 ** 53, Number.MAX_SAFE_INTEGER]) {
			const h = await a.c.request({ type: 'history', room, around, limit: 100 });
			assert.equal(h.type, 'history', JSON.stringify(h));
			assert.ok(h.messages.every((m) => m.room === room && m.text !== 'secret'), JSON.stringify(h.messages));
		}
		const h = await a.c.request({ type: 'history', room, around: secret.id, limit: 3 });
		assert.deepEqual(h.messages.map((m) => m.id), [pub.id, after.id]);
		for (const q of [secret.id, '9223372036854775807', '99999999999999999999']) {
			const r = await api(srv, 'GET', `/api/rooms/${room}/messages?around=${q}`, { token: a.token });
			assert.equal(r.status, 200, `${q}: ${r.status}`);
			assert.ok(r.json.messages.every((m) => m.room === room), q);
		}
		// The private room itself: forbidden to a non-member, by any id.
		await fails(a.c, { type: 'history', room: priv, around: secret.id }, 'forbidden');
		assert.equal((await api(srv, 'GET', `/api/rooms/${priv}/messages?around=${secret.id}`, { token: a.token })).status, 403);
		// reply_to another room's message: not_found, nothing about it shown.
		const r = await fails(a.c, { type: 'send', room, text: 'x', reply_to: secret.id }, 'not_found');
		assert.ok(!JSON.stringify(r).includes('secret'));
	});

	test('GET /api/users: hostile prefixes and limits', async (t) => {
		const u = await newUser(srv);
		for (const q of ['%00', 'a%00', '%ZZ', '%', `${'a'.repeat(33)}`, "'%20OR%201=1--", '%25', '_', '%C3%A9', '%7f']) {
			const r = await api(srv, 'GET', `/api/users?q=${q}`, { token: u.token });
			assert.equal(r.status, 200, `${q}: ${r.status}`);
			assert.deepEqual(r.json.users, [], q);
		}
		for (const limit of ['0', '101', '-1', '1e3', '99999999999999999999', '%00', '']) {
			const r = await api(srv, 'GET', `/api/users?limit=${limit}`, { token: u.token });
			assert.equal(r.status, 400, `limit=${limit}: ${r.status}`);
			assert.equal(r.json.error.code, 'bad_request');
		}
		assert.equal((await api(srv, 'GET', '/api/users?q=a')).status, 401);
	});
});
