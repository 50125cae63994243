// WebSocket: the RFC 6455 handshake, Origin checks, authentication, frame
// level rules and close codes (PROTOCOL.md "WebSocket: GET /ws").
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	startChatd, useChatd, api, newUser, login, uniq, rand,
	wsConnect, wsAuth, wsHeaderAuth, rawWsConnect, wsAccept, encodeFrame, join, send,
} from './lib/chatd.mjs';

let srv;
before(async () => { srv = await startChatd(); });
after(() => srv.cleanup());

function assertHello(h, user) {
	assert.equal(h.type, 'hello');
	assert.deepEqual(h.user, { id: user.id, username: user.name });
	assert.equal(typeof h.epoch, 'string');
	assert.ok(h.epoch.length > 0);
	assert.ok(Array.isArray(h.rooms));
	assert.deepEqual(h.limits, { max_text_chars: 4000, max_message_bytes: 65536 });
}

describe('handshake', () => {
	test('101 with the right Sec-WebSocket-Accept', async () => {
		const { ws, response, key } = await rawWsConnect(srv.port);
		try {
			assert.equal(response.status, 101);
			assert.equal(response.headers['sec-websocket-accept'], wsAccept(key));
			assert.match(response.headers.upgrade || '', /^websocket$/i);
			assert.match(response.headers.connection || '', /upgrade/i);
		} finally {
			ws?.close();
		}
	});

	test('400 for a bad key or missing headers', async () => {
		const cases = [
			{ 'Sec-WebSocket-Key': 'abc' },
			{ 'Sec-WebSocket-Key': Buffer.alloc(15).toString('base64') },
			{ 'Sec-WebSocket-Key': Buffer.alloc(17).toString('base64') },
			{ 'Sec-WebSocket-Key': '!!!!!!!!!!!!!!!!!!!!!!==' },
			{ 'Sec-WebSocket-Key': null },
			{ Upgrade: null },
			{ Upgrade: 'h2c' },
			{ Connection: null },
			{ Connection: 'keep-alive' },
		];
		for (const headers of cases) {
			const { ws, response, raw } = await rawWsConnect(srv.port, { headers });
			raw.close();
			assert.equal(ws, null);
			assert.equal(response.status, 400, `${JSON.stringify(headers)} → ${response.status}`);
		}
		// Connection listing several tokens including Upgrade is fine
		const ok = await rawWsConnect(srv.port, { headers: { Connection: 'keep-alive, Upgrade' } });
		ok.raw.close();
		assert.equal(ok.response.status, 101);
	});

	test('426 with Sec-WebSocket-Version: 13 for another version', async () => {
		for (const v of ['8', null]) {
			const { response, raw } = await rawWsConnect(srv.port, { headers: { 'Sec-WebSocket-Version': v } });
			raw.close();
			if (v === null) {
				assert.ok([400, 426].includes(response.status), `missing version → ${response.status}`);
				continue;
			}
			assert.equal(response.status, 426);
			assert.equal(response.headers['sec-websocket-version'], '13');
		}
	});

	test('Origin: matching and absent allowed, mismatching and null refused with 403', async () => {
		const port = srv.port;
		const allowed = [undefined, `http://127.0.0.1:${port}`];
		for (const origin of allowed) {
			const { response, raw } = await rawWsConnect(port, { origin });
			raw.close();
			assert.equal(response.status, 101, `origin ${origin} → ${response.status}`);
		}
		const same = await rawWsConnect(port, { origin: `http://localhost:${port}`, host: `localhost:${port}` });
		same.raw.close();
		assert.equal(same.response.status, 101, 'localhost origin with localhost Host');
		const refused = ['null', 'http://evil.example', `https://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`, `http://localhost:${port}`, 'http://127.0.0.1'];
		for (const origin of refused) {
			const { response, raw } = await rawWsConnect(port, { origin });
			raw.close();
			assert.equal(response.status, 403, `origin ${origin} → ${response.status}`);
		}
		// through the ws library too
		await assert.rejects(wsConnect(srv.wsUrl, { origin: 'http://evil.example' }), (e) => e.status === 403);
	});

	test('--origin adds an allowed origin', async (t) => {
		const s = await useChatd(t, { args: ['--origin', 'http://app.example:3000'] });
		const ok = await rawWsConnect(s.port, { origin: 'http://app.example:3000' });
		ok.raw.close();
		assert.equal(ok.response.status, 101);
		const own = await rawWsConnect(s.port, { origin: `http://127.0.0.1:${s.port}` });
		own.raw.close();
		assert.equal(own.response.status, 101);
		const bad = await rawWsConnect(s.port, { origin: 'http://app.example:3001' });
		bad.raw.close();
		assert.equal(bad.response.status, 403);
	});
});

