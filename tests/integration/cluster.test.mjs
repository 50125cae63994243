// Several nodes (issue 17): three chatd on one PostgreSQL (a fresh schema
// of the throwaway cluster at CHATD_TEST_PG, scripts/services.sh) joined
// by a redis-server this file starts itself (so it can restart it).
// Clients on different nodes must see every room event once, in seq
// order, whatever happens to a node or to Redis.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
	startChatd, api, newUser, uniq, wsAuth, join, send, freePort, pgSchema,
	pgExec, until, WAIT_MS,
} from './lib/chatd.mjs';

const PG = process.env.CHATD_TEST_PG;
// Long enough for a Redis restart and the nodes' catch-up on a loaded
// 2-core machine; every wait is for an event, this only bounds it.
const SLOW = Math.max(WAIT_MS * 4, 20000);

/** redis-server on port; resolves once it accepts connections. */
async function startRedis(port, dir) {
	const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
		'--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
	const exited = new Promise((resolve) => proc.on('exit', resolve));
	for (let i = 0; i < 200; i++) {
		const ok = await new Promise((resolve) => {
			const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
			s.on('error', () => resolve(false));
		});
		if (ok) return { proc, exited };
		if (proc.exitCode !== null) break;
		await new Promise((r) => setTimeout(r, 25));
	}
	proc.kill('SIGKILL');
	throw new Error(`redis-server did not start on port ${port}`);
}

/** PUBLISH channel payload on the Redis at port (RESP by hand). */
function redisPublish(port, channel, payload) {
	return new Promise((resolve, reject) => {
		const s = net.connect(port, '127.0.0.1');
		const ch = Buffer.from(channel);
		s.on('error', reject);
		s.on('data', (d) => { if (d.toString().startsWith(':')) { s.end(); resolve(); } });
		s.write(Buffer.concat([
			Buffer.from(`*3\r\n$7\r\nPUBLISH\r\n$${ch.length}\r\n`), ch,
			Buffer.from(`\r\n$${payload.length}\r\n`), payload, Buffer.from('\r\n'),
		]));
	});
}

/** Waits until c has received every id of ids in room (message events);
 * returns the room's message events in arrival order. */
async function receiveAll(c, room, ids, got = []) {
	const want = new Set(ids);
	for (const e of got) want.delete(e.id);
	while (want.size > 0) {
		const e = await c.next((x) => x.type === 'message' && x.room === room, SLOW);
		got.push(e);
		want.delete(e.id);
	}
	return got;
}

/** Asserts a room's events on one connection: strictly increasing seq,
 * no id twice. */
function assertOrdered(events, what) {
	for (let i = 1; i < events.length; i++) {
		assert.ok(events[i].seq > events[i - 1].seq,
			`${what}: seq ${events[i].seq} after ${events[i - 1].seq}`);
	}
	const ids = events.map((e) => e.id);
	assert.equal(new Set(ids).size, ids.length, `${what}: an id twice`);
}

