// HTTP: static files, the JSON API's shapes and errors, and the parser's
// handling of odd, oversized, pipelined and slow requests (PROTOCOL.md "HTTP").
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
	startChatd, useChatd, tempDir, api, register, login, newUser, uniq, rand,
	rawConnect, rawRequest, isErrorBody, pace, WEB_DIR,
} from './lib/chatd.mjs';

function assertError(r, status, code, label = '') {
	assert.equal(r.status, status, `${label} status ${r.status} ${r.text}`);
	assert.ok(isErrorBody(r.json, code), `${label} error body with code ${code}: ${r.text}`);
}

const INDEX = `<!doctype html><title>chatd test ${rand()}</title>`;
const SECRET = `top-secret-${rand(16)}`;

// A web root of our own (so the test doesn't depend on the real page), a
// secret file next to it and symlinks pointing out of it.
function makeWebRoot(t) {
	const base = tempDir(t, 'chatd-web-');
	const web = path.join(base, 'web');
	fs.mkdirSync(path.join(web, 'sub'), { recursive: true });
	fs.writeFileSync(path.join(web, 'index.html'), INDEX);
	fs.writeFileSync(path.join(web, 'app.js'), 'console.log("hi");\n');
	fs.writeFileSync(path.join(web, 'style.css'), 'body { color: red; }\n');
	fs.writeFileSync(path.join(web, 'sub', 'inner.txt'), 'inner\n');
	fs.writeFileSync(path.join(base, 'secret.txt'), SECRET);
	fs.symlinkSync(path.join(base, 'secret.txt'), path.join(web, 'link.txt'));
	fs.symlinkSync(base, path.join(web, 'linkdir'));
	return web;
}

