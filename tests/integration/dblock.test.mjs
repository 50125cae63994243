// A database lock held by another process (a sqlite3 shell, the admin CLI)
// must not freeze the server: /healthz, static files and reads go on,
// changes wait (and are stored, in order, once the lock is free) or fail
// with internal after --db-wait-ms (docs/storage.md "The write lock").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
	useChatd, api, newUser, uniq, until, wsAuth, join, send, nextRef, WAIT_MS,
} from './lib/chatd.mjs';

/** A sqlite3 shell holding the write lock of dbPath (BEGIN IMMEDIATE)
 * until release() ends its transaction and the process. */
async function holdWriteLock(t, dbPath) {
	const p = spawn('sqlite3', [dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
	let out = '';
	let err = '';
	const exited = new Promise((resolve) => p.on('exit', resolve));
	t.after(() => { if (p.exitCode === null) p.kill('SIGKILL'); });
	const locked = new Promise((resolve, reject) => {
		p.stdout.on('data', (d) => {
			out += d;
			if (out.includes('locked')) resolve();
		});
		p.stderr.on('data', (d) => { err += d; });
		exited.then((code) => reject(new Error(`sqlite3 exited (${code}): ${err}`)));
	});
	// .bail: a BEGIN that fails ends the shell instead of printing.
	p.stdin.write(".bail on\n.timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n");
	await locked;
	return {
		async release() {
			p.stdin.end('ROLLBACK;\n');
			const code = await exited;
			assert.equal(code, 0, err);
		},
	};
}

/** /healthz, answered (any status). */
function healthz(s) {
	return api(s, 'GET', '/healthz');
}

/** The value of one /metrics sample. */
async function metric(s, name) {
	const r = await api(s, 'GET', '/metrics');
	assert.equal(r.status, 200);
	const m = r.text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
	assert.ok(m, `${name} in /metrics`);
	return Number(m[1]);
}

/** Every message of a room over HTTP. */
async function history(s, token, room) {
	const r = await api(s, 'GET', `/api/rooms/${room}/messages?limit=100`, { token });
	assert.equal(r.status, 200, r.text);
	return r.json.messages;
}

test('while another process holds the write lock the server serves, and parked changes are stored in order once it is free', async (t) => {
	const s = await useChatd(t, { args: ['--db-wait-ms', '60000'] });
	const a = await newUser(s);
	const b = await newUser(s);
	const ca = await wsAuth(s.wsUrl, a.token);
	const cb = await wsAuth(s.wsUrl, b.token);
	const room = uniq('lock');
	await join(ca, room);
	await join(cb, room);
	const first = await send(ca, room, 'before the lock');
	await cb.next({ type: 'message', id: first.id });

	const lock = await holdWriteLock(t, s.dbPath);
	// Two changes and a read on one connection: they wait for the lock,
	// and are carried out (and answered) in the order they were sent.
	const refs = [nextRef('m2'), nextRef('m3'), nextRef('h')];
	const settled = [];
	const replies = refs.map((ref) => ca.next((e) => e.ref === ref, WAIT_MS * 12)
		.then((e) => { settled.push(ref); return e; }));
	ca.send({ type: 'send', room, text: 'during the lock 1', ref: refs[0] });
	ca.send({ type: 'send', room, text: 'during the lock 2', ref: refs[1] });
	ca.send({ type: 'history', room, limit: 10, ref: refs[2] });

	// Meanwhile: /healthz reports the stall, ...
	const stalled = await until(async () => {
		const r = await healthz(s);
		return r.status === 503 && r.json && r.json.status === 'stalled' ? r : null;
	}, { tries: 200, interval: 25, what: '/healthz stalled' });
	assert.equal(stalled.headers['retry-after'], '1');
	assert.ok(stalled.json.waiting >= 2, JSON.stringify(stalled.json));
	// ... static files, HTTP reads and another connection's reads work, ...
	const page = await api(s, 'GET', '/');
	assert.equal(page.status, 200);
	const during = await history(s, b.token, room);
	assert.deepEqual(during.map((m) => m.id), [first.id]);
	const h = await cb.request({ type: 'history', room, limit: 10 });
	assert.equal(h.type, 'history');
	assert.deepEqual(h.messages.map((m) => m.id), [first.id]);
	// ... typing (no database) still reaches the other members, ...
	cb.send({ type: 'typing', room });
	await ca.next({ type: 'typing', user: b.name });
	// ... and /metrics shows the wait.
	assert.ok(await metric(s, 'chatd_db_lock_waiting') >= 2);
	assert.ok(await metric(s, 'chatd_db_busy_retries_total') >= 1);
	assert.deepEqual(settled, [], 'nothing answered before the commit');

	await lock.release();
	const [m2, m3, hist] = await Promise.all(replies);
	assert.equal(m2.type, 'message', JSON.stringify(m2));
	assert.equal(m3.type, 'message', JSON.stringify(m3));
	assert.ok(first.id < m2.id && m2.id < m3.id);
	assert.deepEqual(settled, refs, 'replies in request order');
	assert.deepEqual(hist.messages.map((m) => m.id), [first.id, m2.id, m3.id]);
	// Delivered to the other member, in seq order; stored.
	const e2 = await cb.next({ type: 'message', id: m2.id });
	const e3 = await cb.next({ type: 'message', id: m3.id });
	assert.ok(cb.all.indexOf(e2) < cb.all.indexOf(e3));
	assert.deepEqual((await history(s, b.token, room)).map((m) => m.text),
		['before the lock', 'during the lock 1', 'during the lock 2']);
	const ok = await healthz(s);
	assert.equal(ok.status, 200);
	assert.deepEqual(ok.json, { status: 'ok' });
	assert.equal(await metric(s, 'chatd_db_lock_waiting'), 0);
	await ca.close();
	await cb.close();
});

test('a change that waits past --db-wait-ms fails with internal and is not stored; HTTP writes answer 503', async (t) => {
	const s = await useChatd(t, { args: ['--db-wait-ms', '300'] });
	const a = await newUser(s);
	const b = await newUser(s);
	const ca = await wsAuth(s.wsUrl, a.token);
	const cb = await wsAuth(s.wsUrl, b.token);
	const room = uniq('lock');
	await join(ca, room);
	await join(cb, room);

	const lock = await holdWriteLock(t, s.dbPath);
	const r = await ca.request({ type: 'send', room, text: 'never stored', client_msg_id: 'c1' }, WAIT_MS * 4);
	assert.equal(r.type, 'error');
	assert.equal(r.code, 'internal');
	assert.equal(await metric(s, 'chatd_db_lock_timeouts_total'), 1);
	// HTTP writes do not wait: 503 busy with Retry-After.
	const reg = await api(s, 'POST', '/api/register', { body: { username: uniq('u'), password: 'password123' } });
	assert.equal(reg.status, 503, reg.text);
	assert.equal(reg.json.error.code, 'busy');
	assert.equal(reg.headers['retry-after'], '1');
	const lo = await api(s, 'POST', '/api/login', { body: { username: a.name, password: a.pw } });
	assert.equal(lo.status, 503, lo.text);
	const out = await api(s, 'POST', '/api/logout', { token: a.token });
	assert.equal(out.status, 503, out.text);
	await lock.release();

	// Not stored, not delivered; the same client_msg_id is a new message.
	await cb.none((e) => e.type === 'message', 'a failed send delivered');
	assert.deepEqual(await history(s, b.token, room), []);
	const again = await send(ca, room, 'stored', { client_msg_id: 'c1' });
	assert.equal(again.text, 'stored');
	await cb.next({ type: 'message', id: again.id });
	assert.equal((await healthz(s)).status, 200);
	await ca.close();
	await cb.close();
});
