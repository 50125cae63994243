// Backup and restore (a snapshot taken under write load restores to a
// consistent database with a new epoch), and export → import round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
	useChatd, startChatd, cleanupAfter, tempDir, api, newUser, login, wsAuth, join, send, uniq, CHATD_BIN,
	PG_URL,
} from './lib/chatd.mjs';
import { chatd, chatdOk, jsonLines } from './lib/ops.mjs';

/** The message lines of an export of db (extra args: filters). */
async function exportMessages(db, ...args) {
	return jsonLines(await chatdOk(['--db', db, 'export', ...args])).filter((l) => l.type === 'message');
}

test('backup under write load restores to a consistent database with a new epoch', async (t) => {
	const srv = await useChatd(t);
	const dir = tempDir(t);
	const bk = path.join(dir, 'backup.db');
	const room = uniq('bk');
	const users = [];
	for (let i = 0; i < 4; i++) {
		const u = await newUser(srv, 'bk');
		u.c = await wsAuth(srv.wsUrl, u.token);
		await join(u.c, room);
		u.acked = [];
		users.push(u);
	}
	const epoch = users[0].c.hello.epoch;
	// Leftovers of an interrupted backup and restore must not matter.
	fs.writeFileSync(`${bk}.tmp-wal`, 'stale');
	fs.writeFileSync(`${srv.dbPath}.restore-wal`, 'stale');
	const N = 150;
	let backupDone = null;
	const senders = users.map(async (u, k) => {
		for (let i = 0; i < N; i++) {
			const m = await send(u.c, room, `${u.name} ${i}`);
			u.acked.push(m.id);
			// Start the backup in the middle of the load.
			if (k === 0 && i === N / 3) backupDone = chatdOk(['--db', srv.dbPath, 'backup', bk]);
		}
	});
	await Promise.all(senders);
	const out = await backupDone;
	assert.equal(out, '');
	// A few more after the backup: the restored database is behind.
	let last;
	for (let i = 0; i < 3; i++) last = await send(users[0].c, room, `after ${i}`);

	assert.equal(execFileSync('sqlite3', [bk, 'PRAGMA integrity_check;']).toString().trim(), 'ok');
	const rows = await exportMessages(bk);
	assert.ok(rows.length > 0, 'the backup holds messages');
	// Group commits are atomic and in order: each sender's messages in the
	// backup are a prefix of what it was acknowledged.
	for (const u of users) {
		const mine = rows.filter((m) => m.user === u.name).map((m) => m.id);
		assert.deepEqual(mine, u.acked.slice(0, mine.length), `${u.name}: a prefix`);
	}
	const full = jsonLines(await chatdOk(['--db', bk, 'export']));
	const roomLine = full.find((l) => l.type === 'room' && l.room === room);
	assert.equal(roomLine.last_seq, Math.max(...rows.map((m) => m.seq)), 'last_seq matches the messages');

	// Refused while chatd serves the file.
	const busy = await chatd(['--db', srv.dbPath, 'restore', bk]);
	assert.equal(busy.code, 1);
	assert.match(busy.stderr, /serving/);

	for (const u of users) await u.c.close();
	assert.equal(await srv.stop(), 0);
	await chatdOk(['--db', srv.dbPath, 'restore', bk]);
	for (const f of [`${srv.dbPath}.restore`, `${srv.dbPath}.restore-wal`, `${bk}.tmp`, `${bk}.tmp-wal`])
		assert.ok(!fs.existsSync(f), `no ${path.basename(f)} left`);
	await srv.restart();
	const token = await login(srv, users[0].name, users[0].pw);
	const c = await wsAuth(srv.wsUrl, token, { since: { [room]: last.seq } });
	assert.notEqual(c.hello.epoch, epoch, 'a restore changes the epoch');
	assert.equal(c.hello.epoch.length, 32);
	assert.deepEqual(await c.next((e) => e.type === 'truncated'), { type: 'truncated', room });
	const restored = await exportMessages(srv.dbPath);
	assert.deepEqual(restored, rows, 'the restored database is the backup');
	// Writing goes on from the backup's seqs.
	const m = await send(c, room, 'after the restore');
	assert.ok(m.id > Math.max(...rows.map((r) => r.seq)));
});

