// Version 2 messages: mentions (fields and the per-member count), reactions
// (events, ordering, idempotency, resync), replies (reply_to) and around
// paging, over WebSocket and HTTP (PROTOCOL.md "Mentions and notification
// levels", "Reactions", "Replies and jumping to a message", "Version 2:
// details").
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	startChatd, api, newUser, uniq, wsAuth, join, send, openWs, usersInRoom,
} from './lib/chatd.mjs';

let srv;
before(async () => { srv = await startChatd(); });
after(() => srv.cleanup());

const open = (t, u, opts) => openWs(t, srv, u, opts);
/** n users, each with one connection, all in a fresh room. */
const roomOf = (t, n, prefix = 'v2') => usersInRoom(t, srv, n, prefix);

const stateOf = (hello, room) => hello.rooms.find((r) => r.name === room);

describe('mentions', () => {
	test('message fields: sorted, once, members only, @room apart', async (t) => {
		const { room, users: [a, b, c] } = await roomOf(t, 3);
		const outsider = await newUser(srv);
		const text = `hi @${c.name.toUpperCase()} and @${b.name}, @${b.name}. @${outsider.name} @nobody`;
		const m = await send(a.c, room, text);
		assert.deepEqual(m.mentions, [b.name, c.name].sort());
		assert.equal(m.mention_room, undefined);
		const r = await send(a.c, room, `@ROOM look @${b.name}`);
		assert.equal(r.mention_room, true);
		assert.deepEqual(r.mentions, [b.name]);
		const plain = await send(a.c, room, 'mail bob@example.com');
		assert.equal(plain.mentions, undefined);
		assert.equal(plain.mention_room, undefined);
		// The other members get the same fields.
		const seen = await b.c.next((e) => e.type === 'message' && e.id === r.id);
		assert.equal(seen.mention_room, true);
		assert.deepEqual(seen.mentions, [b.name]);
	});

	test('the char before @ is tested case-insensitively; trailing dots and dashes', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const none = await send(a.c, room, `X@${b.name} x@${b.name} _@${b.name} .@${b.name}`);
		assert.equal(none.mentions, undefined);
		const yes = await send(a.c, room, `(@${b.name})… ¡@${b.name}! @${b.name}--. é@${b.name}`);
		assert.deepEqual(yes.mentions, [b.name]);
	});

	test('room states count unread mentions across reconnects, read, edit and delete', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		await b.c.close();
		const m1 = await send(a.c, room, `@${b.name} one`);
		const m2 = await send(a.c, room, '@room two');
		await send(a.c, room, 'three, no mention');
		const m4 = await send(a.c, room, `@${b.name} @room four`);
		// a's own mentions never count for a.
		await send(a.c, room, `@${a.name} self`);
		let c1 = await open(t, b);
		assert.equal(stateOf(c1.hello, room).mentions, 3);
		assert.equal(stateOf(c1.hello, room).unread, 5);
		let ca = await open(t, a);
		assert.equal(stateOf(ca.hello, room).mentions, 0);
		await ca.close();
		// Reconnecting changes nothing.
		await c1.close();
		c1 = await open(t, b);
		assert.equal(stateOf(c1.hello, room).mentions, 3);
		// An edit that drops the mention, a delete, a read.
		await a.c.request({ type: 'edit', room, id: m1.id, text: 'one, no longer' });
		await c1.close();
		c1 = await open(t, b);
		assert.equal(stateOf(c1.hello, room).mentions, 2);
		await a.c.request({ type: 'delete', room, id: m2.id });
		await c1.close();
		c1 = await open(t, b);
		assert.equal(stateOf(c1.hello, room).mentions, 1);
		const rd = await c1.request({ type: 'read', room, seq: m4.id });
		assert.equal(rd.type, 'read');
		await c1.close();
		c1 = await open(t, b);
		assert.equal(stateOf(c1.hello, room).mentions, 0);
		// An edit that adds a mention counts again; /api/me agrees.
		const m6 = await send(a.c, room, 'six');
		await a.c.request({ type: 'edit', room, id: m6.id, text: `six @${b.name}` });
		const me = await api(srv, 'GET', '/api/me', { token: b.token });
		assert.equal(me.status, 200);
		assert.equal(stateOf(me.json, room).mentions, 1);
	});

	test('a user named room is mentioned only by mention_room', async (t) => {
		const { room, users: [a] } = await roomOf(t, 1);
		const m = await send(a.c, room, '@room hello');
		assert.equal(m.mention_room, true);
		assert.equal(m.mentions, undefined);
	});
});

