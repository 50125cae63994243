// Operations: /metrics as traffic flows (valid Prometheus text), logs (JSON
// format, levels, what is and is not logged), and the admin commands that
// run next to a serving chatd (room list/del, user del).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
	useChatd, api, newUser, login, wsAuth, join, send, uniq, until,
	PG_URL, pgExec,
} from './lib/chatd.mjs';
import { chatd, chatdOk, parseMetrics } from './lib/ops.mjs';

async function metrics(srv) {
	const r = await api(srv, 'GET', '/metrics');
	assert.equal(r.status, 200);
	assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
	return parseMetrics(r.text);
}

test('metrics change as traffic flows and parse as valid Prometheus text', async (t) => {
	const srv = await useChatd(t);
	const m0 = await metrics(srv);
	for (const name of ['chatd_connections', 'chatd_users_online', 'chatd_rooms', 'chatd_messages_stored_total',
		'chatd_deliveries_total', 'chatd_delivery_latency_seconds', 'chatd_db_transaction_seconds',
		'chatd_ws_close_codes_total', 'chatd_http_responses_total', 'chatd_rate_limited_total',
		'process_resident_memory_bytes', 'process_open_fds']) {
		assert.ok(m0.types.has(name), `${name} is exported`);
	}
	assert.equal(m0.types.get('chatd_delivery_latency_seconds'), 'histogram');
	assert.equal(m0.types.get('chatd_messages_stored_total'), 'counter');
	assert.ok(m0.get('process_resident_memory_bytes') > 1e6, 'RSS in bytes');
	assert.ok(m0.get('process_open_fds') >= 3, 'open fds');

	const a = await newUser(srv, 'ma');
	const b = await newUser(srv, 'mb');
	const ca = await wsAuth(srv.wsUrl, a.token);
	const cb = await wsAuth(srv.wsUrl, b.token);
	const room = uniq('mr');
	await join(ca, room);
	await join(cb, room);
	for (let i = 0; i < 5; i++) await send(ca, room, `hello ${i}`);
	await cb.next((e) => e.type === 'message' && e.text === 'hello 4');
	const bad = await api(srv, 'POST', '/api/login', { body: { username: a.name, password: 'not-the-password' } });
	assert.equal(bad.status, 401);

	const m1 = await metrics(srv);
	assert.equal(m1.get('chatd_messages_stored_total') - m0.get('chatd_messages_stored_total'), 5);
	assert.ok(m1.get('chatd_deliveries_total') - m0.get('chatd_deliveries_total') >= 10, 'replies and copies delivered');
	assert.ok(m1.get('chatd_delivery_latency_seconds_count') - m0.get('chatd_delivery_latency_seconds_count') >= 5);
	assert.ok(m1.get('chatd_db_transaction_seconds_count') >= 5, 'transactions timed');
	assert.ok(m1.get('chatd_commits_total') > m0.get('chatd_commits_total'));
	assert.equal(m1.get('chatd_connections', { state: 'websocket' }), 2);
	assert.equal(m1.get('chatd_users_online'), 2);
	assert.ok(m1.get('chatd_rooms', { kind: 'public' }) >= 1);
	assert.equal(m1.get('chatd_http_responses_total', { route: '/api/register', code: '2xx' }), 2);
	assert.equal(m1.get('chatd_http_responses_total', { route: '/api/login', code: '2xx' }), 2);
	assert.equal(m1.get('chatd_http_responses_total', { route: '/api/login', code: '4xx' }), 1);
	assert.equal(m1.get('chatd_auth_failures_total') - m0.get('chatd_auth_failures_total'), 1);

	await ca.close(1000);
	await cb.close(4000 + 10);
	const m2 = await until(async () => {
		const m = await metrics(srv);
		return m.get('chatd_users_online') === 0 && m.get('chatd_connections', { state: 'websocket' }) === 0 ? m : null;
	}, { what: 'both WebSockets gone from /metrics' });
	assert.ok(m2.get('chatd_ws_close_codes_total', { code: '1000' }) >= 1, 'close 1000 counted');
	assert.ok(m2.get('chatd_ws_close_codes_total', { code: 'other' }) >= 1, 'close 4010 counted as other');
	assert.ok(m2.get('chatd_http_responses_total', { route: '/metrics', code: '2xx' }) >= 2);
});

test('rate-limited requests are counted', async (t) => {
	const srv = await useChatd(t, { rateLimits: 'on', args: ['--msg-burst', '1', '--msg-rate', '0.001'] });
	const a = await newUser(srv, 'rl');
	const c = await wsAuth(srv.wsUrl, a.token);
	const before = (await metrics(srv)).get('chatd_rate_limited_total');
	const replies = [];
	for (let i = 0; i < 3; i++) replies.push(await c.request({ type: 'join', room: uniq('rl') }));
	const limited = replies.filter((r) => r.type === 'error' && r.code === 'rate_limited').length;
	assert.ok(limited >= 1, `some requests limited: ${JSON.stringify(replies)}`);
	assert.equal((await metrics(srv)).get('chatd_rate_limited_total') - before, limited);
});

