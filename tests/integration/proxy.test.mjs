// Behind a trusted reverse proxy (--trusted-proxy): the per-address limits
// and the log lines use the client address the proxy forwards in
// X-Forwarded-For (or Forwarded), per request, even on one keep-alive
// connection; from any other peer those headers are ignored, and a
// client's own left-most entries never escape its limit. The test plays
// the proxy: it connects from 127.0.0.1 and sets the headers itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { useChatd, tempDir, uniq, wsConnect, until, WAIT_MS, WEB_DIR } from './lib/chatd.mjs';
import { chatd } from './lib/ops.mjs';

const ADDR_BURST = 20; // failed logins per address (serve.c)
const A = '198.51.100.7';
const B = '203.0.113.9';

/** A POST /api/login of a fresh unknown user (a failed login that costs
 * only the address's bucket, not one user's) through agent, with the
 * extra headers. Resolves to { status, reused, name }. */
function failedLogin(srv, agent, headers) {
	const name = uniq('px');
	const data = Buffer.from(JSON.stringify({ username: name, password: 'wrong-password' }));
	return new Promise((resolve, reject) => {
		const req = http.request({
			host: '127.0.0.1', port: srv.port, path: '/api/login', method: 'POST', agent,
			headers: { 'Content-Type': 'application/json', 'Content-Length': String(data.length), ...headers },
		}, (res) => {
			res.resume();
			res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket, name }));
			res.on('error', reject);
		});
		req.setTimeout(WAIT_MS * 4, () => req.destroy(new Error('POST /api/login: no answer')));
		req.on('error', reject);
		req.end(data);
	});
}

/** One keep-alive connection, as a proxy keeps to its upstream. */
function proxyAgent(t) {
	const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
	t.after(() => agent.destroy());
	return agent;
}

/** Fails logins with headers until a 429; returns how many were 401.
 * The bucket refills one token in 3 s, so a slow run may see a few more
 * than the burst, never fewer. */
async function exhaust(srv, agent, headers) {
	let failed = 0;
	for (;;) {
		const r = await failedLogin(srv, agent, headers);
		if (r.status === 429) return failed;
		assert.equal(r.status, 401);
		failed++;
		assert.ok(failed <= ADDR_BURST + 10, 'the address limit never came');
	}
}

/** Asserts that the failed login r was charged to addr, whose bucket is
 * the only empty one: a 429, or, if a token came back meanwhile (one
 * every 3 s, so a slow run may see one), a 401 whose log line names addr. */
async function chargedTo(srv, r, addr, what) {
	if (r.status === 429) return;
	assert.equal(r.status, 401, what);
	const line = await until(() => srv.logs().split('\n').find((l) => l.includes(`failed login for '${r.name}'`)),
		{ what: `the log line of ${what}` });
	assert.ok(line.endsWith(` from ${addr}`), `${what}: ${line}`);
}

test('behind a trusted proxy each forwarded client has its own login limit', async (t) => {
	const srv = await useChatd(t, { rateLimits: 'on', args: ['--trusted-proxy', '127.0.0.1/32'] });
	const agent = proxyAgent(t);
	const n = await exhaust(srv, agent, { 'X-Forwarded-For': A });
	assert.ok(n >= ADDR_BURST, `${n} failed logins before the 429`);
	// The next request on the same connection is another client's: its
	// own bucket, full.
	const b = await failedLogin(srv, agent, { 'X-Forwarded-For': B });
	assert.equal(b.status, 401);
	assert.equal(b.reused, true, 'one keep-alive connection');
	// A client's own entries, left of the proxy's, don't get A out.
	for (const xff of [`10.9.9.9, ${A}`, `${B}, ${A}`, `unknown, ${A}`, `garbage, ${A}`, `${B}, ${A}, 127.0.0.1`]) {
		await chargedTo(srv, await failedLogin(srv, agent, { 'X-Forwarded-For': xff }), A, xff);
	}
	// Two header lines: the proxy's is the last.
	await chargedTo(srv, await failedLogin(srv, agent, { 'X-Forwarded-For': [B, A] }), A, 'two lines');
	// Forwarded, when a request has no X-Forwarded-For.
	await chargedTo(srv, await failedLogin(srv, agent, { Forwarded: `for=${A};proto=http` }), A, 'Forwarded');
	assert.equal((await failedLogin(srv, agent, { Forwarded: 'for="[2001:db8::1]:4711"' })).status, 401);
	// The proxy itself (no header) has its own bucket too.
	assert.equal((await failedLogin(srv, agent, {})).status, 401);
	// Log lines name the client, not the proxy.
	await until(() => new RegExp(`failed login for '[^']*' from ${B.replace(/\./g, '\\.')}\n`).test(srv.logs()),
		{ what: 'a failed-login line naming B' });
	assert.match(srv.logs(), /failed login for '[^']*' from 2001:db8::1/);
});