describe('reactions', () => {
	test('react: reply with ref, event to every other connection, seq moves, edited_ts does not', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const a2 = await open(t, a);
		const m = await send(a.c, room, 'react to me');
		await b.c.next((e) => e.type === 'message' && e.id === m.id);
		await a2.next((e) => e.type === 'message' && e.id === m.id);
		const r = await b.c.request({ type: 'react', room, id: m.id, emoji: '👍' });
		assert.equal(r.type, 'reaction');
		assert.equal(r.id, m.id);
		assert.ok(r.seq > m.seq);
		assert.equal(r.edited_ts, undefined);
		assert.equal(r.text, 'react to me');
		assert.deepEqual(r.reactions, [{ emoji: '👍', count: 1, users: [b.name] }]);
		for (const c of [a.c, a2]) {
			const e = await c.next((x) => x.type === 'reaction' && x.seq === r.seq);
			assert.equal(e.ref, undefined);
			assert.deepEqual(e.reactions, r.reactions);
		}
		await b.c.none((e) => e.type === 'reaction', 'the reactor got a second copy');
		// It shows in history.
		const h = await a.c.request({ type: 'history', room, limit: 1 });
		assert.deepEqual(h.messages[0].reactions, r.reactions);
		assert.equal(h.messages[0].seq, r.seq);
	});

	test('orders: emojis by first reaction, users in order, re-added to the end, 0 leaves', async (t) => {
		const { room, users: [a, b, c] } = await roomOf(t, 3);
		const m = await send(a.c, room, 'order');
		await a.c.request({ type: 'react', room, id: m.id, emoji: '👍' });
		await b.c.request({ type: 'react', room, id: m.id, emoji: '❤️' });
		await c.c.request({ type: 'react', room, id: m.id, emoji: '👍' });
		let r = await b.c.request({ type: 'react', room, id: m.id, emoji: '👍' });
		assert.deepEqual(r.reactions, [
			{ emoji: '👍', count: 3, users: [a.name, c.name, b.name] },
			{ emoji: '❤️', count: 1, users: [b.name] },
		]);
		// a removes and adds again: to the end of 👍's users; 👍 keeps its place.
		await a.c.request({ type: 'react', room, id: m.id, emoji: '👍', on: false });
		r = await a.c.request({ type: 'react', room, id: m.id, emoji: '👍', on: true });
		assert.deepEqual(r.reactions[0], { emoji: '👍', count: 3, users: [c.name, b.name, a.name] });
		// ❤️ falls to 0 and leaves; added again it goes to the end.
		r = await b.c.request({ type: 'react', room, id: m.id, emoji: '❤️', on: false });
		assert.deepEqual(r.reactions.map((x) => x.emoji), ['👍']);
		await c.c.request({ type: 'react', room, id: m.id, emoji: 'x' });
		r = await b.c.request({ type: 'react', room, id: m.id, emoji: '❤️' });
		assert.deepEqual(r.reactions.map((x) => x.emoji), ['👍', 'x', '❤️']);
		// Every reaction gone: no reactions field.
		for (const [u, e] of [[a, '👍'], [b, '👍'], [c, '👍'], [c, 'x']]) await u.c.request({ type: 'react', room, id: m.id, emoji: e, on: false });
		r = await b.c.request({ type: 'react', room, id: m.id, emoji: '❤️', on: false });
		assert.equal(r.reactions, undefined);
	});

	test('a no-op reaction: the reply in the current state, nothing stored or sent', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const m = await send(a.c, room, 'noop');
		const r1 = await a.c.request({ type: 'react', room, id: m.id, emoji: '🎉' });
		await b.c.next((e) => e.type === 'reaction' && e.seq === r1.seq);
		const r2 = await a.c.request({ type: 'react', room, id: m.id, emoji: '🎉' });
		assert.equal(r2.type, 'reaction');
		assert.equal(r2.seq, r1.seq);
		assert.deepEqual(r2.reactions, r1.reactions);
		const r3 = await b.c.request({ type: 'react', room, id: m.id, emoji: '🎉', on: false });
		assert.equal(r3.seq, r1.seq);
		assert.deepEqual(r3.reactions, r1.reactions);
		await b.c.none((e) => e.type === 'reaction' && e.ref === undefined, 'event for a no-op');
		const h = await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: a.token });
		assert.equal(h.json.messages.at(-1).seq, r1.seq);
		assert.equal(stateOf((await api(srv, 'GET', '/api/me', { token: a.token })).json, room).last_seq, r1.seq);
	});

	test('errors: bad emoji, on, id; not_member; not_found for missing, deleted, other room', async (t) => {
		const { room, users: [a] } = await roomOf(t, 1);
		const other = uniq('v2o');
		await join(a.c, other);
		const m = await send(a.c, room, 'target');
		const o = await send(a.c, other, 'elsewhere');
		const bad = ['', 'a b', 'x'.repeat(33), 'tab\t', 'nl\n', '\u0007', 'nb\u00a0sp', '\u3000', 7, null];
		for (const emoji of bad) {
			const r = await a.c.request({ type: 'react', room, id: m.id, emoji });
			assert.equal(r.code, 'bad_request', JSON.stringify(emoji));
		}
		const ok = await a.c.request({ type: 'react', room, id: m.id, emoji: '🇫🇷' });
		assert.equal(ok.type, 'reaction');
		const ok32 = await a.c.request({ type: 'react', room, id: m.id, emoji: 'y'.repeat(32) });
		assert.equal(ok32.type, 'reaction');
		assert.equal((await a.c.request({ type: 'react', room, id: m.id, emoji: '👍', on: 'yes' })).code, 'bad_request');
		assert.equal((await a.c.request({ type: 'react', room, id: 'x', emoji: '👍' })).code, 'bad_request');
		assert.equal((await a.c.request({ type: 'react', room, id: 99999999, emoji: '👍' })).code, 'not_found');
		assert.equal((await a.c.request({ type: 'react', room, id: o.id, emoji: '👍' })).code, 'not_found');
		await a.c.request({ type: 'delete', room, id: m.id });
		assert.equal((await a.c.request({ type: 'react', room, id: m.id, emoji: '👍' })).code, 'not_found');
		const stranger = await newUser(srv);
		const sc = await open(t, stranger);
		assert.equal((await sc.request({ type: 'react', room, id: m.id, emoji: '👍' })).code, 'not_member');
		assert.equal((await sc.request({ type: 'react', room: uniq('none'), id: m.id, emoji: '👍' })).code, 'no_such_room');
	});

	test('a tombstone has no reactions, mentions or reply_to', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const first = await send(a.c, room, 'first');
		const m = await send(a.c, room, `@${b.name} @room`, { reply_to: first.id });
		await b.c.request({ type: 'react', room, id: m.id, emoji: '👍' });
		const d = await a.c.request({ type: 'delete', room, id: m.id });
		assert.equal(d.type, 'deleted');
		for (const k of ['reactions', 'mentions', 'mention_room', 'reply_to', 'text']) assert.equal(d[k], undefined, k);
	});

	test('resync replays a reaction as edited (created before since) or in the message', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const m1 = await send(a.c, room, 'one');
		await b.c.next((e) => e.id === m1.id);
		const since = m1.seq;
		await b.c.close();
		const r1 = await a.c.request({ type: 'react', room, id: m1.id, emoji: '👀' });
		const m2 = await send(a.c, room, 'two');
		const r2 = await a.c.request({ type: 'react', room, id: m2.id, emoji: '👀' });
		const c = await open(t, b, { since: { [room]: since } });
		const got = await c.fence();
		const stored = got.filter((e) => e.room === room && ['message', 'edited', 'deleted', 'reaction'].includes(e.type));
		assert.deepEqual(stored.map((e) => [e.type, e.id, e.seq]), [
			['edited', m1.id, r1.seq],
			['message', m2.id, r2.seq],
		]);
		assert.deepEqual(stored[0].reactions, r1.reactions);
		assert.equal(stored[0].edited_ts, undefined);
		assert.deepEqual(stored[1].reactions, r2.reactions);
	});

	test('idempotent resend and search carry reactions', async (t) => {
		const { room, users: [a] } = await roomOf(t, 1);
		const m = await send(a.c, room, 'findable reactions here', { client_msg_id: `cm-${room}` });
		const r = await a.c.request({ type: 'react', room, id: m.id, emoji: '🔥' });
		const again = await a.c.request({ type: 'send', room, text: 'findable reactions here', client_msg_id: `cm-${room}` });
		assert.equal(again.type, 'message');
		assert.deepEqual(again.reactions, r.reactions);
		assert.equal(again.seq, r.seq);
		const s = await api(srv, 'GET', `/api/search?q=findable&room=${room}`, { token: a.token });
		assert.equal(s.status, 200);
		assert.deepEqual(s.json.results[0].reactions, r.reactions);
	});
});