test('restore refuses what is not a chatd database; backup refuses a missing database', async (t) => {
	const dir = tempDir(t);
	const junk = path.join(dir, 'junk.db');
	fs.writeFileSync(junk, 'not a database at all, not even close........');
	const db = path.join(dir, 'chat.db');
	const r = await chatd(['--db', db, 'restore', junk]);
	assert.equal(r.code, 1);
	assert.match(r.stderr, /not a chatd database/);
	assert.ok(!fs.existsSync(db), 'nothing put in place');
	const b = await chatd(['--db', path.join(dir, 'missing.db'), 'backup', path.join(dir, 'b.db')]);
	assert.equal(b.code, 1);
	assert.ok(!fs.existsSync(path.join(dir, 'missing.db')), 'backup does not create the database');
});

test('backup, restore and export refuse the live database itself, by path, symlink or hard link', async (t) => {
	const srv = await useChatd(t);
	const u = await newUser(srv, 'lv');
	const c = await wsAuth(srv.wsUrl, u.token);
	const room = uniq('lv');
	await join(c, room);
	await send(c, room, 'before');
	const dir = tempDir(t);
	const sym = path.join(dir, 'sym.db');
	const hard = path.join(dir, 'hard.db');
	fs.symlinkSync(srv.dbPath, sym);
	fs.linkSync(srv.dbPath, hard);
	const refused = /is the database of --db/;
	for (const target of [srv.dbPath, sym, hard, `${srv.dbPath}-wal`, path.join(path.dirname(srv.dbPath), '.', path.basename(srv.dbPath))]) {
		const r = await chatd(['--db', srv.dbPath, 'backup', target]);
		assert.equal(r.code, 1, target);
		assert.match(r.stderr, refused);
	}
	assert.ok(fs.lstatSync(sym).isSymbolicLink(), 'the symlink is left alone');
	// The server never noticed: it still stores and serves.
	await send(c, room, 'after');
	assert.deepEqual((await exportMessages(srv.dbPath)).map((m) => m.text), ['before', 'after']);
	// export >> the database itself: refused before a byte is written.
	const size = fs.statSync(srv.dbPath).size;
	const fd = fs.openSync(sym, 'a');
	const e = spawnSync(CHATD_BIN, ['--db', srv.dbPath, 'export'], { stdio: ['ignore', fd, 'pipe'] });
	fs.closeSync(fd);
	assert.equal(e.status, 1);
	assert.match(e.stderr.toString(), /standard output is the database of --db/);
	assert.equal(fs.statSync(srv.dbPath).size, size);
	// import < the database itself: named as such.
	const ifd = fs.openSync(hard, 'r');
	const i = spawnSync(CHATD_BIN, ['--db', srv.dbPath, 'import'], { stdio: [ifd, 'pipe', 'pipe'] });
	fs.closeSync(ifd);
	assert.equal(i.status, 1);
	assert.match(i.stderr.toString(), /standard input is the database of --db/);
	await c.close();
	await srv.stop();
	// restore from the database itself (its WAL would be deleted under
	// the copy): refused, and the database keeps its history.
	for (const source of [srv.dbPath, sym, hard]) {
		const r = await chatd(['--db', srv.dbPath, 'restore', source]);
		assert.equal(r.code, 1, source);
		assert.match(r.stderr, refused);
	}
	assert.deepEqual((await exportMessages(srv.dbPath)).map((m) => m.text), ['before', 'after']);
	// A real backup next to it still works.
	await chatdOk(['--db', srv.dbPath, 'backup', path.join(dir, 'ok.db')]);
	assert.deepEqual((await exportMessages(path.join(dir, 'ok.db'))).map((m) => m.text), ['before', 'after']);
});

/** Builds a database with public rooms, a DM, edits, deletes, read
 * positions, client_msg_ids, a deleted user and a deleted room. */
