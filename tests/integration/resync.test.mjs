// Resync after reconnect: `since` replays, truncation, epoch, and the
// concurrency test (PROTOCOL.md "Resync", "Delivery rules").
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	startChatd, useChatd, api, newUser, uniq, until,
	wsAuth, join, send,
} from './lib/chatd.mjs';

let srv;
before(async () => { srv = await startChatd(); });
after(() => srv.cleanup());

async function open(t, u, opts = {}, s = srv) {
	const c = await wsAuth(s.wsUrl, u.token, opts);
	t.after(() => c.close());
	return c;
}

const STORED = new Set(['message', 'edited', 'deleted']);
/** Stored events of room in c.all, in arrival order. */
const storedOf = (c, room) => c.all.filter((e) => STORED.has(e.type) && e.room === room);

/** Sends n messages pipelined (window of w); resolves to the replies in order. */
async function sendMany(c, room, n, prefix = 'm', w = 50) {
	const out = [];
	for (let i = 0; i < n; i += w) {
		const batch = [];
		for (let j = i; j < Math.min(n, i + w); j++) batch.push(c.request({ type: 'send', room, text: `${prefix}${j}` }, 30000));
		const rs = await Promise.all(batch);
		for (const r of rs) {
			if (r.type !== 'message') throw new Error(`send failed: ${JSON.stringify(r)}`);
			out.push(r);
		}
	}
	return out;
}

/** All messages of room via HTTP paging (after=), ascending. */
async function fullHistory(s, token, room) {
	const all = [];
	let after = 0;
	for (;;) {
		const r = await api(s, 'GET', `/api/rooms/${room}/messages?after=${after}&limit=100`, { token });
		assert.equal(r.status, 200, r.text);
		all.push(...r.json.messages);
		if (!r.json.has_more) break;
		after = r.json.messages[r.json.messages.length - 1].id;
	}
	return all;
}