describe('replies', () => {
	test('reply_to: stored and shown; errors', async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const other = uniq('v2r');
		await join(a.c, other);
		const m = await send(a.c, room, 'question');
		const r = await send(b.c, room, 'answer', { reply_to: m.id });
		assert.equal(r.reply_to, m.id);
		const seen = await a.c.next((e) => e.type === 'message' && e.id === r.id);
		assert.equal(seen.reply_to, m.id);
		assert.equal(m.reply_to, undefined);
		const h = await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: a.token });
		assert.equal(h.json.messages.at(-1).reply_to, m.id);
		const o = await send(a.c, other, 'elsewhere');
		assert.equal((await b.c.request({ type: 'send', room, text: 'x', reply_to: o.id })).code, 'not_found');
		assert.equal((await b.c.request({ type: 'send', room, text: 'x', reply_to: 99999999 })).code, 'not_found');
		// 0 and negative ids name no message: not_found, not a plain send
		assert.equal((await b.c.request({ type: 'send', room, text: 'x', reply_to: 0 })).code, 'not_found');
		assert.equal((await b.c.request({ type: 'send', room, text: 'x', reply_to: -1 })).code, 'not_found');
		assert.equal((await b.c.request({ type: 'send', room, text: 'x', reply_to: 'one' })).code, 'bad_request');
		await a.c.request({ type: 'delete', room, id: m.id });
		assert.equal((await b.c.request({ type: 'send', room, text: 'x', reply_to: m.id })).code, 'not_found');
		// The v1 order of errors stays: not a member first.
		const stranger = await newUser(srv);
		const sc = await open(t, stranger);
		assert.equal((await sc.request({ type: 'send', room, text: 'x', reply_to: 99999999 })).code, 'not_member');
	});
});