describe('three nodes on PostgreSQL and Redis', () => {
	let redis, redisPort, schema, dir;
	const nodes = [];

	before(async () => {
		assert.ok(PG, 'CHATD_TEST_PG is not set: run through scripts/test.sh (scripts/services.sh)');
		dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-cluster-'));
		redisPort = await freePort();
		redis = await startRedis(redisPort, dir);
		schema = pgSchema('cl');
		const files = path.join(dir, 'files');
		for (let i = 0; i < 3; i++) {
			nodes.push(await startChatd({
				dbPath: schema.url,
				args: ['--redis', `redis://127.0.0.1:${redisPort}`, '--node-id', `n${i}`,
					'--files', files],
			}));
		}
		// Every node has heard every other's heartbeat: the cluster is
		// whole (chatd_cluster_nodes in /metrics).
		for (const n of nodes) await nodesSeen(n, 2);
	});

	after(async () => {
		for (const n of nodes) await n.cleanup();
		redis?.proc.kill('SIGKILL');
		if (schema) {
			try { pgExec(`DROP SCHEMA ${schema.name} CASCADE`); } catch { /* ignore */ }
		}
		fs.rmSync(dir, { recursive: true, force: true });
	});

	/** Resolves once srv's /metrics shows at least n other nodes. */
	async function nodesSeen(srv, n) {
		for (let i = 0; i < 400; i++) {
			const r = await api(srv.url, 'GET', '/metrics', { raw: true });
			const m = /^chatd_cluster_nodes (\d+)/m.exec(r.text);
			if (m && Number(m[1]) >= n) return;
			await new Promise((res) => setTimeout(res, 25));
		}
		throw new Error(`node on ${srv.port} never saw ${n} other nodes`);
	}

	/** A user with a connection on node i. */
	async function userOn(t, i) {
		const u = await newUser(nodes[0].url);
		u.c = await wsAuth(nodes[i].wsUrl, u.token);
		t.after(() => u.c.close());
		return u;
	}

	test('clients on three nodes get every message of all three senders once, in seq order', async (t) => {
		const room = uniq('fan');
		const us = [await userOn(t, 0), await userOn(t, 1), await userOn(t, 2)];
		for (const u of us) await join(u.c, room);
		const N = 30;
		const acks = await Promise.all(us.map(async (u, k) => {
			const out = [];
			for (let i = 0; i < N; i++) out.push(await send(u.c, room, `m${k}-${i}`));
			return out;
		}));
		const ids = acks.flat().map((m) => m.id);
		assert.equal(new Set(ids).size, 3 * N);
		for (const [k, u] of us.entries()) {
			// Its own sends come back as replies (with ref), the others'
			// as events: together, all of them in seq order.
			const others = ids.filter((id) => !acks[k].some((m) => m.id === id));
			const got = await receiveAll(u.c, room, others, []);
			const all = [...got.filter((e) => e.ref === undefined), ...acks[k]].sort((a, b) => a.seq - b.seq);
			assert.deepEqual(all.map((e) => e.id).sort((a, b) => a - b), [...ids].sort((a, b) => a - b));
			assertOrdered(got.filter((e) => e.ref === undefined), `node ${k}`);
		}
		// No node delivered its own event out of turn.
		for (const n of nodes) {
			const r = await api(n.url, 'GET', '/metrics', { raw: true });
			assert.match(r.text, /^chatd_cluster_order_breaks_total 0$/m);
		}
	});

	test('a DM, a read position, typing and presence cross nodes', async (t) => {
		const a = await userOn(t, 0);
		const b = await userOn(t, 1);
		const dm = await a.c.request({ type: 'dm', user: b.name });
		assert.equal(dm.type, 'joined', JSON.stringify(dm));
		const room = dm.room;
		await b.c.next((e) => e.type === 'room' && e.room === room, SLOW);
		const m = await send(a.c, room, 'hello across');
		const seen = await b.c.next((e) => e.type === 'message' && e.id === m.id, SLOW);
		assert.equal(seen.text, 'hello across');
		// b reads it: a sees the read position (a stored change of b's).
		const r = await b.c.request({ type: 'read', room, seq: m.seq });
		assert.notEqual(r.type, 'error', JSON.stringify(r));
		await a.c.next((e) => e.type === 'read' && e.room === room && e.user === b.name, SLOW);
		// typing is not stored, and crosses too.
		b.c.send({ type: 'typing', room });
		await a.c.next((e) => e.type === 'typing' && e.room === room && e.user === b.name, SLOW);
		// presence: c connects on node 2 after sharing a room with a.
		const c = await newUser(nodes[0].url);
		const pub = uniq('pres');
		await join(a.c, pub);
		const c0 = await wsAuth(nodes[2].wsUrl, c.token);
		t.after(() => c0.close());
		await join(c0, pub);
		await c0.close();
		const c1 = await wsAuth(nodes[2].wsUrl, c.token);
		await a.c.next((e) => e.type === 'presence' && e.user === c.name && e.status === 'online', SLOW);
		await c1.close();
		await a.c.next((e) => e.type === 'presence' && e.user === c.name && e.status === 'offline', SLOW);
	});

	test('a new connection\'s presence snapshot names who is online on other nodes and shares a room, no one else', async (t) => {
		const a = await userOn(t, 0);
		const stranger = await userOn(t, 1);
		const c = await newUser(nodes[0].url);
		const room = uniq('snap');
		await join(a.c, room);
		const c0 = await wsAuth(nodes[2].wsUrl, c.token);
		await join(c0, room);
		// a's message reaching node 2 means node 2 has handled what node
		// 0 published before it: a online.
		const m = await send(a.c, room, 'here');
		await c0.next((e) => e.type === 'message' && e.id === m.id, SLOW);
		await c0.close();
		const c1 = await wsAuth(nodes[2].wsUrl, c.token);
		t.after(() => c1.close());
		await c1.next((e) => e.type === 'presence' && e.user === a.name && e.status === 'online', SLOW);
		// Everything of the snapshot is in before the answer to a request.
		await c1.request({ type: 'history', room, limit: 1 });
		assert.ok(!c1.pending().some((e) => e.type === 'presence' && e.user === stranger.name),
			'a user who shares no room is not in the snapshot');
	});

	test('an invite, a kick with a ban and a topic cross nodes', async (t) => {
		const a = await userOn(t, 0);
		const b = await userOn(t, 1);
		const room = uniq('priv');
		const cr = await a.c.request({ type: 'create', room, kind: 'private' });
		assert.notEqual(cr.type, 'error', JSON.stringify(cr));
		const inv = await a.c.request({ type: 'invite', room, user: b.name });
		assert.equal(inv.type, 'invited', JSON.stringify(inv));
		// b's connection on node 1 is subscribed: it gets the room and
		// then the room's messages.
		await b.c.next((e) => e.type === 'room' && e.room === room, SLOW);
		const m = await send(a.c, room, 'welcome');
		await b.c.next((e) => e.type === 'message' && e.id === m.id, SLOW);
		const tp = await a.c.request({ type: 'topic', room, topic: 'plans' });
		assert.notEqual(tp.type, 'error', JSON.stringify(tp));
		await b.c.next((e) => e.type === 'topic' && e.room === room, SLOW);
		const k = await a.c.request({ type: 'kick', room, user: b.name, ban: true });
		assert.equal(k.type, 'kicked', JSON.stringify(k));
		await b.c.next((e) => e.type === 'left' && e.room === room, SLOW);
		// Unsubscribed on node 1: later messages do not reach b.
		const after1 = await send(a.c, room, 'after the kick');
		const fenceRoom = uniq('fence');
		await join(a.c, fenceRoom);
		await join(b.c, fenceRoom);
		const fm = await send(a.c, fenceRoom, 'fence');
		await b.c.next((e) => e.type === 'message' && e.id === fm.id, SLOW);
		assert.ok(!b.c.pending().some((e) => e.id === after1.id), 'a kicked member got a message');
		const back = await b.c.request({ type: 'join', room });
		assert.equal(back.type, 'error', 'banned');
	});

	test('hostile messages on the channel are counted and change nothing', async (t) => {
		const a = await userOn(t, 0);
		const channel = `chatd:${a.c.hello.epoch}`;
		const metric = async (srv) => {
			const r = await api(srv.url, 'GET', '/metrics', { raw: true });
			return Number(/^chatd_cluster_bad_messages_total (\d+)/m.exec(r.text)[1]);
		};
		const before = await Promise.all(nodes.map(metric));
		// Not a message at all; then a well-formed EPHEMERAL (version 1,
		// kind 3, node "x", room 1, user 0) whose payload is a cut frame.
		await redisPublish(redisPort, channel, Buffer.from('garbage'));
		await redisPublish(redisPort, channel,
			Buffer.from([1, 3, 1, 0x78, 1, 0, 2, 0x81, 0x7e]));
		for (const [i, srv] of nodes.entries()) {
			await until(async () => (await metric(srv)) >= before[i] + 2,
				{ what: `node ${i} counting the bad messages`, tries: 200 });
		}
		// Everyone still works.
		const room = uniq('after-bad');
		await join(a.c, room);
		await send(a.c, room, 'still here');
	});

	test('logout on one node closes the token\'s socket on another with 4001', async (t) => {
		const u = await userOn(t, 2);
		const r = await api(nodes[0].url, 'POST', '/api/logout', { token: u.token });
		assert.ok(r.status === 200 || r.status === 204, `${r.status} ${r.text}`);
		const closed = await u.c.waitClose(SLOW);
		assert.equal(closed.code, 4001);
	});

	test('Redis restarted mid-stream: sends go on, every node catches up in order', async (t) => {
		const room = uniq('rds');
		const a = await userOn(t, 0);
		const b = await userOn(t, 1);
		await join(a.c, room);
		await join(b.c, room);
		const before1 = await send(a.c, room, 'before');
		await b.c.next((e) => e.type === 'message' && e.id === before1.id, SLOW);
		redis.proc.kill('SIGKILL');
		await redis.exited;
		// Stored and acknowledged while Redis is away.
		const during = [];
		for (let i = 0; i < 10; i++) during.push(await send(a.c, room, `during-${i}`));
		redis = await startRedis(redisPort, dir);
		const after1 = await send(a.c, room, 'after');
		const got = await receiveAll(b.c, room, [...during.map((m) => m.id), after1.id], []);
		assertOrdered(got, 'after the restart');
		assert.equal(got.length, 11);
	});

	test('a node killed mid-stream: its users go offline, its client resyncs on another node with nothing lost or doubled', async (t) => {
		const room = uniq('kill');
		const a = await userOn(t, 0);
		const b = await userOn(t, 2);
		await join(a.c, room);
		await join(b.c, room);
		const first = [];
		for (let i = 0; i < 5; i++) first.push(await send(a.c, room, `one-${i}`));
		const got = await receiveAll(b.c, room, first.map((m) => m.id), []);
		const last = got.reduce((s, e) => Math.max(s, e.seq), 0);
		await nodes[2].kill();
		await b.c.waitClose(SLOW);
		// Its heartbeats stop: the others take its users offline.
		await a.c.next((e) => e.type === 'presence' && e.user === b.name && e.status === 'offline', SLOW);
		const second = [];
		for (let i = 0; i < 5; i++) second.push(await send(a.c, room, `two-${i}`));
		// b comes back through another node with since = what it had.
		const b2 = await wsAuth(nodes[1].wsUrl, b.token, { since: { [room]: last } });
		t.after(() => b2.close());
		const replay = await receiveAll(b2, room, second.map((m) => m.id), []);
		assertOrdered(replay, 'the resync');
		assert.deepEqual(replay.map((e) => e.id), second.map((m) => m.id));
		await nodes[2].restart();
	});
});