describe('authentication', () => {
	test('by header: hello right after the upgrade', async () => {
		const u = await newUser(srv);
		const c = await wsConnect(srv.wsUrl, { token: u.token });
		try {
			const h = await c.next('hello');
			assertHello(h, u);
			assert.deepEqual(h.rooms, []);
			// the connection works
			const j = await c.request({ type: 'join', room: uniq('r') });
			assert.equal(j.type, 'joined');
		} finally {
			await c.close();
		}
	});

	test('by header: a bad token → 401, no upgrade', async () => {
		const u = await newUser(srv);
		for (const token of ['bogus', `${u.token}x`]) {
			await assert.rejects(wsConnect(srv.wsUrl, { token }), (e) => e.status === 401);
		}
		const { response, raw } = await rawWsConnect(srv.port, { token: 'bogus' });
		raw.close();
		assert.equal(response.status, 401);
	});

	test('by first message: hello with ref, epoch, limits', async () => {
		const u = await newUser(srv);
		const c = await wsConnect(srv.wsUrl);
		try {
			const ref = `auth-${rand()}`;
			c.send({ type: 'auth', token: u.token, ref });
			const h = await c.next('hello');
			assert.equal(h.ref, ref);
			assertHello(h, u);
			// epoch is the same for every connection to this database
			const c2 = await wsAuth(srv.wsUrl, u.token);
			assert.equal(c2.hello.epoch, h.epoch);
			await c2.close();
		} finally {
			await c.close();
		}
	});

	test('auth with an empty since is fine', async () => {
		const u = await newUser(srv);
		const c = await wsAuth(srv.wsUrl, u.token, { since: {} });
		assertHello(c.hello, u);
		await c.close();
	});

	test('any other first message → error unauthorized, close 1008', async () => {
		const u = await newUser(srv);
		const firsts = [
			{ type: 'join', room: 'general' },
			{ type: 'history', room: 'general' },
			{ type: 'bogus' },
			{ token: u.token },
			'not json',
			'[]',
		];
		for (const first of firsts) {
			const c = await wsConnect(srv.wsUrl);
			c.send(first);
			const e = await c.next('error');
			assert.equal(e.code, 'unauthorized');
			const { code } = await c.waitClose();
			assert.equal(code, 1008, `first ${JSON.stringify(first)}`);
		}
	});

	test('auth with a bad token → error unauthorized, close 1008', async () => {
		const u = await newUser(srv);
		for (const token of ['bogus', `${u.token}x`, '', 42, null]) {
			const c = await wsConnect(srv.wsUrl);
			c.send({ type: 'auth', token });
			const e = await c.next('error');
			assert.equal(e.code, 'unauthorized');
			assert.equal((await c.waitClose()).code, 1008);
		}
	});

	test('auth with a revoked token → 1008', async () => {
		const u = await newUser(srv);
		await api(srv, 'POST', '/api/logout', { token: u.token });
		const c = await wsConnect(srv.wsUrl);
		c.send({ type: 'auth', token: u.token });
		assert.equal((await c.next('error')).code, 'unauthorized');
		assert.equal((await c.waitClose()).code, 1008);
	});

	test('auth with a malformed since → error unauthorized, close 1008', async () => {
		const u = await newUser(srv);
		const bad = [[], 'x', 5, { general: -1 }, { general: '5' }, { general: 1.5 }, { general: null }, { general: [1] }, { general: {} }];
		for (const since of bad) {
			const c = await wsConnect(srv.wsUrl);
			c.send({ type: 'auth', token: u.token, since });
			const e = await c.next(() => true);
			assert.equal(e.type, 'error', `since ${JSON.stringify(since)} → ${JSON.stringify(e).slice(0, 80)}`);
			assert.equal(e.code, 'unauthorized', `since ${JSON.stringify(since)}`);
			assert.equal((await c.waitClose()).code, 1008, `since ${JSON.stringify(since)}`);
		}
	});

	test('no auth message within 10 s → error unauthorized, close 1008', async () => {
		const c = await wsConnect(srv.wsUrl);
		const t0 = Date.now();
		const e = await c.next('error', 16000);
		assert.equal(e.code, 'unauthorized');
		assert.equal((await c.waitClose()).code, 1008);
		const dt = Date.now() - t0;
		assert.ok(dt >= 9000, `closed after ${dt} ms, before the 10 s`);
	});

	test('a second auth message on an authenticated connection is an error, connection stays', async () => {
		const u = await newUser(srv);
		const c = await wsAuth(srv.wsUrl, u.token);
		try {
			const r = await c.request({ type: 'auth', token: u.token });
			assert.equal(r.type, 'error');
			assert.equal(typeof r.code, 'string');
			assert.ok(!c.isClosed || c.closeCode === 1008);
		} finally {
			await c.close();
		}
	});
});