describe('around', () => {
	/** A room with n messages; resolves to their ids. */
	async function filled(t, n) {
		const { room, users: [a] } = await roomOf(t, 1, 'v2a');
		const ids = [];
		for (let i = 0; i < n; i++) ids.push((await send(a.c, room, `m${i}`)).id);
		return { room, a, ids };
	}
	const ids = (page) => page.messages.map((m) => m.id);

	test('HTTP and WebSocket: the page, its flags, no has_more', async (t) => {
		const { room, a, ids: all } = await filled(t, 12);
		const cases = [
			// [around index, limit, expected slice, before, after]
			[6, 5, [4, 9], true, true],
			[6, 4, [5, 9], true, true],
			[0, 5, [0, 5], false, true],
			[1, 5, [0, 5], false, true],
			[11, 5, [9, 12], true, false],
			[11, 1, [11, 12], true, false],
			[6, 2, [6, 8], true, true],
			[6, 100, [0, 12], false, false],
		];
		for (const [i, limit, [lo, hi], hb, ha] of cases) {
			const want = all.slice(lo, hi);
			const h = await api(srv, 'GET', `/api/rooms/${room}/messages?around=${all[i]}&limit=${limit}`, { token: a.token });
			assert.equal(h.status, 200);
			assert.deepEqual(ids(h.json), want, `HTTP around ${i} limit ${limit}`);
			assert.equal(h.json.has_more_before, hb);
			assert.equal(h.json.has_more_after, ha);
			assert.equal('has_more' in h.json, false);
			assert.equal(h.json.room, room);
			const w = await a.c.request({ type: 'history', room, around: all[i], limit });
			assert.equal(w.type, 'history');
			assert.deepEqual(ids(w), want, `WS around ${i} limit ${limit}`);
			assert.equal(w.has_more_before, hb);
			assert.equal(w.has_more_after, ha);
			assert.equal('has_more' in w, false);
		}
		// The default limit (50) holds the whole room.
		const d = await api(srv, 'GET', `/api/rooms/${room}/messages?around=${all[3]}`, { token: a.token });
		assert.deepEqual(ids(d.json), all);
	});

	test('an id that is not a message: nearest smaller and larger', async (t) => {
		const { room, a, ids: all } = await filled(t, 6);
		// Ids of the room are not contiguous when another room's messages interleave.
		const { room: other, a: b } = await filled(t, 1);
		void other; void b;
		const more = [];
		for (let i = 0; i < 4; i++) more.push((await send(a.c, room, `n${i}`)).id);
		const every = [...all, ...more];
		const gap = more[0] - 1; // the other room's message: not in this room
		assert.ok(!every.includes(gap));
		const h = await api(srv, 'GET', `/api/rooms/${room}/messages?around=${gap}&limit=4`, { token: a.token });
		// 1 smaller (⌊3/2⌋), then the 3 nearest larger.
		assert.deepEqual(ids(h.json), [all[5], ...more.slice(0, 3)]);
		assert.equal(h.json.has_more_before, true);
		assert.equal(h.json.has_more_after, true);
		const big = await a.c.request({ type: 'history', room, around: 10 ** 12, limit: 5 });
		assert.deepEqual(ids(big), every.slice(-2));
		assert.equal(big.has_more_before, true);
		assert.equal(big.has_more_after, false);
		const zero = await a.c.request({ type: 'history', room, around: 0, limit: 3 });
		assert.deepEqual(ids(zero), every.slice(0, 3));
		assert.equal(zero.has_more_before, false);
		assert.equal(zero.has_more_after, true);
	});

	test('around with before or after, or a bad value: 400 / bad_request', async (t) => {
		const { room, a, ids: all } = await filled(t, 2);
		for (const q of [`around=${all[0]}&before=5`, `around=${all[0]}&after=0`, 'around=-1', 'around=x', `around=${all[0]}&limit=0`]) {
			const h = await api(srv, 'GET', `/api/rooms/${room}/messages?${q}`, { token: a.token });
			assert.equal(h.status, 400, q);
			assert.equal(h.json.error.code, 'bad_request');
		}
		for (const extra of [{ before: 5 }, { after: 0 }, { limit: 101 }]) {
			const r = await a.c.request({ type: 'history', room, around: all[0], ...extra });
			assert.equal(r.code, 'bad_request', JSON.stringify(extra));
		}
		assert.equal((await a.c.request({ type: 'history', room, around: -3 })).code, 'bad_request');
		assert.equal((await a.c.request({ type: 'history', room, around: 'x' })).code, 'bad_request');
	});
});
