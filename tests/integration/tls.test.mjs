// TLS: HTTPS and WSS with --tls-cert/--tls-key and a self-signed cert.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import {
	startChatd, tempDir, api, newUser, uniq, rawConnect, rawWsConnect,
	wsAuth, wsHeaderAuth, join, send,
} from './lib/chatd.mjs';

let srv, cert, key;
before(async () => {
	const dir = tempDir(null, 'chatd-tls-');
	cert = path.join(dir, 'cert.pem');
	key = path.join(dir, 'key.pem');
	execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
		'-keyout', key, '-out', cert, '-days', '2', '-nodes', '-subj', '/CN=localhost',
		'-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
	srv = await startChatd({ args: ['--tls-cert', cert, '--tls-key', key], tls: true });
});
after(() => srv?.cleanup());

test('HTTPS GET /healthz, verified against the self-signed cert', async () => {
	assert.match(srv.url, /^https:/);
	const res = await new Promise((resolve, reject) => {
		https.get({ host: '127.0.0.1', port: srv.port, path: '/healthz', ca: fs.readFileSync(cert), agent: false }, (r) => {
			let body = '';
			r.on('data', (d) => { body += d; });
			r.on('end', () => resolve({ status: r.statusCode, body }));
		}).on('error', reject);
	});
	assert.equal(res.status, 200);
	assert.deepEqual(JSON.parse(res.body), { status: 'ok' });
});

test('register, login and the API over HTTPS', async () => {
	const u = await newUser(srv);
	const me = await api(srv, 'GET', '/api/me', { token: u.token });
	assert.equal(me.status, 200);
	assert.equal(me.json.user.username, u.name);
});

test('WSS: auth by message and by header, chat works', async (t) => {
	assert.match(srv.wsUrl, /^wss:/);
	const a = await newUser(srv);
	const b = await newUser(srv);
	const ca = await wsAuth(srv.wsUrl, a.token);
	const cb = await wsHeaderAuth(srv.wsUrl, b.token);
	t.after(() => ca.close());
	t.after(() => cb.close());
	const room = uniq('tls');
	await join(ca, room);
	await join(cb, room);
	const m = await send(ca, room, 'secure hello');
	const got = await cb.next((e) => e.type === 'message' && e.id === m.id);
	assert.equal(got.text, 'secure hello');
});

test('WSS Origin: https origin of the host allowed, http refused', async () => {
	const ok = await rawWsConnect(srv.port, { tls: true, origin: `https://127.0.0.1:${srv.port}` });
	ok.raw.close();
	assert.equal(ok.response.status, 101);
	const bad = await rawWsConnect(srv.port, { tls: true, origin: `http://127.0.0.1:${srv.port}` });
	bad.raw.close();
	assert.equal(bad.response.status, 403);
});

test('plain HTTP to the TLS port gets no HTTP answer and does not hurt the server', async () => {
	const raw = await rawConnect(srv.port);
	await raw.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
	await raw.closedByPeer(15000).catch(() => {});
	raw.close();
	assert.ok(!raw.data.toString('latin1').includes('"status":"ok"'));
	assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
});

test('a missing cert file → non-zero exit with a message', async () => {
	await assert.rejects(startChatd({ args: ['--tls-cert', '/nonexistent/cert.pem', '--tls-key', key], tls: true }), /exited/);
});