describe('frames', () => {
	async function rawAuthed() {
		const u = await newUser(srv);
		const { ws, response } = await rawWsConnect(srv.port, { token: u.token });
		assert.equal(response.status, 101);
		await ws.event('hello');
		return { ws, u };
	}

	test('a binary message → close 1003', async () => {
		const u = await newUser(srv);
		const c = await wsHeaderAuth(srv.wsUrl, u.token);
		c.sendBinary(Buffer.from('{"type":"join","room":"x"}'));
		assert.equal((await c.waitClose()).code, 1003);
	});

	test('invalid UTF-8 in a text message → close 1007', async () => {
		const cases = [
			[Buffer.from([0x7b, 0xff, 0x7d])],
			[Buffer.from([0xc3, 0x28])],
			[Buffer.from([0xed, 0xa0, 0x80])], // a surrogate
			[Buffer.from([0xf4, 0x90, 0x80, 0x80])], // above U+10FFFF
			[Buffer.from([0xc0, 0xaf])], // overlong
		];
		for (const [payload] of cases) {
			const { ws } = await rawAuthed();
			try {
				await ws.sendFrame({ opcode: 1, payload });
				const f = await ws.closeFrame();
				assert.equal(f.code, 1007, `payload ${payload.toString('hex')}`);
			} finally {
				ws.close();
			}
		}
	});

	test('valid UTF-8 split across fragments is fine; invalid across fragments → 1007', async () => {
		const { ws } = await rawAuthed();
		try {
			const msg = Buffer.from(JSON.stringify({ type: 'history', room: 'fragé-x', ref: 'frag1' }));
			const cut = msg.indexOf(Buffer.from('é')) + 1; // inside the 2-byte é
			await ws.sendFrame({ opcode: 1, fin: false, payload: msg.subarray(0, cut) });
			await ws.sendFrame({ opcode: 0, fin: false, payload: msg.subarray(cut, cut + 3) });
			await ws.sendFrame({ opcode: 0, fin: true, payload: msg.subarray(cut + 3) });
			const r = await ws.event((e) => e.ref === 'frag1');
			assert.equal(r.type, 'error');
			assert.equal(r.code, 'invalid_room');
			await ws.sendFrame({ opcode: 1, fin: false, payload: Buffer.from([0x22, 0xe2, 0x82]) });
			await ws.sendFrame({ opcode: 0, fin: true, payload: Buffer.from([0x28, 0x22]) });
			assert.equal((await ws.closeFrame()).code, 1007);
		} finally {
			ws.close();
		}
	});

	test('a message of exactly 65536 bytes is accepted; 65537 → close 1009', async () => {
		const u = await newUser(srv);
		const c = await wsHeaderAuth(srv.wsUrl, u.token);
		const room = uniq('big');
		await join(c, room);
		const mk = (n) => {
			const head = `{"type":"send","room":"${room}","ref":"big","text":"`;
			const tail = '"}';
			const s = head + 'x'.repeat(n - head.length - tail.length) + tail;
			assert.equal(Buffer.byteLength(s), n);
			return s;
		};
		c.send(mk(65536));
		const r = await c.next((e) => e.ref === 'big');
		assert.equal(r.type, 'error');
		assert.equal(r.code, 'too_long');
		await c.fence();
		c.send(mk(65537));
		assert.equal((await c.waitClose()).code, 1009);
	});

	test('a fragmented message over 65536 bytes → close 1009', async () => {
		const { ws } = await rawAuthed();
		try {
			const part = Buffer.alloc(30000, 0x61);
			await ws.sendFrame({ opcode: 1, fin: false, payload: part });
			await ws.sendFrame({ opcode: 0, fin: false, payload: part });
			await ws.sendFrame({ opcode: 0, fin: true, payload: Buffer.alloc(5537, 0x61) });
			assert.equal((await ws.closeFrame()).code, 1009);
		} finally {
			ws.close();
		}
	});

	test('an unmasked client frame → close 1002', async () => {
		const { ws } = await rawAuthed();
		try {
			await ws.sendFrame({ opcode: 1, payload: '{"type":"history","room":"x"}', mask: false });
			assert.equal((await ws.closeFrame()).code, 1002);
		} finally {
			ws.close();
		}
	});

	test('other protocol violations → close 1002', async () => {
		const violations = [
			[{ opcode: 1, payload: '{}', rsv: 4 }],
			[{ opcode: 3, payload: 'x' }],
			[{ opcode: 0xb, payload: 'x' }],
			[{ opcode: 0, payload: 'x' }], // continuation without a start
			[{ opcode: 9, fin: false, payload: 'x' }], // fragmented control frame
			[{ opcode: 9, payload: Buffer.alloc(126) }], // control frame too long
			[{ opcode: 1, fin: false, payload: '{' }, { opcode: 1, payload: '}' }], // new message inside a fragmented one
			[{ opcode: 8, payload: Buffer.from([0x03]) }], // 1-byte close payload
		];
		for (const frames of violations) {
			const { ws } = await rawAuthed();
			try {
				for (const f of frames) await ws.sendFrame(f);
				const c = await ws.closeFrame();
				assert.equal(c.code, 1002, `frames ${JSON.stringify(frames.map((f) => ({ ...f, payload: String(f.payload).slice(0, 8) })))}`);
			} finally {
				ws.close();
			}
		}
	});

	test('ping → pong with the same payload, also between fragments', async () => {
		const { ws } = await rawAuthed();
		try {
			await ws.sendFrame({ opcode: 9, payload: 'hello-ping' });
			const p = await ws.frameWhere((f) => f.opcode === 10);
			assert.equal(p.payload.toString(), 'hello-ping');
			assert.equal(p.masked, false);
			await ws.sendFrame({ opcode: 9, payload: Buffer.alloc(0) });
			const p0 = await ws.frameWhere((f) => f.opcode === 10);
			assert.equal(p0.payload.length, 0);
			const bin = Buffer.from(Array.from({ length: 125 }, (_, i) => i));
			await ws.sendFrame({ opcode: 9, payload: bin });
			assert.deepEqual((await ws.frameWhere((f) => f.opcode === 10)).payload, bin);
			// a ping in the middle of a fragmented message
			const msg = JSON.stringify({ type: 'history', room: 'bad room', ref: 'mid' });
			await ws.sendFrame({ opcode: 1, fin: false, payload: msg.slice(0, 10) });
			await ws.sendFrame({ opcode: 9, payload: 'mid-ping' });
			assert.equal((await ws.frameWhere((f) => f.opcode === 10)).payload.toString(), 'mid-ping');
			await ws.sendFrame({ opcode: 0, fin: true, payload: msg.slice(10) });
			const r = await ws.event((e) => e.ref === 'mid');
			assert.equal(r.code, 'invalid_room');
			// an unsolicited pong is ignored
			await ws.sendFrame({ opcode: 10, payload: 'unsolicited' });
			await ws.sendText({ type: 'history', room: 'bad room', ref: 'after-pong' });
			assert.equal((await ws.event((e) => e.ref === 'after-pong')).code, 'invalid_room');
		} finally {
			ws.close();
		}
	});

	test('close handshake: the server echoes the close frame and closes TCP', async () => {
		const { ws } = await rawAuthed();
		try {
			const payload = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]);
			await ws.sendFrame({ opcode: 8, payload });
			const f = await ws.closeFrame();
			assert.equal(f.code, 1000);
			assert.equal(f.masked, false);
			await ws.raw.closedByPeer();
		} finally {
			ws.close();
		}
		// an empty close frame is echoed too (1000 or no code)
		const { ws: ws2 } = await rawAuthed();
		try {
			await ws2.sendFrame({ opcode: 8 });
			const f = await ws2.closeFrame();
			assert.ok([1000, 1005].includes(f.code), `code ${f.code}`);
			await ws2.raw.closedByPeer();
		} finally {
			ws2.close();
		}
		// through the ws library: normal close
		const u = await newUser(srv);
		const c = await wsHeaderAuth(srv.wsUrl, u.token);
		const { code } = await c.close(1000, 'done');
		assert.equal(code, 1000);
	});

	test('a fragmented request is answered', async () => {
		const { ws } = await rawAuthed();
		try {
			const room = uniq('frag');
			const msg = JSON.stringify({ type: 'join', room, ref: 'fj' });
			await ws.sendFrame({ opcode: 1, fin: false, payload: msg.slice(0, 5) });
			await ws.sendFrame({ opcode: 0, fin: false, payload: '' });
			await ws.sendFrame({ opcode: 0, fin: false, payload: msg.slice(5, 12) });
			await ws.sendFrame({ opcode: 0, fin: true, payload: msg.slice(12) });
			const r = await ws.event((e) => e.ref === 'fj');
			assert.equal(r.type, 'joined');
			assert.equal(r.room, room);
		} finally {
			ws.close();
		}
	});

	test('requests written byte by byte are answered', async () => {
		const u = await newUser(srv);
		const { ws } = await rawWsConnect(srv.port, { token: u.token });
		try {
			await ws.event('hello');
			const frame = encodeFrame({ opcode: 1, payload: JSON.stringify({ type: 'join', room: uniq('b'), ref: 'bb' }) });
			for (const b of frame) await ws.write(Buffer.from([b]));
			assert.equal((await ws.event((e) => e.ref === 'bb')).type, 'joined');
		} finally {
			ws.close();
		}
	});
});