async function populate(srv) {
	const a = await newUser(srv, 'ea');
	const b = await newUser(srv, 'eb');
	const c = await newUser(srv, 'ec');
	const ca = await wsAuth(srv.wsUrl, a.token);
	const cb = await wsAuth(srv.wsUrl, b.token);
	const cc = await wsAuth(srv.wsUrl, c.token);
	const r1 = uniq('ex');
	const r2 = uniq('ex');
	const r3 = uniq('ex');
	await join(ca, r1);
	await join(cb, r1);
	await join(cc, r1);
	await join(ca, r2);
	// PostgreSQL's text cannot hold U+0000 (refused there: docs/storage.md).
	const nul = PG_URL ? '' : ' \u0000';
	const m1 = await send(ca, r1, `first «ünïcödé» 漢字${nul} "quotes"\nnewline`);
	const m2 = await send(cb, r1, 'second', { client_msg_id: 'cid-1' });
	await send(cc, r1, 'from c, soon deleted');
	const m4 = await send(ca, r2, 'in r2');
	assert.equal((await ca.request({ type: 'edit', room: r1, id: m1.id, text: 'first, edited' })).type, 'edited');
	assert.equal((await cb.request({ type: 'delete', room: r1, id: m2.id })).type, 'deleted');
	assert.equal((await ca.request({ type: 'edit', room: r2, id: m4.id, text: 'edited then deleted' })).type, 'edited');
	assert.equal((await ca.request({ type: 'delete', room: r2, id: m4.id })).type, 'deleted');
	const dm = await ca.request({ type: 'dm', user: b.name });
	assert.equal(dm.type, 'joined');
	await send(cb, dm.room, 'a direct message');
	const rd = await cb.request({ type: 'read', room: r1, seq: m1.id });
	assert.equal(rd.type, 'read');
	await join(ca, r3);
	await send(ca, r3, 'the highest seq, in a room about to go');
	for (const cl of [ca, cb, cc]) await cl.close();
	await chatdOk(['--db', srv.dbPath, 'room', 'del', r3]);
	await chatdOk(['--db', srv.dbPath, 'user', 'del', c.name]);
	return { a, b, c, r1, r2, dm: dm.room };
}

test('export → import → export round-trips a database with edits, deletes and DMs exactly', async (t) => {
	const srv = await useChatd(t);
	const { a, b, c, r1, r2, dm } = await populate(srv);
	const e1 = await chatdOk(['--db', srv.dbPath, 'export']);
	const lines = jsonLines(e1);
	assert.equal(lines[0].type, 'chatd_export');
	assert.ok(lines[0].seq_floor > 0, 'the deleted room raised seq_floor');
	assert.ok(lines.some((l) => l.type === 'member' && l.room === dm && l.user === a.name));
	assert.ok(lines.some((l) => l.type === 'user' && l.username === c.name && l.deleted === true));

	const dir = tempDir(t);
	const db2 = path.join(dir, 'moved.db');
	const imp = await chatd(['--db', db2, 'import'], { input: e1 });
	assert.equal(imp.code, 0, imp.stderr);
	const e2 = await chatdOk(['--db', db2, 'export']);
	assert.equal(e2, e1, 'export → import → export is identical');

	const again = await chatd(['--db', db2, 'import'], { input: e1 });
	assert.equal(again.code, 1);
	assert.match(again.stderr, /not empty/);

	// The moved database serves the same state: passwords, rooms, read
	// positions, history, deleted accounts and next seqs.
	const before = (await api(srv, 'GET', '/api/me', { token: a.token })).json;
	const hist = async (s, tok, room) => (await api(s, 'GET', `/api/rooms/${encodeURIComponent(room)}/messages`, { token: tok })).json.messages;
	const h1 = [await hist(srv, a.token, r1), await hist(srv, a.token, r2), await hist(srv, a.token, dm)];
	await srv.stop();
	const srv2 = cleanupAfter(await startChatd({ dbPath: db2 }), t);
	const ta = await login(srv2, a.name, a.pw);
	const tb = await login(srv2, b.name, b.pw);
	assert.deepEqual((await api(srv2, 'GET', '/api/me', { token: ta })).json, before);
	assert.deepEqual([await hist(srv2, ta, r1), await hist(srv2, ta, r2), await hist(srv2, ta, dm)], h1);
	assert.equal((await api(srv2, 'POST', '/api/login', { body: { username: c.name, password: c.pw } })).status, 401);
	const cb = await wsAuth(srv2.wsUrl, tb);
	const again2 = await cb.request({ type: 'send', room: r1, text: 'retry', client_msg_id: 'cid-1' });
	assert.equal(again2.deleted, true, 'client_msg_id survives: the original comes back');
	const m = await send(cb, r1, 'new on the moved server');
	assert.ok(m.id > lines[0].seq_floor, 'seqs continue above everything exported');
});

