// chatd on PostgreSQL, for an admin (issue 17): moving a team from SQLite
// with export then import, PostgreSQL going away and coming back, and
// check-config of both connections. Uses the throwaway PostgreSQL at
// CHATD_TEST_PG (scripts/services.sh), a fresh schema per test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import {
	useChatd, api, newUser, login, wsAuth, join, send, uniq, tempDir, until,
	pgSchema, pgExec, freePort,
} from './lib/chatd.mjs';
import { chatd, chatdOk } from './lib/ops.mjs';

const PG = process.env.CHATD_TEST_PG;
const SERVICES = process.env.CHATD_TEST_SERVICES;

/** A fresh schema, dropped after t. */
function schemaFor(t) {
	assert.ok(PG, 'CHATD_TEST_PG is not set: run through scripts/test.sh (scripts/services.sh)');
	const s = pgSchema('ops');
	t.after(() => { try { pgExec(`DROP SCHEMA ${s.name} CASCADE`); } catch { /* gone */ } });
	return s;
}

test('a team moves from SQLite to PostgreSQL with export then import, exactly', async (t) => {
	const srv = await useChatd(t, { dbPath: path.join(tempDir(t), 'team.db') });
	const room = uniq('move');
	const a = await newUser(srv);
	const b = await newUser(srv);
	const ca = await wsAuth(srv.wsUrl, a.token);
	const cb = await wsAuth(srv.wsUrl, b.token);
	await join(ca, room);
	await join(cb, room);
	const m1 = await send(ca, room, 'first');
	await send(cb, room, 'second', { reply_to: m1.id });
	const ed = await ca.request({ type: 'edit', room, id: m1.id, text: 'first, edited' });
	assert.equal(ed.type, 'edited', JSON.stringify(ed));
	const dm = await ca.request({ type: 'dm', user: b.name });
	await send(ca, dm.room, 'a DM');
	await ca.close();
	await cb.close();
	assert.equal(await srv.stop(), 0);

	const e1 = await chatdOk(['--db', srv.dbPath, 'export']);
	const s = schemaFor(t);
	const imp = await chatd(['--db', s.url, 'import'], { input: e1 });
	assert.equal(imp.code, 0, imp.stderr);
	const e2 = await chatdOk(['--db', s.url, 'export']);
	assert.equal(e2, e1, 'the PostgreSQL export is the SQLite export, byte for byte');

	// And the team goes on there: same passwords, history, new seqs above.
	const pg = await useChatd(t, { dbPath: s.url, args: ['--files', path.join(tempDir(t), 'files')] });
	const token = await login(pg, a.name, a.pw);
	const c = await wsAuth(pg.wsUrl, token);
	t.after(() => c.close());
	const h = await c.request({ type: 'history', room, limit: 10 });
	assert.deepEqual(h.messages.map((m) => m.text), ['first, edited', 'second']);
	const m3 = await send(c, room, 'third, on PostgreSQL');
	assert.ok(m3.seq > Math.max(...h.messages.map((m) => m.seq)), 'seqs go on above the imported ones');
});

/** A TCP proxy to the test PostgreSQL's Unix socket that can be cut. */
async function pgProxy(t) {
	assert.ok(SERVICES, 'CHATD_TEST_SERVICES is not set');
	const sock = path.join(SERVICES, '.s.PGSQL.5432');
	const port = await freePort();
	const conns = new Set();
	let server = null;
	const listen = () => new Promise((resolve) => {
		server = net.createServer((c) => {
			const up = net.connect(sock);
			conns.add(c);
			conns.add(up);
			const drop = () => { c.destroy(); up.destroy(); conns.delete(c); conns.delete(up); };
			c.on('error', drop);
			up.on('error', drop);
			c.on('close', drop);
			up.on('close', drop);
			c.pipe(up);
			up.pipe(c);
		});
		server.listen(port, '127.0.0.1', resolve);
	});
	await listen();
	const proxy = {
		port,
		/** Refuses new connections and breaks the open ones. */
		cut: () => new Promise((resolve) => {
			server.close(() => resolve());
			for (const c of conns) c.destroy();
			conns.clear();
		}),
		restore: listen,
	};
	t.after(() => proxy.cut());
	return proxy;
}

test('PostgreSQL unreachable: sends answer internal, /healthz 503, and chatd recovers without a restart', async (t) => {
	const s = schemaFor(t);
	const proxy = await pgProxy(t);
	const url = `postgresql://chatd@127.0.0.1:${proxy.port}/chatd?options=-csearch_path%3D${s.name}%2Cpublic`;
	const srv = await useChatd(t, { dbPath: url, args: ['--files', path.join(tempDir(t), 'files')] });
	const u = await newUser(srv);
	const c = await wsAuth(srv.wsUrl, u.token);
	t.after(() => c.close());
	const room = uniq('down');
	await join(c, room);
	const before = await send(c, room, 'before');

	await proxy.cut();
	const r = await c.request({ type: 'send', room, text: 'while down' });
	assert.equal(r.type, 'error');
	assert.equal(r.code, 'internal');
	const hz = await api(srv.url, 'GET', '/healthz');
	assert.equal(hz.status, 503);
	const met = await api(srv.url, 'GET', '/metrics', { raw: true });
	assert.match(met.text, /^chatd_cluster_db_up 0$/m);
	assert.match(met.text, /^chatd_cluster_db_outages_total 1$/m);

	await proxy.restore();
	await until(async () => (await api(srv.url, 'GET', '/healthz')).status === 200,
		{ what: '/healthz 200 again', tries: 200 });
	const after = await send(c, room, 'after');
	const h = await c.request({ type: 'history', room, limit: 10 });
	assert.deepEqual(h.messages.map((m) => m.id), [before.id, after.id], 'the refused send was not stored');
	assert.equal((srv.logs().match(/postgresql: unreachable/g) || []).length, 1, 'the outage is logged once');
});

test('check-config tests the PostgreSQL and Redis connections', async (t) => {
	const s = schemaFor(t);
	const ok = await chatd(['--db', s.url, 'check-config']);
	assert.equal(ok.code, 0, ok.stderr);
	const port = await freePort();
	const bad = await chatd(['--db', s.url, '--redis', `redis://127.0.0.1:${port}`, 'check-config']);
	assert.equal(bad.code, 1);
	assert.match(bad.stderr, /--redis/);
	const nodb = await chatd(['--db', `postgresql://chatd@127.0.0.1:${port}/chatd`, 'check-config']);
	assert.equal(nodb.code, 1);
	assert.match(nodb.stderr, /--db/);
	// A password in the URI is never printed.
	const pw = await chatd(['--db', `postgresql://chatd:s3cret@127.0.0.1:${port}/chatd`, 'check-config']);
	assert.doesNotMatch(pw.stdout + pw.stderr, /s3cret/);
});

test('import refuses a PostgreSQL database a chatd is serving; once it stops, import goes ahead', async (t) => {
	const s = schemaFor(t);
	const srv = await useChatd(t, { dbPath: s.url, args: ['--files', path.join(tempDir(t), 'files')] });
	const line = '{"type":"chatd_export","version":1,"epoch":"00000000000000000000000000000000","seq_floor":0}\n';
	const imp = await chatd(['--db', s.url, 'import'], { input: line });
	assert.equal(imp.code, 1);
	assert.match(imp.stderr, /serving this database/);
	assert.equal(await srv.stop(), 0);
	// Stopped: the lock went with its connection.
	const again = await chatd(['--db', s.url, 'import'], { input: '' });
	assert.doesNotMatch(again.stderr, /serving/);
});