describe('close codes', () => {
	test('logout closes the token\'s sockets with 4001, not the others', async () => {
		const u = await newUser(srv);
		const other = await login(srv, u.name, u.pw);
		const a1 = await wsHeaderAuth(srv.wsUrl, u.token);
		const a2 = await wsAuth(srv.wsUrl, u.token);
		const b = await wsAuth(srv.wsUrl, other);
		try {
			const r = await api(srv, 'POST', '/api/logout', { token: u.token });
			assert.equal(r.status, 204);
			assert.equal((await a1.waitClose()).code, 4001);
			assert.equal((await a2.waitClose()).code, 4001);
			await b.fence();
			assert.equal(b.isClosed, false);
		} finally {
			await b.close();
		}
	});

	test('server SIGTERM → clients get 1001, exit code 0', async (t) => {
		const s = await useChatd(t);
		const u = await newUser(s);
		const c1 = await wsHeaderAuth(s.wsUrl, u.token);
		const c2 = await wsAuth(s.wsUrl, u.token);
		const room = uniq('term');
		await join(c1, room);
		await send(c1, room, 'before shutdown');
		const code = await s.stop();
		assert.equal((await c1.waitClose()).code, 1001);
		assert.equal((await c2.waitClose()).code, 1001);
		assert.equal(code, 0);
	});
});