test('export filters: --room, --since, --until; every line is a JSON message', async (t) => {
	const srv = await useChatd(t);
	const { a, r1 } = await populate(srv);
	const all = await exportMessages(srv.dbPath);
	const inRoom = await exportMessages(srv.dbPath, '--room', r1.toUpperCase());
	assert.ok(inRoom.length > 0);
	assert.deepEqual(inRoom, all.filter((m) => m.room === r1));
	for (const m of all) {
		assert.deepEqual(Object.keys(m).slice(0, 5), ['type', 'id', 'seq', 'room', 'user']);
		if (m.deleted) assert.equal(m.text, undefined);
		else assert.equal(typeof m.text, 'string');
	}
	const since = all[1].seq;
	assert.deepEqual(await exportMessages(srv.dbPath, '--since', String(since)), all.filter((m) => m.seq > since));
	const until = all[1].ts;
	assert.deepEqual(await exportMessages(srv.dbPath, '--until', String(until)), all.filter((m) => m.ts <= until));
	const filtered = jsonLines(await chatdOk(['--db', srv.dbPath, 'export', '--room', r1]));
	assert.ok(filtered.every((l) => l.type === 'message'), 'a filtered export holds messages only');
	const bad = await chatd(['--db', srv.dbPath, 'export', '--room', uniq('none')]);
	assert.equal(bad.code, 1);
	const notExport = await chatd(['--db', srv.dbPath, 'room', 'list', '--since', '3']);
	assert.notEqual(notExport.code, 0);
	assert.ok(all.some((m) => m.user === a.name));
});

test('import of message lines alone creates their rooms and users; they log in after user passwd', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'chat.db');
	const x = uniq('ix');
	const y = uniq('iy');
	const dm = `dm:${[x, y].sort().join(':')}`;
	const msgs = [
		{ type: 'message', id: 5, seq: 5, room: 'imported', user: x, text: 'hello', ts: 1000 },
		{ type: 'message', id: 6, seq: 9, room: 'imported', user: y, text: 'edited', ts: 1001, edited_ts: 1500 },
		{ type: 'message', id: 7, seq: 8, room: dm, user: x, ts: 1002, deleted: true },
	];
	const r = await chatd(['--db', db, 'import'], { input: msgs.map((m) => JSON.stringify(m)).join('\n') + '\n' });
	assert.equal(r.code, 0, r.stderr);
	assert.deepEqual(await exportMessages(db), msgs);
	const rooms = await chatdOk(['--db', db, 'room', 'list']);
	assert.match(rooms, new RegExp(`^${dm}\\tdm\\t0\\t8$`, 'm'));
	assert.match(rooms, /^imported\tpublic\t0\t9$/m);
	assert.match(await chatdOk(['--db', db, 'user', 'list']), new RegExp(`\\t${x}\\n`));
	await chatdOk(['--db', db, 'user', 'passwd', x], { input: 'a-new-password\n' });
	const srv = cleanupAfter(await startChatd({ dbPath: db }), t);
	await login(srv, x, 'a-new-password');
	// Without user passwd, an imported user without a hash cannot log in.
	assert.equal((await api(srv, 'POST', '/api/login', { body: { username: y, password: 'any-password' } })).status, 401);
});

test('import rejects a malformed stream with the line number and stores nothing', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'chat.db');
	const good = JSON.stringify({ type: 'message', id: 1, seq: 1, room: 'r', user: 'u', text: 'ok', ts: 1 });
	for (const [bad, why] of [
		['{not json', /line 2: not a JSON object/],
		[JSON.stringify({ type: 'message', id: 2, seq: 2, room: 'Bad Room!', user: 'u', text: 'x', ts: 1 }), /line 2: bad message line/],
		[JSON.stringify({ type: 'message', id: 1, seq: 3, room: 'r', user: 'u', text: 'dup', ts: 1 }), /line 2: duplicate/],
		[JSON.stringify({ type: 'bogus' }), /line 2: unknown type/],
	]) {
		const r = await chatd(['--db', db, 'import'], { input: `${good}\n${bad}\n` });
		assert.equal(r.code, 1, bad);
		assert.match(r.stderr, why);
		assert.deepEqual(await exportMessages(db), [], 'all or nothing');
	}
});