describe('static files', () => {
	let srv;
	before(async () => {
		const web = makeWebRoot(null);
		srv = await startChatd({ webDir: web });
	});
	after(() => srv.cleanup());

	test('GET / serves index.html as text/html', async () => {
		const r = await api(srv, 'GET', '/');
		assert.equal(r.status, 200);
		assert.match(r.headers['content-type'] || '', /^text\/html/);
		assert.equal(r.text, INDEX);
	});

	test('Content-Type of .js and .css', async () => {
		const js = await api(srv, 'GET', '/app.js');
		assert.equal(js.status, 200);
		assert.match(js.headers['content-type'] || '', /^(text|application)\/javascript/);
		const css = await api(srv, 'GET', '/style.css');
		assert.equal(css.status, 200);
		assert.match(css.headers['content-type'] || '', /^text\/css/);
		const sub = await api(srv, 'GET', '/sub/inner.txt');
		assert.equal(sub.status, 200);
		assert.equal(sub.text, 'inner\n');
	});

	test('conditional GET answers 304 (ETag or Last-Modified)', async () => {
		const r = await api(srv, 'GET', '/app.js');
		assert.equal(r.status, 200);
		const etag = r.headers.etag;
		const lm = r.headers['last-modified'];
		assert.ok(etag || lm, 'ETag or Last-Modified present');
		if (etag) {
			const c = await api(srv, 'GET', '/app.js', { headers: { 'If-None-Match': etag } });
			assert.equal(c.status, 304);
			assert.equal(c.text, '');
		}
		if (lm) {
			const c = await api(srv, 'GET', '/app.js', { headers: { 'If-Modified-Since': lm } });
			assert.equal(c.status, 304);
		}
		if (etag) {
			const c = await api(srv, 'GET', '/app.js', { headers: { 'If-None-Match': '"not-the-etag"' } });
			assert.equal(c.status, 200);
		}
	});

	test('missing file → 404', async () => {
		const r = await api(srv, 'GET', `/nope-${rand()}.html`);
		assert.equal(r.status, 404);
	});

	test('path traversal is refused', async () => {
		const targets = [
			'/../secret.txt',
			'/sub/../../secret.txt',
			'/%2e%2e/secret.txt',
			'/%2E%2E/secret.txt',
			'/sub/%2e%2e/%2e%2e/secret.txt',
			'/..%2fsecret.txt',
			'/%2e%2e%2fsecret.txt',
			'/sub%2f..%2f..%2fsecret.txt',
			'/..\\secret.txt',
			'/link.txt',
			'/linkdir/secret.txt',
			'/secret.txt%00.html',
		];
		for (const target of targets) {
			const [res] = await rawRequest(srv.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
			assert.ok([400, 403, 404].includes(res.status), `${target}: status ${res.status}`);
			assert.ok(!res.text.includes(SECRET), `${target}: leaked the file`);
		}
	});
});

test('GET / on the real web root serves the chat page', async (t) => {
	const srv = await useChatd(t);
	const r = await api(srv, 'GET', '/');
	assert.equal(r.status, 200);
	assert.match(r.headers['content-type'] || '', /^text\/html/);
	assert.equal(r.text, fs.readFileSync(path.join(WEB_DIR, 'index.html'), 'utf8'));
});

describe('API', () => {
	let srv;
	before(async () => { srv = await startChatd(); });
	after(() => srv.cleanup());

	test('GET /healthz → 200 {"status":"ok"}', async () => {
		const r = await api(srv, 'GET', '/healthz');
		assert.equal(r.status, 200);
		assert.deepEqual(r.json, { status: 'ok' });
	});

	test('GET /metrics → 200 text/plain', async () => {
		const r = await api(srv, 'GET', '/metrics');
		assert.equal(r.status, 200);
		assert.match(r.headers['content-type'] || '', /^text\/plain/);
		// Prometheus exposition: comment or "name value" lines.
		for (const line of r.text.split('\n').filter(Boolean)) {
			assert.match(line, /^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eE]+(Inf|NaN)?( \d+)?|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [+-]?(Inf|NaN))$/, `metrics line ${line}`);
		}
	});

	test('register → 201 {"user":{"id","username"}}', async () => {
		const name = uniq('reg');
		const r = await api(srv, 'POST', '/api/register', { body: { username: name, password: 'password1' } });
		assert.equal(r.status, 201, r.text);
		assert.equal(typeof r.json.user.id, 'number');
		assert.ok(Number.isInteger(r.json.user.id));
		assert.equal(r.json.user.username, name);
		assert.deepEqual(Object.keys(r.json).sort(), ['user']);
	});

	test('register folds upper case; names are case-insensitive', async () => {
		const name = uniq('up');
		const r = await api(srv, 'POST', '/api/register', { body: { username: name.toUpperCase(), password: 'password1' } });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.user.username, name);
		const dup = await api(srv, 'POST', '/api/register', { body: { username: name, password: 'password2' } });
		assert.equal(dup.status, 409);
		assert.ok(isErrorBody(dup.json, 'username_taken'), dup.text);
		const dup2 = await api(srv, 'POST', '/api/register', { body: { username: `${name[0].toUpperCase()}${name.slice(1)}`, password: 'password2' } });
		assertError(dup2, 409, 'username_taken');
		// login with upper case works too
		const li = await api(srv, 'POST', '/api/login', { body: { username: name.toUpperCase(), password: 'password1' } });
		assert.equal(li.status, 200, li.text);
		assert.equal(li.json.user.username, name);
	});

	test('register: valid edge names', async () => {
		for (const name of [`${rand(1).replace(/[^a-z0-9]/, 'a')}`, `9${rand(7)}`, `a.b-c_${rand(4)}`, 'x'.repeat(24) + rand(8)]) {
			const r = await api(srv, 'POST', '/api/register', { body: { username: name, password: 'password1' } });
			assert.ok(r.status === 201 || (r.status === 409 && name.length === 1), `${name}: ${r.status} ${r.text}`);
		}
	});

	test('register: invalid_username', async () => {
		const bad = ['', 'a'.repeat(33), 'a b', 'a/b', '.abc', '-abc', '_abc', 'ab:c', 'äbc', 'ab@c', 'a\nb', 'ab+c', 'ab\u0000c'];
		for (const username of bad) {
			const r = await api(srv, 'POST', '/api/register', { body: { username, password: 'password1' } });
			assertError(r, 400, 'invalid_username', JSON.stringify(username));
		}
		const r32 = await api(srv, 'POST', '/api/register', { body: { username: 'a'.repeat(24) + rand(8), password: 'password1' } });
		assert.equal(r32.status, 201, r32.text);
	});

	test('register: invalid_password counts bytes (8–256)', async () => {
		const cases = [
			['1234567', 400],
			['a'.repeat(257), 400],
			['ééé' + 'a', 400], // 7 bytes, 4 characters
			['12345678', 201],
			['a'.repeat(256), 201],
			['éééé', 201], // 8 bytes
			['é'.repeat(128), 201], // 256 bytes
			['é'.repeat(128) + 'a', 400], // 257 bytes, 129 characters
		];
		for (const [password, status] of cases) {
			const r = await api(srv, 'POST', '/api/register', { body: { username: uniq('pw'), password } });
			if (status === 400) assertError(r, 400, 'invalid_password', `${Buffer.byteLength(password)} bytes`);
			else assert.equal(r.status, 201, `${Buffer.byteLength(password)} bytes: ${r.text}`);
		}
	});

	test('register: bad_request for malformed JSON, wrong types, missing fields, non-object', async () => {
		const raws = [
			'{"username": "abc", "password": ',
			'not json',
			'',
			'[]',
			'"string"',
			'null',
			'42',
			'{"username": 42, "password": "password1"}',
			'{"username": "abcdef", "password": 12345678}',
			'{"username": ["abc"], "password": "password1"}',
			'{"username": null, "password": "password1"}',
			'{"username": "abcdef"}',
			'{"password": "password1"}',
			'{}',
			'{"username": "abc\udc00", "password": "password1"',
		];
		for (const raw of raws) {
			const r = await api(srv, 'POST', '/api/register', { raw, headers: { 'Content-Type': 'application/json' } });
			assertError(r, 400, 'bad_request', JSON.stringify(raw));
		}
		// invalid UTF-8 in the body
		const r = await api(srv, 'POST', '/api/register', { raw: Buffer.from([0x7b, 0x22, 0x75, 0xff, 0x22, 0x7d]), headers: { 'Content-Type': 'application/json' } });
		assertError(r, 400, 'bad_request');
	});

	test('login → 200 {"token","expires_at","user"}', async () => {
		const name = uniq('li');
		const user = await register(srv, name, 'password1');
		const before = Date.now();
		const r = await api(srv, 'POST', '/api/login', { body: { username: name, password: 'password1' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(typeof r.json.token, 'string');
		assert.ok(r.json.token.length >= 16);
		assert.ok(Number.isInteger(r.json.expires_at));
		// milliseconds, in the future (at least an hour, less than ~10 years)
		assert.ok(r.json.expires_at > before + 3600 * 1000, `expires_at ${r.json.expires_at}`);
		assert.ok(r.json.expires_at < before + 10 * 366 * 86400 * 1000, `expires_at ${r.json.expires_at} looks like µs`);
		assert.deepEqual(r.json.user, { id: user.id, username: name });
		// two logins give two different tokens
		const r2 = await api(srv, 'POST', '/api/login', { body: { username: name, password: 'password1' } });
		assert.notEqual(r2.json.token, r.json.token);
	});

	test('login: bad_credentials alike for unknown user and wrong password', async () => {
		const name = uniq('bc');
		await register(srv, name, 'password1');
		const wrong = await api(srv, 'POST', '/api/login', { body: { username: name, password: 'password2' } });
		assertError(wrong, 401, 'bad_credentials');
		const unknown = await api(srv, 'POST', '/api/login', { body: { username: uniq('nobody'), password: 'password1' } });
		assertError(unknown, 401, 'bad_credentials');
		assert.equal(wrong.json.error.message, unknown.json.error.message);
	});

	test('login: bad_request', async () => {
		for (const raw of ['{', '[]', '{"username":"abc"}', '{"username":1,"password":"password1"}', '{"password":"x"}']) {
			const r = await api(srv, 'POST', '/api/login', { raw, headers: { 'Content-Type': 'application/json' } });
			assertError(r, 400, 'bad_request');
		}
	});

	test('logout → 204, then the token is refused', async () => {
		const u = await newUser(srv);
		const me = await api(srv, 'GET', '/api/me', { token: u.token });
		assert.equal(me.status, 200);
		const r = await api(srv, 'POST', '/api/logout', { token: u.token });
		assert.equal(r.status, 204);
		assert.equal(r.text, '');
		const me2 = await api(srv, 'GET', '/api/me', { token: u.token });
		assertError(me2, 401, 'unauthorized');
		const again = await api(srv, 'POST', '/api/logout', { token: u.token });
		assertError(again, 401, 'unauthorized');
		// other tokens of the same user still work
		const t2 = await login(srv, u.name, u.pw);
		assert.equal((await api(srv, 'GET', '/api/me', { token: t2 })).status, 200);
	});

	test('GET /api/me shape', async () => {
		const u = await newUser(srv);
		const r = await api(srv, 'GET', '/api/me', { token: u.token });
		assert.equal(r.status, 200);
		assert.deepEqual(r.json, { user: { id: u.id, username: u.name }, rooms: [] });
	});

	test('GET /api/rooms shape', async () => {
		const u = await newUser(srv);
		const r = await api(srv, 'GET', '/api/rooms', { token: u.token });
		assert.equal(r.status, 200);
		assert.ok(Array.isArray(r.json.rooms));
		for (const room of r.json.rooms) {
			assert.equal(typeof room.name, 'string');
			assert.ok(Number.isInteger(room.members));
			assert.ok(Number.isInteger(room.last_seq));
			assert.ok(Number.isInteger(room.created_at));
		}
	});

	test('401 unauthorized without or with a bad token, on every authenticated endpoint', async () => {
		const u = await newUser(srv);
		const endpoints = [
			['GET', '/api/me'],
			['GET', '/api/rooms'],
			['GET', '/api/rooms/general/messages'],
			['GET', '/api/search?q=hello'],
			['POST', '/api/logout'],
		];
		const auths = [
			{},
			{ Authorization: 'Bearer not-a-token' },
			{ Authorization: `Bearer ${u.token}x` },
			{ Authorization: 'Bearer ' },
			{ Authorization: `Basic ${Buffer.from(`${u.name}:${u.pw}`).toString('base64')}` },
			{ Authorization: u.token },
		];
		for (const [method, p] of endpoints) {
			for (const headers of auths) {
				const r = await api(srv, method, p, { headers });
				assertError(r, 401, 'unauthorized');
			}
		}
	});

	test('405 for a known method on a path that does not take it', async () => {
		const u = await newUser(srv);
		for (const [method, p] of [['DELETE', '/api/login'], ['GET', '/api/login'], ['GET', '/api/register'], ['PUT', '/api/register'], ['POST', '/api/me'], ['POST', '/api/rooms'], ['GET', '/api/logout'], ['POST', '/healthz'], ['DELETE', '/api/search?q=x']]) {
			const r = await api(srv, method, p, { token: u.token });
			assert.equal(r.status, 405, `${method} ${p}: ${r.status}`);
			if (r.text) assert.ok(isErrorBody(r.json), `${method} ${p}: ${r.text}`);
		}
	});

	test('unknown API path → 404 with the error body', async () => {
		const u = await newUser(srv);
		const r = await api(srv, 'GET', `/api/nope-${rand()}`, { token: u.token });
		assert.equal(r.status, 404);
		assert.ok(isErrorBody(r.json), r.text);
	});

	test('501 for an unknown method', async () => {
		const [r] = await rawRequest(srv.port, 'BREW / HTTP/1.1\r\nHost: x\r\n\r\n');
		assert.equal(r.status, 501);
		assert.ok(isErrorBody(r.json), r.text);
	});

	test('501 for a transfer coding other than chunked', async () => {
		const [r] = await rawRequest(srv.port, 'POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Type: application/json\r\n\r\n');
		assert.equal(r.status, 501);
		assert.ok(isErrorBody(r.json), r.text);
	});

	test('chunked request body is accepted', async () => {
		const name = uniq('ch');
		const body = JSON.stringify({ username: name, password: 'password1' });
		const a = body.slice(0, 7), b = body.slice(7, 20), c = body.slice(20);
		const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
		const req = 'POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
			+ chunk(a) + chunk(b) + chunk(c) + '0\r\n\r\n';
		const [r] = await rawRequest(srv.port, req);
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.user.username, name);
		assert.equal(await login(srv, name, 'password1').then((t) => typeof t), 'string');
	});

	test('431 for a head over 8 KiB', async () => {
		const req = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(9000)}\r\n\r\n`;
		const [r] = await rawRequest(srv.port, req);
		assert.equal(r.status, 431);
		// many small headers adding up
		let many = 'GET /healthz HTTP/1.1\r\nHost: x\r\n';
		for (let i = 0; i < 200; i++) many += `X-H${i}: ${'b'.repeat(50)}\r\n`;
		const [r2] = await rawRequest(srv.port, many + '\r\n');
		assert.ok([431, 400].includes(r2.status), `status ${r2.status}`);
	});

	test('413 decided from Content-Length without sending the body', async () => {
		const raw = await rawConnect(srv.port);
		try {
			await raw.write('POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n');
			const [r] = await raw.responses(1);
			assert.equal(r.status, 413);
			assert.ok(isErrorBody(r.json), r.text);
		} finally {
			raw.close();
		}
		const raw2 = await rawConnect(srv.port);
		try {
			await raw2.write('POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65537\r\n\r\n');
			const [r] = await raw2.responses(1);
			assert.equal(r.status, 413);
		} finally {
			raw2.close();
		}
	});

	test('a body of exactly 64 KiB is accepted by the parser', async () => {
		const name = uniq('big');
		const prefix = `{"username":"${name}","password":"password1","pad":"`;
		const suffix = '"}';
		const body = prefix + 'x'.repeat(65536 - prefix.length - suffix.length) + suffix;
		assert.equal(Buffer.byteLength(body), 65536);
		const r = await api(srv, 'POST', '/api/register', { raw: body, headers: { 'Content-Type': 'application/json' } });
		assert.ok(r.status === 201 || r.status === 400, `status ${r.status} ${r.text}`);
		// chunked, 64 KiB total, also fine; 64 KiB + 1 chunked → 413
		const chunked = (s) => {
			let out = '';
			for (let i = 0; i < s.length; i += 10000) {
				const part = s.slice(i, i + 10000);
				out += `${part.length.toString(16)}\r\n${part}\r\n`;
			}
			return out + '0\r\n\r\n';
		};
		const name2 = uniq('bigc');
		const prefix2 = `{"username":"${name2}","password":"password1","pad":"`;
		const body2 = prefix2 + 'x'.repeat(65536 - prefix2.length - suffix.length) + suffix;
		const [r2] = await rawRequest(srv.port, `POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked(body2)}`);
		assert.ok(r2.status === 201 || r2.status === 400, `chunked 64 KiB: ${r2.status}`);
		const [r3] = await rawRequest(srv.port, `POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked(body2 + ' ')}`);
		assert.equal(r3.status, 413);
	});

	test('keep-alive: several requests on one connection', async () => {
		const raw = await rawConnect(srv.port);
		try {
			for (let i = 0; i < 3; i++) {
				await raw.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
				const rs = await raw.responses(i + 1);
				assert.equal(rs[i].status, 200);
			}
		} finally {
			raw.close();
		}
	});

	test('pipelined requests are answered in order', async () => {
		const u = await newUser(srv);
		const name = uniq('pipe');
		const reg = JSON.stringify({ username: name, password: 'password1' });
		const reqs = [
			'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
			'GET /api/me HTTP/1.1\r\nHost: x\r\n\r\n',
			`GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.token}\r\n\r\n`,
			`POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(reg)}\r\n\r\n${reg}`,
			`GET /nope-${rand()} HTTP/1.1\r\nHost: x\r\n\r\n`,
			`POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(reg)}\r\n\r\n${reg}`,
			'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
		];
		const rs = await rawRequest(srv.port, reqs.join(''), { n: reqs.length });
		assert.deepEqual(rs.map((r) => r.status), [200, 401, 200, 201, 404, 409, 200]);
		assert.equal(rs[2].json.user.username, u.name);
		// the same, one byte at a time in a single burst of writes
		const raw = await rawConnect(srv.port);
		try {
			const all = Buffer.from(reqs.slice(0, 3).join(''));
			for (let i = 0; i < all.length; i += 7) await raw.write(all.subarray(i, i + 7));
			const rs2 = await raw.responses(3);
			assert.deepEqual(rs2.map((r) => r.status), [200, 401, 200]);
		} finally {
			raw.close();
		}
	});

	test('HTTP/1.0 request is answered and the connection closed', async () => {
		const raw = await rawConnect(srv.port);
		try {
			await raw.write('GET /healthz HTTP/1.0\r\n\r\n');
			await raw.closedByPeer();
			const [r] = await raw.responses(1);
			assert.equal(r.status, 200);
			assert.deepEqual(r.json, { status: 'ok' });
		} finally {
			raw.close();
		}
	});

	test('malformed request line or header → 400', async () => {
		const bad = [
			'GARBAGE\r\n\r\n',
			'GET /healthz\r\n\r\n',
			'GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n',
			'GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
			'GET /healthz HTTX/1.1\r\nHost: x\r\n\r\n',
			'GET /healthz HTTP/1.1\r\nHost x\r\n\r\n',
			'GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n',
			'POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
			'POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
			'POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
			'\x00\x01\x02\x03\r\n\r\n',
		];
		for (const req of bad) {
			const [r] = await rawRequest(srv.port, req);
			assert.equal(r.status, 400, `${JSON.stringify(req)} → ${r.status}`);
		}
		// the server is fine afterwards
		assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
	});

	test('a slow client does not stall other clients', async () => {
		const slow = [];
		for (let i = 0; i < 4; i++) slow.push(await rawConnect(srv.port));
		try {
			const head = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n';
			// one byte per 250 ms per slow client for ~3 s; meanwhile others are served
			for (let i = 0; i < 12; i++) {
				for (const s of slow) await s.write(head[i]);
				const r = await api(srv, 'GET', '/healthz', { timeout: 5000 });
				assert.equal(r.status, 200);
				await pace(250); // deliberate pacing of the slow client
			}
		} finally {
			for (const s of slow) s.close();
		}
	});

	test('many connections at once', async () => {
		const N = 300;
		const conns = await Promise.all(Array.from({ length: N }, () => rawConnect(srv.port)));
		try {
			await Promise.all(conns.map((c) => c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')));
			const rs = await Promise.all(conns.map((c) => c.responses(1, 15000)));
			assert.ok(rs.every(([r]) => r.status === 200));
			// and a fresh client still gets in
			assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
		} finally {
			for (const c of conns) c.close();
		}
	});
});

test('--registration closed → 403 registration_closed', async (t) => {
	const srv = await useChatd(t, { args: ['--registration', 'closed'] });
	const r = await api(srv, 'POST', '/api/register', { body: { username: uniq('closed'), password: 'password1' } });
	assertError(r, 403, 'registration_closed');
	const ok = await api(srv, 'GET', '/healthz');
	assert.equal(ok.status, 200);
});

test('--registration open is accepted explicitly', async (t) => {
	const srv = await useChatd(t, { args: ['--registration', 'open'] });
	const r = await api(srv, 'POST', '/api/register', { body: { username: uniq('open'), password: 'password1' } });
	assert.equal(r.status, 201);
});

test('--header-timeout closes a connection whose head never completes', async (t) => {
	const srv = await useChatd(t, { args: ['--header-timeout', '1'] });
	const raw = await rawConnect(srv.port);
	try {
		await raw.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
		const t0 = Date.now();
		await raw.closedByPeer(8000);
		assert.ok(Date.now() - t0 < 8000);
		const text = raw.data.toString('latin1');
		assert.ok(text === '' || /^HTTP\/1\.1 (408|400)/.test(text), `got ${JSON.stringify(text.slice(0, 80))}`);
	} finally {
		raw.close();
	}
	assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
});