test('json logs: one object a line; start, listen, auth failures without the secret, nothing per message', async (t) => {
	const srv = await useChatd(t, { args: ['--log-format', 'json'] });
	const a = await newUser(srv, 'lg');
	const secret = 'very-secret-password-42';
	assert.equal((await api(srv, 'POST', '/api/login', { body: { username: a.name, password: secret } })).status, 401);
	const c = await wsAuth(srv.wsUrl, a.token);
	const room = uniq('lr');
	await join(c, room);
	await c.fence();
	const mark = srv.logs().length;
	for (let i = 0; i < 20; i++) await send(c, room, `message ${i}`);
	await c.fence();
	assert.equal(srv.logs().slice(mark), '', 'nothing logged per message at info');
	await c.close(1000);
	assert.equal(await srv.stop(), 0);
	const lines = srv.logs().trim().split('\n').map((l) => JSON.parse(l));
	for (const l of lines) {
		assert.match(l.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
		assert.ok(['error', 'warn', 'info', 'debug'].includes(l.level));
		assert.equal(typeof l.msg, 'string');
	}
	const msgs = lines.map((l) => l.msg);
	assert.ok(msgs.some((m) => m.includes(`listening on 127.0.0.1:${srv.port}`)), 'listen address logged');
	assert.ok(msgs.some((m) => /stopped/.test(m)), 'stop logged');
	assert.ok(msgs.some((m) => m.includes('failed login') && m.includes(a.name)), 'auth failure logged');
	assert.ok(!srv.logs().includes(secret), 'the password is never logged');
	assert.ok(!srv.logs().includes(a.token), 'the token is never logged');
});

test('--log-level warn: no info lines', async (t) => {
	const srv = await useChatd(t, { args: ['--log-level', 'warn'] });
	await newUser(srv, 'lw');
	assert.equal(await srv.stop(), 0);
	assert.doesNotMatch(srv.logs(), / info /);
});

test('room list and room del while serving: the room is gone for connected clients', async (t) => {
	const srv = await useChatd(t);
	const a = await newUser(srv, 'rd');
	const c = await wsAuth(srv.wsUrl, a.token);
	const room = uniq('gone');
	await join(c, room);
	const m1 = await send(c, room, 'one');
	await send(c, room, 'two');
	const db = ['--db', srv.dbPath];
	const list = await chatdOk([...db, 'room', 'list']);
	assert.match(list, new RegExp(`^${room}\\tpublic\\t1\\t${m1.id + 1}$`, 'm'));

	await chatdOk([...db, 'room', 'del', room.toUpperCase()]);
	assert.doesNotMatch(await chatdOk([...db, 'room', 'list']), new RegExp(room));
	const r = await c.request({ type: 'send', room, text: 'three' });
	assert.equal(r.type, 'error');
	assert.equal(r.code, 'no_such_room');
	assert.equal((await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: a.token })).status, 404);
	// The name is free again: a fresh room, and seqs are never reused.
	const j = await join(c, room);
	assert.equal(j.last_seq, 0);
	const m3 = await send(c, room, 'four');
	assert.ok(m3.id > m1.id + 1, 'seqs are not reused');
	const h = await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: a.token });
	assert.deepEqual(h.json.messages.map((m) => m.text), ['four']);

	const none = await chatd([...db, 'room', 'del', uniq('nope')]);
	assert.equal(none.code, 1);
	assert.match(none.stderr, /no room/);
});

test('user list and user del while serving: login fails, messages stay under the name', async (t) => {
	const srv = await useChatd(t);
	const a = await newUser(srv, 'ud');
	const b = await newUser(srv, 'ud');
	const cb = await wsAuth(srv.wsUrl, b.token);
	const room = uniq('ud');
	await join(cb, room);
	await send(cb, room, 'from b');
	const db = ['--db', srv.dbPath];
	assert.match(await chatdOk([...db, 'user', 'list']), new RegExp(`^${b.id}\\t${b.name}$`, 'm'));
	await chatdOk([...db, 'user', 'del', b.name]);
	assert.doesNotMatch(await chatdOk([...db, 'user', 'list']), new RegExp(b.name));
	assert.equal((await api(srv, 'POST', '/api/login', { body: { username: b.name, password: b.pw } })).status, 401);
	const h = await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: a.token });
	assert.deepEqual(h.json.messages.map((m) => [m.user, m.text]), [[b.name, 'from b']]);
	assert.equal((await api(srv, 'POST', '/api/register', { body: { username: b.name, password: 'another-pw-1' } })).status, 409);
	await login(srv, a.name, a.pw);
});

test('user del while serving closes the deleted user\'s open WebSockets with 4001', async (t) => {
	const srv = await useChatd(t);
	const a = await newUser(srv, 'uw');
	const b = await newUser(srv, 'uw');
	const ca = await wsAuth(srv.wsUrl, a.token);
	const cb = await wsAuth(srv.wsUrl, b.token);
	const room = uniq('uw');
	await join(ca, room);
	await join(cb, room);
	await chatdOk(['--db', srv.dbPath, 'user', 'del', b.name]);
	// The server notices the admin's commit at its next request; on
	// PostgreSQL, at the first one from 500 ms after its last look at
	// meta's admin_version (chatd/chat.c).
	if (PG_URL) {
		let gone = false;
		cb.closed.then(() => { gone = true; });
		await until(async () => {
			await send(ca, room, 'after the deletion');
			return gone;
		}, { what: 'the deleted user\'s socket closed' });
	} else {
		await send(ca, room, 'after the deletion');
	}
	const closed = await cb.closed;
	assert.equal(closed.code, 4001);
	// Everyone else carries on.
	await send(ca, room, 'still here');
});

test('/healthz answers 503 with the error body once the database is unusable', async (t) => {
	const srv = await useChatd(t);
	let r = await api(srv, 'GET', '/healthz');
	assert.equal(r.status, 200);
	assert.deepEqual(r.json, { status: 'ok' });
	// Another process breaks the schema under the running server.
	if (PG_URL) pgExec('DROP TABLE meta', srv.dbPath);
	else execFileSync('sqlite3', [srv.dbPath, 'PRAGMA busy_timeout = 5000; DROP TABLE meta;']);
	r = await api(srv, 'GET', '/healthz');
	assert.equal(r.status, 503);
	assert.equal(typeof r.json.error.code, 'string');
	assert.equal(typeof r.json.error.message, 'string');
});