test('import refuses hostile lines with the line number and stores nothing', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'chat.db');
	const good = JSON.stringify({ type: 'message', id: 1, seq: 1, room: 'r', user: 'u', text: 'ok', ts: 1 });
	const salt = '$YW5uc2FsdGFubnNhbHQ$aGFzaC1vZi1hbm4taGFzaC1vZi1hbm4';
	// Raw text: JSON.stringify would round 2^63-1 to a double.
	for (const [bad, why] of [
		['{"type":"message","id":9223372036854775807,"room":"r","user":"u","text":"x","ts":1}', /line 2: id out of range/],
		['{"type":"message","id":2,"seq":9007199254740992,"room":"r","user":"u","text":"x","ts":1}', /line 2: seq out of range/],
		['{"type":"message","id":0,"room":"r","user":"u","text":"x","ts":1}', /line 2: id out of range/],
		['{"type":"message","id":2,"room":"r","user":"u","text":"x","ts":4102444800001}', /line 2: time out of range/],
		['{"type":"message","id":5,"seq":4,"room":"r","user":"u","text":"x","ts":1}', /line 2: seq below id/],
		['{"type":"member","room":"dm:alice:bob","user":"carol"}', /line 2: a DM's members are the two users of its name/],
		['{"type":"message","id":2,"room":"dm:alice:bob","user":"carol","text":"x","ts":1}', /line 2: a DM's messages are by the two users/],
		['{"type":"member","room":"r","user":"u","read_seq":99}', /line 2: read_seq above the room's last_seq/],
		[JSON.stringify({ type: 'user', id: 7, username: 'mallory', pwhash: `$argon2id$v=19$m=1048576,t=8,p=1${salt}` }), /line 2: pwhash costs more than 4 times/],
		[JSON.stringify({ type: 'user', id: 7, username: 'mallory', pwhash: 'plaintext' }), /line 2: pwhash is not an Argon2id hash/],
	]) {
		const r = await chatd(['--db', db, 'import'], { input: `${good}\n${bad}\n` });
		assert.equal(r.code, 1, bad);
		assert.match(r.stderr, why);
		assert.deepEqual(await exportMessages(db), [], 'all or nothing');
		assert.equal(await chatdOk(['--db', db, 'user', 'list']), '', 'no user stored');
	}
});

test('a database at the last seq (2^53-1) refuses new changes with internal and keeps serving', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'chat.db');
	const x = uniq('sx');
	const last = 9007199254740991;
	const line = JSON.stringify({ type: 'message', id: last, room: 'full', user: x, text: 'the last', ts: 1 });
	const r = await chatd(['--db', db, 'import'], { input: `${line}\n` });
	assert.equal(r.code, 0, r.stderr);
	await chatdOk(['--db', db, 'user', 'passwd', x], { input: 'a-new-password\n' });
	const srv = cleanupAfter(await startChatd({ dbPath: db }), t);
	const tok = await login(srv, x, 'a-new-password');
	const c = await wsAuth(srv.wsUrl, tok);
	await join(c, 'full');
	for (const req of [{ type: 'send', room: 'full', text: 'one more' }, { type: 'edit', room: 'full', id: last, text: 'x' }, { type: 'delete', room: 'full', id: last }]) {
		const e = await c.request(req);
		assert.equal(e.type, 'error', JSON.stringify(e));
		assert.equal(e.code, 'internal');
	}
	assert.match(srv.logs(), /would pass 9007199254740991/);
	// Still serving, and nothing past the last seq was stored.
	const h = await api(srv, 'GET', '/api/rooms/full/messages', { token: tok });
	assert.equal(h.status, 200);
	assert.deepEqual(h.json.messages.map((m) => [m.id, m.seq, m.text]), [[last, last, 'the last']]);
	await c.close();
});

test('import refuses a database that chatd is serving, even an empty one', async (t) => {
	const srv = await useChatd(t);
	const line = JSON.stringify({ type: 'message', id: 1, seq: 1, room: 'r', user: 'u', text: 'x', ts: 1 });
	const r = await chatd(['--db', srv.dbPath, 'import'], { input: `${line}\n` });
	assert.equal(r.code, 1);
	assert.match(r.stderr, /serving/);
	assert.deepEqual(await exportMessages(srv.dbPath), []);
});