test('without --trusted-proxy the headers are ignored: one bucket for the peer', async (t) => {
	for (const args of [[], ['--trusted-proxy', '10.0.0.0/8,::1']]) {
		const srv = await useChatd(t, { rateLimits: 'on', args });
		const agent = proxyAgent(t);
		const n = await exhaust(srv, agent, { 'X-Forwarded-For': A });
		assert.ok(n >= ADDR_BURST, `${n} failed logins before the 429`);
		for (const h of [{ 'X-Forwarded-For': B }, { Forwarded: `for=${B}` }, {}]) {
			const r = await failedLogin(srv, agent, h);
			await chargedTo(srv, r, '127.0.0.1', `${JSON.stringify(args)} ${JSON.stringify(h)}`);
		}
		assert.doesNotMatch(srv.logs(), new RegExp(`from ${A.replace(/\./g, '\\.')}`));
		assert.match(srv.logs(), /failed login for '[^']*' from 127\.0\.0\.1/);
	}
});

test('the hashing queue share of an address is the forwarded client share', async (t) => {
	// Rate limits off: only the queue's bound (8 jobs per address) acts.
	const srv = await useChatd(t, { args: ['--trusted-proxy', '127.0.0.1'] });
	const flood = Array.from({ length: 16 }, () => failedLogin(srv, undefined, { 'X-Forwarded-For': A }));
	const other = failedLogin(srv, undefined, { 'X-Forwarded-For': B });
	const rs = await Promise.all(flood);
	assert.ok(rs.some((r) => r.status === 503), rs.map((r) => r.status).join(' '));
	assert.ok(rs.every((r) => r.status === 503 || r.status === 401), rs.map((r) => r.status).join(' '));
	assert.equal((await other).status, 401);
	await until(() => /warn api_busy: .*from 198\.51\.100\.7: its share used up/.test(srv.logs()), { what: 'the busy warning naming A' });
});

test('a WebSocket keeps the client address of its upgrade request', async (t) => {
	const srv = await useChatd(t, { args: ['--trusted-proxy', '127.0.0.1'] });
	const c = await wsConnect(srv, { headers: { 'X-Forwarded-For': `1.1.1.1, ${B}` } });
	const reply = await c.request({ type: 'auth', token: 'no-such-token' });
	assert.equal(reply.type, 'error');
	await until(() => srv.logs().includes(`${B}: invalid or expired token`), { what: 'the auth failure logged with B' });
	c.close();
});

test('--trusted-proxy is checked at start: check-config shows it, a bad one is one clear line', async (t) => {
	const where = ['--db', path.join(tempDir(t), 'chat.db'), '--web', WEB_DIR];
	let r = await chatd([...where, '--trusted-proxy', '10.0.0.0/8, fd00::/8', 'check-config']);
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stdout, /^trusted-proxy = 10\.0\.0\.0\/8, fd00::\/8\t# flag$/m);
	r = await chatd([...where, 'check-config'], { env: { CHATD_TRUSTED_PROXY: '127.0.0.1' } });
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stdout, /^trusted-proxy = 127\.0\.0\.1\t# environment$/m);
	for (const bad of ['10.0.0.0/33', 'proxy.example.com', '10.0.0.1, 10.0.0.0/8x']) {
		for (const cmd of [['check-config'], []]) {
			r = await chatd([...where, '--trusted-proxy', bad, '--listen', '127.0.0.1:0', ...cmd]);
			assert.equal(r.code, 2, `${bad} ${cmd}`);
			assert.match(r.stderr, /^chatd: invalid value for --trusted-proxy: '[^']+' is not an address or ADDR\/BITS\n$/);
		}
	}
});