describe('since', () => {
	test('replays message/edited/deleted once each, in seq order, then live events', async (t) => {
		const a = await newUser(srv);
		const b = await newUser(srv);
		const cb = await open(t, b);
		const room = uniq('rs');
		await join(cb, room);
		const first = await wsAuth(srv.wsUrl, a.token);
		await join(first, room);
		const m = [];
		for (let i = 1; i <= 5; i++) m[i] = await send(cb, room, `m${i}`);
		await first.next((e) => e.id === m[5].id);
		const since = m[2].seq;
		await first.close();
		// while a is away
		await cb.request({ type: 'edit', room, id: m[1].id, text: 'm1 edited' });
		const d1 = await cb.request({ type: 'delete', room, id: m[1].id });
		const e2 = await cb.request({ type: 'edit', room, id: m[2].id, text: 'm2 edited' });
		const d3 = await cb.request({ type: 'delete', room, id: m[3].id });
		await cb.request({ type: 'edit', room, id: m[4].id, text: 'm4 edit 1' });
		const e4 = await cb.request({ type: 'edit', room, id: m[4].id, text: 'm4 edit 2' });
		const m6 = await send(cb, room, 'm6');
		const strip = ({ ref, type, ...rest }) => rest;
		const expected = [
			{ type: 'message', ...strip(m[5]) },
			{ type: 'deleted', ...strip(d1) },
			{ type: 'edited', ...strip(e2) },
			{ type: 'message', ...strip(d3) },
			{ type: 'message', ...strip(e4) },
			{ type: 'message', ...strip(m6) },
		].sort((x, y) => x.seq - y.seq);
		const c = await open(t, a, { since: { [room]: since } });
		// replay
		for (const want of expected) {
			const got = await c.next((e) => STORED.has(e.type) && e.room === room);
			assert.deepEqual(got, want);
		}
		// live after replay
		const m7 = await send(cb, room, 'm7');
		const got7 = await c.next((e) => STORED.has(e.type) && e.room === room);
		assert.equal(got7.id, m7.id);
		await c.none((e) => STORED.has(e.type), 'nothing twice');
		// hello came first
		const idxHello = c.all.findIndex((e) => e.type === 'hello');
		const idxFirst = c.all.findIndex((e) => STORED.has(e.type));
		assert.ok(idxHello >= 0 && idxHello < idxFirst);
		// tombstone shape in replay
		const tomb = storedOf(c, room).find((e) => e.id === m[3].id);
		assert.equal(tomb.deleted, true);
		assert.equal(tomb.text, undefined);
	});

	test('since = last_seq replays nothing; since 0 replays everything', async (t) => {
		const a = await newUser(srv);
		const c0 = await open(t, a);
		const room = uniq('rs0');
		await join(c0, room);
		const ms = await sendMany(c0, room, 5);
		const c1 = await open(t, a, { since: { [room]: ms[4].seq } });
		await c1.none((e) => STORED.has(e.type), 'no replay when up to date');
		const c2 = await open(t, a, { since: { [room]: 0 } });
		for (const mm of ms) {
			const e = await c2.next((x) => STORED.has(x.type));
			assert.equal(e.type, 'message');
			assert.equal(e.id, mm.id);
			assert.equal(e.ref, undefined);
		}
		await c2.none((e) => STORED.has(e.type));
	});

	test('since for a room the user is not a member of, or an unknown room: nothing for it', async (t) => {
		const a = await newUser(srv);
		const b = await newUser(srv);
		const cb = await open(t, b);
		const room = uniq('rsn');
		await join(cb, room);
		await sendMany(cb, room, 3);
		const dm = await cb.request({ type: 'dm', user: (await newUser(srv)).name });
		await send(cb, dm.room, 'private');
		const c = await open(t, a, { since: { [room]: 0, [uniq('nosuch')]: 0, [dm.room]: 0 } });
		await c.none((e) => STORED.has(e.type) || e.type === 'truncated', 'no replay for non-member rooms');
	});

	test('more than 1000 changes → truncated; exactly 1000 → replayed', async (t) => {
		const a = await newUser(srv);
		const c0 = await open(t, a);
		const room = uniq('rst');
		await join(c0, room);
		const ms = await sendMany(c0, room, 1001);
		const c1 = await open(t, a, { since: { [room]: 0 } });
		const tr = await c1.next((e) => e.type === 'truncated' || STORED.has(e.type), 10000);
		assert.deepEqual(tr, { type: 'truncated', room });
		await c1.none((e) => STORED.has(e.type) && e.room === room, 'nothing replayed with truncated');
		const c2 = await open(t, a, { since: { [room]: ms[0].seq } });
		const got = [];
		for (let i = 0; i < 1000; i++) got.push(await c2.next((e) => STORED.has(e.type) || e.type === 'truncated', 10000));
		assert.deepEqual(got.map((e) => e.id), ms.slice(1).map((x) => x.id));
		await c2.none((e) => STORED.has(e.type) || e.type === 'truncated');
	});

	test('since above last_seq → truncated', async (t) => {
		const a = await newUser(srv);
		const c0 = await open(t, a);
		const room = uniq('rsa');
		await join(c0, room);
		const [m] = await sendMany(c0, room, 1);
		const c1 = await open(t, a, { since: { [room]: m.seq + 1000000 } });
		assert.deepEqual(await c1.next((e) => e.type === 'truncated' || STORED.has(e.type)), { type: 'truncated', room });
		// the empty room case: since 5 on last_seq 0
		const empty = uniq('rse');
		await join(c0, empty);
		const c2 = await open(t, a, { since: { [empty]: 5 } });
		assert.deepEqual(await c2.next((e) => e.type === 'truncated' || STORED.has(e.type)), { type: 'truncated', room: empty });
	});

	test('epoch is stable across a restart', async (t) => {
		const s = await useChatd(t);
		const a = await newUser(s);
		const c1 = await wsAuth(s.wsUrl, a.token);
		const epoch = c1.hello.epoch;
		assert.equal(typeof epoch, 'string');
		assert.ok(epoch.length > 0);
		await c1.close();
		await s.restart();
		const c2 = await wsAuth(s.wsUrl, a.token);
		assert.equal(c2.hello.epoch, epoch);
		await c2.close();
		// another database has another epoch
		const other = await useChatd(t);
		const b = await newUser(other);
		const c3 = await wsAuth(other.wsUrl, b.token);
		assert.notEqual(c3.hello.epoch, epoch);
		await c3.close();
	});
});

