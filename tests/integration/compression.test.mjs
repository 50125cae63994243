// permessage-deflate (RFC 7692, PROTOCOL.md "Compression"): the answer to
// an offer, compressed replies and fan-out, Node ws clients that compress
// everything they send, the inflated-size cap, bad deflate data, and
// --ws-compression off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	useChatd, api, newUser, wsConnect, wsAuth, join, send, uniq,
	rawWsConnect, deflateMessage, encodeFrame,
} from './lib/chatd.mjs';
import { parseMetrics } from './lib/ops.mjs';

const ANSWER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const OFFER = 'permessage-deflate; client_max_window_bits';
const FORCE = { threshold: 0 }; // ws compresses every message it sends

/** A raw WebSocket (offering deflate when offer is set), authenticated. */
async function rawAuth(t, srv, token, offer) {
	const headers = offer ? { 'Sec-WebSocket-Extensions': offer } : {};
	const { ws, response } = await rawWsConnect(srv.port, { headers });
	assert.equal(response.status, 101);
	t.after(() => ws.close());
	await ws.sendText({ type: 'auth', token, ref: 'a' });
	const hello = await ws.event('hello');
	return { ws, response, hello };
}

async function metrics(srv) {
	return parseMetrics((await api(srv, 'GET', '/metrics')).text);
}

test('the answer to offers: accepted, declined, malformed', async (t) => {
	const srv = await useChatd(t);
	const cases = [
		[OFFER, ANSWER],
		['permessage-deflate', ANSWER],
		['permessage-deflate; client_max_window_bits=10', `${ANSWER}; client_max_window_bits=10`],
		['permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=15',
			`${ANSWER}; server_max_window_bits=15`],
		['permessage-deflate; bogus', undefined],
		['permessage-deflate; client_max_window_bits=16', undefined],
		['permessage-deflate; "', undefined],
		['x-webkit-deflate-frame', undefined],
		[undefined, undefined],
	];
	for (const [offer, want] of cases) {
		const headers = offer === undefined ? {} : { 'Sec-WebSocket-Extensions': offer };
		const { ws, response } = await rawWsConnect(srv.port, { headers });
		assert.equal(response.status, 101, `offer ${offer}`);
		assert.equal(response.headers['sec-websocket-extensions'], want, `offer ${offer}`);
		ws.close();
	}
	// Offers in two header lines: the first acceptable wins.
	const { ws, response, raw } = await rawWsConnect(srv.port, {
		headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; nope\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12' },
	});
	assert.equal(response.headers['sec-websocket-extensions'], `${ANSWER}; client_max_window_bits=12`);
	(ws || raw).close();
});

test('a big history page arrives compressed and intact', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const room = uniq('zh');
	const writer = await wsAuth(srv.wsUrl, u.token);
	t.after(() => writer.close());
	await join(writer, room);
	const texts = [];
	for (let i = 0; i < 40; i++) {
		texts.push(`message ${i}: ${'the quick brown fox jumps over the lazy dog '.repeat(1 + (i % 5))}`);
		await send(writer, room, texts[i]);
	}
	const m0 = await metrics(srv);
	const { ws, hello } = await rawAuth(t, srv, u.token, OFFER);
	assert.equal(hello.type, 'hello');
	await ws.sendText({ type: 'history', room, limit: 40, ref: 'h' });
	const f = await ws.frameWhere((x) => x.opcode === 1 && x.json && x.json.ref === 'h');
	assert.equal(f.rsv, 4, 'RSV1 set: compressed');
	assert.ok(f.payload.length * 3 < f.inflated.length, `${f.payload.length} bytes for ${f.inflated.length}`);
	assert.equal(f.json.type, 'history');
	assert.deepEqual(f.json.messages.map((m) => m.text).sort(), texts.slice().sort());
	// The same page through ws with compression on, and without.
	for (const deflate of [FORCE, false]) {
		const c = await wsAuth(srv.wsUrl, u.token, { deflate });
		const r = await c.request({ type: 'history', room, limit: 40 });
		assert.deepEqual(r.messages, f.json.messages);
		await c.close();
	}
	const m1 = await metrics(srv);
	assert.ok(m1.get('chatd_ws_deflate_frames_total') > m0.get('chatd_ws_deflate_frames_total'));
	assert.ok(m1.get('chatd_ws_deflate_sent_bytes_total') - m0.get('chatd_ws_deflate_sent_bytes_total')
		< m1.get('chatd_ws_deflate_plain_bytes_total') - m0.get('chatd_ws_deflate_plain_bytes_total'));
});

