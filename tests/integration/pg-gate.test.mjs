// A slow PostgreSQL does not freeze chatd (issue 17): while a statement
// waits for a lock another session holds, the loop goes on serving what
// does not need the database (static files, pings, deliveries), requests
// that need it queue in arrival order, and everything completes, in
// order, once the lock goes (chatd/gate.c, docs/gate.md). Uses the
// throwaway PostgreSQL at CHATD_TEST_PG, a fresh schema per test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
	useChatd, newUser, wsAuth, join, uniq, until, pgSchema, pgExec,
	tempDir, withTimeout, WAIT_MS,
} from './lib/chatd.mjs';

const PG = process.env.CHATD_TEST_PG;

/** A chatd on a fresh schema, with lock waits allowed a minute. */
async function pgChatd(t) {
	assert.ok(PG, 'CHATD_TEST_PG is not set: run through scripts/test.sh (scripts/services.sh)');
	const s = pgSchema('gate');
	t.after(() => { try { pgExec(`DROP SCHEMA ${s.name} CASCADE`); } catch { /* gone */ } });
	const srv = await useChatd(t, {
		dbPath: s.url,
		args: ['--files', tempDir(t), '--db-wait-ms', '60000'],
	});
	return { srv, schema: s };
}

/** A psql session in a transaction that ran lockSql, holding its locks
 * until release() (the test releases it in a finally: after-hooks would
 * drop the schema first, waiting for the lock with node's loop blocked).
 * By default an EXCLUSIVE lock on messages: writes wait, reads (the
 * readers' history, the /metrics gauges) do not. */
async function holdLock(schema, lockSql = 'LOCK TABLE messages IN EXCLUSIVE MODE') {
	const p = spawn('psql', [schema.url, '-qAtX', '-v', 'ON_ERROR_STOP=1'], { stdio: ['pipe', 'pipe', 'pipe'] });
	let out = '';
	let err = '';
	p.stdout.setEncoding('utf8');
	p.stderr.setEncoding('utf8');
	const exited = new Promise((resolve) => p.once('exit', resolve));
	const locked = new Promise((resolve, reject) => {
		p.stdout.on('data', (d) => { out += d; if (out.includes('locked')) resolve(); });
		p.once('exit', (code) => reject(new Error(`psql exited (${code}) before locking: ${err}`)));
	});
	p.stderr.on('data', (d) => { err += d; });
	p.stdin.write(`BEGIN; ${lockSql}; SELECT 'locked';\n`);
	await locked;
	let released = false;
	const release = async () => {
		if (released) return;
		released = true;
		p.stdin.end('COMMIT;\n');
		await exited;
	};
	return { release };
}

/** Sessions of the schema's chatd waiting for a lock, now. */
function waitingForLock() {
	return Number(pgExec("SELECT count(*) FROM pg_locks WHERE NOT granted").trim());
}

