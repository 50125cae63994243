// A WebSocket client that never reads must not grow chatd without limit
// (docs/server.md, Backpressure): its input pauses above CONN_OUTPUT_LOW,
// and it is dropped once its output is over CONN_OUTPUT_HIGH, whatever
// produced the bytes; /metrics counts the drop; everyone else carries on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useChatd, api, newUser, uniq, wsAuth, join, send, rawWsConnect, encodeFrame, rssKiB } from './lib/chatd.mjs';
import { parseMetrics } from './lib/ops.mjs';

const BIG = 'x'.repeat(3990); // near the 4000-character limit
const REQUESTS = 400;         // history pages of ~400 KB each: 160 MB unchecked
const RSS_GROWTH_KIB = 64 * 1024; // CONN_OUTPUT_HIGH is 8 MiB

async function overflowDrops(srv) {
	const r = await api(srv, 'GET', '/metrics');
	assert.equal(r.status, 200);
	return parseMetrics(r.text).get('chatd_output_overflow_drops_total');
}

test('a client that sends history requests and never reads is paused, then dropped; others keep chatting', async (t) => {
	// Under ASan freed memory waits in a quarantine (256 MiB by default)
	// that RSS would count: keep it small, so RSS measures what is held.
	const asan = `${process.env.ASAN_OPTIONS ? process.env.ASAN_OPTIONS + ':' : ''}quarantine_size_mb=4`;
	const srv = await useChatd(t, { env: { ASAN_OPTIONS: asan } });
	const good = await newUser(srv, 'good');
	const bad = await newUser(srv, 'bad');
	const room = uniq('slow');
	const g = await wsAuth(srv.wsUrl, good.token);
	t.after(() => g.close());
	await join(g, room);
	for (let i = 0; i < 100; i += 20)
		await Promise.all(Array.from({ length: 20 }, (_, k) => send(g, room, `${i + k} ${BIG}`)));

	// The bad client: a raw socket that joins, then stops reading.
	const { ws } = await rawWsConnect(srv.port, { token: bad.token });
	t.after(() => ws.close());
	await ws.event('hello');
	await ws.sendText({ type: 'join', room, ref: 'j' });
	assert.equal((await ws.event((e) => e.ref === 'j')).type, 'joined');
	ws.raw.sock.pause(); // from here on nothing is read
	const base = rssKiB(srv);
	const burst = [];
	for (let i = 0; i < REQUESTS; i++)
		burst.push(encodeFrame({ opcode: 1, payload: JSON.stringify({ type: 'history', room, limit: 100, ref: `h${i}` }) }));
	ws.raw.sock.write(Buffer.concat(burst)); // the kernel and node buffer what chatd does not read
	assert.equal(await overflowDrops(srv), 0);

	// The good client chats on; its messages fan out to the bad one too,
	// until chatd drops it. chatd's memory stays bounded throughout.
	let sent = 0;
	while (await overflowDrops(srv) === 0) {
		const grown = rssKiB(srv) - base;
		assert.ok(grown < RSS_GROWTH_KIB, `chatd grew by ${grown} KiB after ${sent} messages`);
		assert.ok(sent < 20000, 'the reader that never reads was never dropped');
		await Promise.all(Array.from({ length: 20 }, () => send(g, room, `${sent++} ${BIG}`)));
	}
	assert.ok(rssKiB(srv) - base < RSS_GROWTH_KIB);
	assert.equal(await overflowDrops(srv), 1);
	// The socket was closed by chatd: reading again finds the end (after
	// whatever the kernel still held).
	ws.raw.sock.resume();
	await ws.raw.closedByPeer(30000);
	// Still chatting, and the bad user can come back and resync.
	await send(g, room, 'after the drop');
	const b = await wsAuth(srv.wsUrl, bad.token);
	t.after(() => b.close());
	const h = await b.request({ type: 'history', room, limit: 1 });
	assert.equal(h.messages[0].text, 'after the drop');
});

test('a resync replay that would not fit in 7/8 of CONN_OUTPUT_HIGH is truncated; smaller rooms replay', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const c = await wsAuth(srv.wsUrl, u.token);
	t.after(() => c.close());
	const big = uniq('big');
	const small = uniq('small');
	await join(c, big);
	await join(c, small);
	const text = 'é'.repeat(4000); // 8000 bytes: 1000 events are over 7 MiB
	for (let i = 0; i < 1000; i += 50)
		await Promise.all(Array.from({ length: 50 }, () => send(c, big, text)));
	for (let i = 0; i < 3; i++) await send(c, small, `small ${i}`);
	const r = await wsAuth(srv.wsUrl, u.token, { since: { [big]: 0, [small]: 0 } });
	t.after(() => r.close());
	assert.deepEqual(await r.next((e) => e.type === 'truncated'), { type: 'truncated', room: big });
	for (let i = 0; i < 3; i++) assert.equal((await r.next((e) => e.type === 'message' && e.room === small)).text, `small ${i}`);
	await r.none((e) => e.type === 'message' && e.room === big, 'a replay of the big room');
	assert.equal(r.isClosed, false);
});

test('one room\'s replay of 1000 changes of 4000 ASCII characters is sent in full, as the contract says', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const c = await wsAuth(srv.wsUrl, u.token);
	t.after(() => c.close());
	const room = uniq('full');
	await join(c, room);
	const text = 'a'.repeat(4000);
	for (let i = 0; i < 1000; i += 50)
		await Promise.all(Array.from({ length: 50 }, () => send(c, room, text)));
	const r = await wsAuth(srv.wsUrl, u.token, { since: { [room]: 0 } });
	t.after(() => r.close());
	let last = 0;
	for (let i = 0; i < 1000; i++) {
		const e = await r.next((x) => x.room === room && (x.type === 'message' || x.type === 'truncated'));
		assert.equal(e.type, 'message', `event ${i} is a message, not ${e.type}`);
		assert.ok(e.seq > last, 'ascending seq');
		last = e.seq;
		assert.equal(e.text.length, 4000);
	}
	assert.equal(r.isClosed, false);
});
