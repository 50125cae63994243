// Hardening (issue 13): an expired token's WebSocket closes with 4001; a
// stalled TLS handshake is closed after the header timeout; a NUL inside
// a string used as a C string is rejected; duplicate JSON keys are
// rejected over HTTP as over the WebSocket; a send racing `chatd room del`
// answers no_such_room, never internal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
	useChatd, tempDir, api, newUser, uniq, wsAuth, wsConnect, join, send,
	rawConnect, rawRequest,
} from './lib/chatd.mjs';
import { chatdOk } from './lib/ops.mjs';

test('an authenticated WebSocket closes with 4001 when its token expires', async (t) => {
	// --token-days takes fractions: 0.00004 days is about 3.5 s.
	const srv = await useChatd(t, { args: ['--token-days', '0.00004'] });
	const u = await newUser(srv);
	const c = await wsAuth(srv.wsUrl, u.token);
	t.after(() => c.close());
	const room = uniq('exp');
	await join(c, room);
	const closed = await c.waitClose(15000);
	assert.equal(closed.code, 4001);
	assert.match(closed.reason, /expired/);
	const me = await api(srv, 'GET', '/api/me', { token: u.token });
	assert.equal(me.status, 401);
});

test('a TLS handshake that stalls is closed after the header timeout', async (t) => {
	const dir = tempDir(t, 'chatd-tls-');
	const cert = path.join(dir, 'cert.pem');
	const key = path.join(dir, 'key.pem');
	execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
		'-keyout', key, '-out', cert, '-days', '2', '-nodes', '-subj', '/CN=localhost'], { stdio: 'ignore' });
	// The idle timeout is long: only the header timeout can close these.
	const srv = await useChatd(t, { args: ['--tls-cert', cert, '--tls-key', key, '--header-timeout', '1', '--idle-timeout', '60'], tls: true });
	const silent = await rawConnect(srv.port);
	const half = await rawConnect(srv.port);
	t.after(() => { silent.close(); half.close(); });
	// Half a ClientHello: a TLS record header announcing 512 bytes, then 5.
	await half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]));
	const t0 = Date.now();
	await silent.closedByPeer(10000);
	await half.closedByPeer(10000);
	assert.ok(Date.now() - t0 < 8000, 'closed by the 1 s header timeout, not the 60 s idle one');
});

test('a NUL inside type, auth type or token is rejected, not cut', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const c = await wsAuth(srv.wsUrl, u.token);
	t.after(() => c.close());
	const room = uniq('nul');
	await join(c, room);
	const r = await c.request({ type: 'send\u0000x', room, text: 'cut?' });
	assert.equal(r.type, 'error');
	assert.equal(r.code, 'bad_request');
	const h = await c.request({ type: 'history', room });
	assert.equal(h.messages.length, 0);

	for (const auth of [{ type: 'auth', token: `${u.token}\u0000junk` }, { type: 'auth\u0000x', token: u.token }]) {
		const w = await wsConnect(srv.wsUrl);
		const e = await w.request(auth);
		assert.equal(e.type, 'error');
		assert.equal(e.code, 'unauthorized');
		assert.equal((await w.waitClose()).code, 1008);
	}
	// Over HTTP the credentials are length-aware too.
	const bad = await api(srv, 'POST', '/api/login', { body: { username: `${u.name}\u0000x`, password: u.pw } });
	assert.equal(bad.status, 401);
});

test('duplicate JSON keys: 400 bad_request over HTTP, bad_request over the WebSocket', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	for (const p of ['/api/login', '/api/register']) {
		const r = await api(srv, 'POST', p, {
			raw: `{"username":"${u.name}","password":"${u.pw}","password":"${u.pw}"}`,
			headers: { 'Content-Type': 'application/json' },
		});
		assert.equal(r.status, 400, `${p}: ${r.text}`);
		assert.equal(r.json.error.code, 'bad_request');
	}
	const c = await wsAuth(srv.wsUrl, u.token);
	t.after(() => c.close());
	c.send('{"type":"history","type":"history","room":"x"}');
	assert.equal((await c.next('error')).code, 'bad_request');
});

test('sends racing `chatd room del` answer no_such_room, never internal', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv);
	const c = await wsAuth(srv.wsUrl, u.token);
	t.after(() => c.close());
	for (let round = 0; round < 4; round++) {
		const room = uniq('del');
		await join(c, room);
		await Promise.all(Array.from({ length: 200 }, (_, i) => send(c, room, `before ${i}`)));
		// Sends keep coming, in batches, while the admin deletes the room.
		let deleted = false;
		const del = chatdOk(['--db', srv.dbPath, 'room', 'del', room]).then(() => { deleted = true; });
		const codes = new Set();
		for (let after = 0; after < 3;) {
			const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => c.request({ type: 'send', room, text: `during ${i}` })));
			for (const r of replies) {
				assert.ok(r.type === 'message' || (r.type === 'error' && r.code === 'no_such_room'), JSON.stringify(r));
				codes.add(r.type === 'message' ? 'message' : r.code);
			}
			if (deleted) after++;
		}
		await del;
		assert.ok(codes.has('no_such_room'));
		const last = await c.request({ type: 'send', room, text: 'after' });
		assert.equal(last.code, 'no_such_room');
	}
});