/** The value of one /metrics line. */
async function metric(srv, name) {
	const text = await (await fetch(`${srv.url}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) })).text();
	const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
	assert.ok(m, `no ${name} in /metrics`);
	return Number(m[1]);
}

/** Users a and b, each connected (a on srvA, b on srvB), both in a fresh
 * room: { room, a, b, ca, cb }. */
async function pair(t, prefix, srvA, srvB = srvA) {
	const room = uniq(prefix);
	const a = await newUser(srvA);
	const b = await newUser(srvA);
	const ca = await wsAuth(srvA.wsUrl, a.token);
	const cb = await wsAuth(srvB.wsUrl, b.token);
	t.after(() => { ca.close(); cb.close(); });
	await join(ca, room);
	await join(cb, room);
	return { room, a, b, ca, cb };
}

test('a statement waiting for PostgreSQL does not stop the loop; queued requests finish in order', async (t) => {
	const { srv, schema } = await pgChatd(t);
	const { room, ca, cb } = await pair(t, 'gate', srv);

	const lock = await holdLock(schema);
	let sends;
	try {
		// Three sends from a, pipelined: the first waits for the lock.
		sends = ['one', 'two', 'three'].map((text) => ca.request({ type: 'send', room, text }, WAIT_MS * 6));
		let acked = 0;
		for (const p of sends) p.then(() => { acked++; }, () => {});
		await until(() => waitingForLock() > 0, { what: 'chatd waiting for the lock' });

		// The loop is free: a static file, a ping answered, while a's
		// sends wait.
		const page = await fetch(`${srv.url}/`, { signal: AbortSignal.timeout(WAIT_MS) });
		assert.equal(page.status, 200);
		await page.text();
		const pong = new Promise((resolve) => cb.ws.once('pong', resolve));
		cb.ws.ping();
		await withTimeout(pong, WAIT_MS, 'a pong while the database waits');
		assert.equal(acked, 0, 'nothing acknowledged while its commit cannot happen');
		assert.ok(waitingForLock() > 0, 'the lock is still waited for');
	} finally {
		await lock.release();
	}
	const replies = await Promise.all(sends);
	assert.deepEqual(replies.map((r) => r.type), ['message', 'message', 'message'], JSON.stringify(replies));
	assert.deepEqual(replies.map((r) => r.text), ['one', 'two', 'three']);
	for (let i = 1; i < replies.length; i++) assert.ok(replies[i].seq > replies[i - 1].seq, 'seqs in send order');
	// b got all three, in order.
	const got = [];
	while (got.length < 3) {
		const m = await cb.next('message', WAIT_MS * 6);
		got.push(m.text);
	}
	assert.deepEqual(got, ['one', 'two', 'three']);
	assert.ok(await metric(srv, 'chatd_db_gate_deferred_total') > 0, 'requests queued behind the wait');
	assert.ok(await metric(srv, 'chatd_db_gate_waits_total') > 0, 'waits slept in the loop');
	assert.equal(await metric(srv, 'chatd_db_gate_loop_waits_total'), 0);
});

test('a client flooding requests while PostgreSQL is slow is paused, then served in order; one that closes leaves nothing behind', async (t) => {
	const { srv, schema } = await pgChatd(t);
	const room = uniq('flood');
	const a = await newUser(srv);
	const b = await newUser(srv);
	const q = await newUser(srv);
	const ca = await wsAuth(srv.wsUrl, a.token);
	const cb = await wsAuth(srv.wsUrl, b.token);
	const cq = await wsAuth(srv.wsUrl, q.token);
	t.after(() => { ca.close(); cb.close(); });
	await join(ca, room);
	await join(cb, room);
	await join(cq, room);

	const lock = await holdLock(schema);
	const n = 200;
	const sends = [];
	try {
		for (let i = 0; i < n; i++) sends.push(ca.request({ type: 'send', room, text: `m${i}` }, WAIT_MS * 6));
		// q sends one and goes away before it is stored.
		cq.send({ type: 'send', room, text: 'from a closed socket', ref: 'q1' });
		await until(() => waitingForLock() > 0, { what: 'chatd waiting for the lock' });
		cq.terminate();
	} finally {
		await lock.release();
	}
	const replies = await Promise.all(sends);
	assert.ok(replies.every((r) => r.type === 'message'), JSON.stringify(replies.find((r) => r.type !== 'message')));
	assert.deepEqual(replies.map((r) => r.text), sends.map((_, i) => `m${i}`));
	for (let i = 1; i < n; i++) assert.ok(replies[i].seq > replies[i - 1].seq);
	// b gets every message, q's too: what arrived before the close is stored.
	const got = new Set();
	while (got.size < n + 1) got.add((await cb.next('message', WAIT_MS * 6)).text);
	assert.ok(got.has('from a closed socket'));
	// The queue is bounded per connection: a's input was paused, not read
	// into memory, so at most a few dozen of its messages waited.
	assert.ok(await metric(srv, 'chatd_db_gate_input_holds_total') >= 1, 'a\'s input was paused');
	const max = await metric(srv, 'chatd_db_gate_queued_max');
	assert.ok(max >= 2 && max < 100, `at most about 32 messages of one connection queue (max ${max})`);
	assert.equal(await metric(srv, 'chatd_db_gate_loop_waits_total'), 0);
});

test('big messages queued while PostgreSQL is slow pause their connection by bytes, then are all answered in order', async (t) => {
	const { srv, schema } = await pgChatd(t);
	const room = uniq('bytes');
	const a = await newUser(srv);
	const ca = await wsAuth(srv.wsUrl, a.token);
	t.after(() => ca.close());
	await join(ca, room);
	const holds = await metric(srv, 'chatd_db_gate_input_holds_total');
	const lock = await holdLock(schema);
	const big = 'x'.repeat(60000); // over the text limit: refused, after its turn
	const reqs = [];
	try {
		reqs.push(ca.request({ type: 'send', room, text: 'first' }, WAIT_MS * 6));
		await until(() => waitingForLock() > 0, { what: 'chatd waiting for the lock' });
		// 10 × 60 KB behind it: over 256 KiB, the connection stops reading.
		for (let i = 0; i < 10; i++) reqs.push(ca.request({ type: 'send', room, text: big }, WAIT_MS * 6));
		reqs.push(ca.request({ type: 'send', room, text: 'last' }, WAIT_MS * 6));
	} finally {
		await lock.release();
	}
	const replies = await Promise.all(reqs);
	assert.equal(replies[0].type, 'message');
	assert.ok(replies.slice(1, 11).every((r) => r.type === 'error'), JSON.stringify(replies[1]));
	assert.equal(replies[11].type, 'message');
	assert.ok(replies[11].seq > replies[0].seq);
	assert.ok(await metric(srv, 'chatd_db_gate_input_holds_total') > holds, 'paused by bytes, not by count');
});

/** Two nodes (ids[0], ids[1]) on a fresh schema and the shared Redis (the
 * channel is the schema's epoch), lock waits allowed a minute, once each
 * hears the other; envB: the second node's environment. */
async function twoNodes(t, prefix, ids, envB = {}) {
	const REDIS = process.env.CHATD_TEST_REDIS;
	assert.ok(PG && REDIS, 'CHATD_TEST_PG and CHATD_TEST_REDIS are not set: run through scripts/test.sh');
	const s = pgSchema(prefix);
	t.after(() => { try { pgExec(`DROP SCHEMA ${s.name} CASCADE`); } catch { /* gone */ } });
	const files = tempDir(t);
	const node = async (id, env) => useChatd(t, {
		dbPath: s.url, env,
		args: ['--redis', REDIS, '--node-id', id, '--files', files, '--db-wait-ms', '60000'],
	});
	const na = await node(ids[0], {});
	const nb = await node(ids[1], envB);
	await until(async () => (await metric(na, 'chatd_cluster_nodes')) === 1 &&
		(await metric(nb, 'chatd_cluster_nodes')) === 1, { tries: 200, what: 'the nodes seeing each other' });
	return { s, na, nb };
}

test('a node whose database work is stuck longer than the heartbeat TTL stays alive for the others', async (t) => {
	const { s, na, nb } = await twoNodes(t, 'gatecl', ['ga', 'gb']);
	const { room, a, ca, cb } = await pair(t, 'beat', na, nb);
	const lost = await metric(nb, 'chatd_cluster_nodes_lost_total');
	const heard = await metric(nb, 'chatd_cluster_received_total');

	const lock = await holdLock(s);
	let sent;
	try {
		// a's send holds node ga's database work behind the lock.
		sent = ca.request({ type: 'send', room, text: 'stuck a while' }, WAIT_MS * 6);
		await until(() => waitingForLock() > 0, { what: 'ga waiting for the lock' });
		// Five heartbeats of ga reach gb meanwhile (the only messages
		// ga publishes: nothing commits): over 5 s, past the 3.5 s TTL.
		await until(async () => (await metric(nb, 'chatd_cluster_received_total')) >= heard + 5,
			{ tries: 400, interval: 50, what: 'heartbeats of the stuck node' });
		assert.equal(await metric(nb, 'chatd_cluster_nodes_lost_total'), lost, 'ga was not taken for dead');
		assert.ok(!cb.pending().some((e) => e.type === 'presence' && e.user === a.name && e.status === 'offline'),
			'a stayed online for b');
	} finally {
		await lock.release();
	}
	const r = await sent;
	assert.equal(r.type, 'message', JSON.stringify(r));
	const m = await cb.next((e) => e.type === 'message' && e.id === r.id, WAIT_MS * 6);
	assert.equal(m.text, 'stuck a while');
});

test('events from Redis past the bound while a node is stuck are dropped and read back: nothing missed, in order', async (t) => {
	// nb keeps at most 5 messages from Redis waiting for its database.
	const { s, na, nb } = await twoNodes(t, 'gatedrop', ['da', 'db'], { CHATD_TEST_CL_JOBS_MAX: '5' });
	const room = uniq('drop');
	const side = uniq('side');
	const a = await newUser(na);
	const b = await newUser(na);
	const ca = await wsAuth(na.wsUrl, a.token);
	const cb = await wsAuth(nb.wsUrl, b.token);
	t.after(() => { ca.close(); cb.close(); });
	await join(ca, room);
	await join(cb, room);
	await join(cb, side);
	const own = await cb.request({ type: 'send', room: side, text: 'mine' });
	// b's read position in side, locked: nb's next write waits, and
	// everything after it on nb with it; na is not concerned.
	const roomId = pgExec(`SELECT id FROM ${s.name}.rooms WHERE name = '${side}'`).trim();
	const userId = pgExec(`SELECT id FROM ${s.name}.users WHERE username = '${b.name}'`).trim();
	const lock = await holdLock(s, `SELECT 1 FROM members WHERE room_id = ${roomId} AND user_id = ${userId} FOR UPDATE`);
	const N = 20;
	const sent = [];
	let read;
	try {
		read = cb.request({ type: 'read', room: side, seq: own.seq }, WAIT_MS * 6);
		await until(() => waitingForLock() > 0, { what: 'nb waiting for the row lock' });
		// na commits and publishes on; nb can only queue, then drops.
		for (let i = 0; i < N; i++) sent.push(await ca.request({ type: 'send', room, text: `d${i}` }));
		assert.ok(sent.every((r) => r.type === 'message'));
		await until(async () => (await metric(nb, 'chatd_cluster_gate_drops_total')) > 0, { what: 'drops on nb' });
	} finally {
		await lock.release();
	}
	assert.notEqual((await read).type, 'error');
	const got = [];
	while (got.length < N) {
		const e = await cb.next((x) => x.type === 'message' && x.room === room, WAIT_MS * 6);
		got.push(e.seq);
	}
	assert.deepEqual(got, sent.map((r) => r.seq), 'every event once, in seq order');
	assert.equal(await metric(nb, 'chatd_cluster_order_breaks_total'), 0);
});