test('fan-out: the compressing recipient gets RSV1 frames, the other plain ones', async (t) => {
	const srv = await useChatd(t);
	const [a, b, c] = await Promise.all([newUser(srv), newUser(srv), newUser(srv)]);
	const room = uniq('zf');
	const zb = await rawAuth(t, srv, b.token, OFFER);
	const pc = await rawAuth(t, srv, c.token, undefined);
	for (const x of [zb, pc]) {
		await x.ws.sendText({ type: 'join', room, ref: 'j' });
		await x.ws.event((e) => e && e.ref === 'j');
	}
	// Node ws clients, one compressing everything it sends.
	const ca = await wsAuth(srv.wsUrl, a.token, { deflate: FORCE });
	t.after(() => ca.close());
	await join(ca, room);
	const long = `long ${'abcdefghij'.repeat(60)}`;
	await send(ca, room, long);
	await send(ca, room, 'short');
	const isMsg = (text) => (f) => f.opcode === 1 && f.json && f.json.type === 'message' && f.json.text === text;
	const zl = await zb.ws.frameWhere(isMsg(long));
	const pl = await pc.ws.frameWhere(isMsg(long));
	assert.equal(zl.rsv, 4);
	assert.equal(pl.rsv, 0);
	assert.deepEqual(zl.json, pl.json);
	// Under WS_DEFLATE_MIN: plain for both.
	assert.equal((await zb.ws.frameWhere(isMsg('short'))).rsv, 0);
	assert.equal((await pc.ws.frameWhere(isMsg('short'))).rsv, 0);
	// A Node ws client receiving with compression gets it intact too.
	const cb = await wsAuth(srv.wsUrl, b.token, { deflate: FORCE });
	t.after(() => cb.close());
	await send(ca, room, `${long} again`);
	assert.equal((await cb.next({ type: 'message', text: `${long} again` })).room, room);
});

test('client-compressed frames, fragmented, with a ping between', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const room = uniq('zc');
	const { ws } = await rawAuth(t, srv, u.token, OFFER);
	const body = deflateMessage(JSON.stringify({ type: 'join', room, ref: 'j1' }));
	await ws.write(Buffer.concat([
		encodeFrame({ opcode: 1, rsv: 4, fin: false, payload: body.subarray(0, 5) }),
		encodeFrame({ opcode: 9, payload: 'p' }),
		encodeFrame({ opcode: 0, fin: true, payload: body.subarray(5) }),
	]));
	assert.equal((await ws.frameWhere((f) => f.opcode === 10)).payload.toString(), 'p');
	assert.equal((await ws.event((e) => e && e.ref === 'j1')).type, 'joined');
	// Uncompressed messages still work on the same connection.
	await ws.sendText({ type: 'send', room, text: 'plain', ref: 's1' });
	assert.equal((await ws.event((e) => e && e.ref === 's1')).text, 'plain');
});

test('a small frame inflating past the cap closes 1009', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const { ws } = await rawAuth(t, srv, u.token, OFFER);
	const bomb = deflateMessage(Buffer.alloc(10 << 20, 0x20));
	assert.ok(bomb.length < 20000);
	await ws.sendFrame({ opcode: 1, rsv: 4, payload: bomb });
	assert.equal((await ws.closeFrame()).code, 1009);
});

test('invalid deflate data closes 1007; RSV1 on a control frame 1002', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const x = await rawAuth(t, srv, u.token, OFFER);
	await x.ws.sendFrame({ opcode: 1, rsv: 4, payload: Buffer.from([0xff, 0xff, 0xff]) });
	assert.equal((await x.ws.closeFrame()).code, 1007);
	const y = await rawAuth(t, srv, u.token, OFFER);
	await y.ws.sendFrame({ opcode: 9, rsv: 4, payload: 'x' });
	assert.equal((await y.ws.closeFrame()).code, 1002);
});

test('--ws-compression off declines every offer', async (t) => {
	const srv = await useChatd(t, { args: ['--ws-compression', 'off'] });
	const u = await newUser(srv);
	const { ws, response } = await rawAuth(t, srv, u.token, OFFER);
	assert.equal(response.headers['sec-websocket-extensions'], undefined);
	// Node ws copes: it sends and gets plain frames.
	const c = await wsConnect(srv.wsUrl, { token: u.token, deflate: FORCE });
	t.after(() => c.close());
	assert.equal((await c.next('hello')).type, 'hello');
	const room = uniq('zo');
	await join(c, room);
	await send(c, room, 'x'.repeat(1000));
	// RSV1 without the extension is a protocol error.
	await ws.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage('{"type":"ping"}') });
	assert.equal((await ws.closeFrame()).code, 1002);
});