test('concurrency: 4 senders × 200 while a fifth client reconnects with since', async (t) => {
	const N = 200;
	const senders = await Promise.all([0, 1, 2, 3].map(() => newUser(srv)));
	const reader = await newUser(srv);
	const room = uniq('conc');
	const conns = [];
	for (const u of senders) {
		const c = await open(t, u);
		await join(c, room);
		conns.push(c);
	}
	const r1 = await wsAuth(srv.wsUrl, reader.token);
	await join(r1, room);
	const msgCount = (c) => storedOf(c, room).length;

	// every sender pipelines its messages with a window of 10
	const sendAll = async (c, k) => {
		const out = [];
		for (let i = 0; i < N; i += 10) {
			const batch = [];
			for (let j = i; j < i + 10; j++) batch.push(c.request({ type: 'send', room, text: `s${k}-${j}` }, 30000));
			for (const r of await Promise.all(batch)) {
				assert.equal(r.type, 'message', JSON.stringify(r));
				out.push(r);
			}
		}
		return out;
	};
	const sending = Promise.all(conns.map((c, k) => sendAll(c, k)));

	// the reader leaves midway
	await until(() => msgCount(r1) >= 300, { tries: 600, interval: 50, what: 'reader to see 300 messages' });
	r1.terminate();
	await r1.closed;
	const seen1 = storedOf(r1, room);
	const since = Math.max(...seen1.map((e) => e.seq));
	const r2 = await wsAuth(srv.wsUrl, reader.token, { since: { [room]: since } });
	t.after(() => r2.close());

	const sent = (await sending).flat();
	assert.equal(sent.length, 4 * N);
	const total = 4 * N;
	for (const c of conns) await until(() => msgCount(c) >= total, { tries: 600, interval: 50, what: 'a sender to have all messages' });
	await until(() => seen1.length + msgCount(r2) >= total, { tries: 600, interval: 50, what: 'the reader to have all messages' });
	await r2.fence();
	for (const c of conns) await c.fence();

	const history = await fullHistory(srv, reader.token, room);
	const historyIds = history.map((m) => m.id);
	assert.equal(historyIds.length, total);
	assert.deepEqual(historyIds, [...sent.map((m) => m.id)].sort((x, y) => x - y));

	const strictlyIncreasing = (ids, who) => {
		for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `${who}: id ${ids[i]} after ${ids[i - 1]} at ${i}`);
	};
	for (const [k, c] of conns.entries()) {
		const ids = storedOf(c, room).map((e) => e.id);
		strictlyIncreasing(ids, `sender ${k}`);
		assert.deepEqual(ids, historyIds, `sender ${k} has exactly the history`);
		// exactly its own as replies
		const own = storedOf(c, room).filter((e) => e.ref !== undefined).length;
		assert.equal(own, N, `sender ${k} replies`);
	}
	const ids1 = seen1.map((e) => e.id);
	const ids2 = storedOf(r2, room).map((e) => e.id);
	strictlyIncreasing(ids1, 'reader before');
	strictlyIncreasing(ids2, 'reader after');
	assert.ok(ids2.length === 0 || ids2[0] > since, 'replay starts after since');
	assert.deepEqual([...ids1, ...ids2], historyIds, 'reader: no gap, no duplicate');
});
