// Migrations 004-006 (unread counters, team rooms, then mentions, reactions
// and replies) upgrade a database made by the migrations before them, in
// place: its users, rooms, messages, seqs and read positions stay, the old
// messages get no v2 fields, and the new requests work on them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
	REPO, startChatd, api, register, login, wsAuth, join, send, tempDir,
} from './lib/chatd.mjs';

const servers = [];
after(() => Promise.all(servers.map((s) => s.cleanup())));

const sql = (db, text) => execFileSync('sqlite3', [db], { input: text }).toString().trim();

test('a version 3 database upgrades in place', async (t) => {
	// Password hashes made by chatd itself, so the users can log in.
	const donor = await startChatd();
	servers.push(donor);
	await register(donor, 'alice', 'password-a');
	await register(donor, 'bob', 'password-b');
	await donor.stop();
	const hashes = Object.fromEntries(sql(donor.dbPath, "SELECT username || '|' || pwhash FROM users ORDER BY id;")
		.split('\n').map((l) => l.split('|')));

	// The schema of migrations 001-003, and data in it.
	const dir = tempDir(t);
	const db = path.join(dir, 'v3.db');
	const migrations = ['001_initial.sql', '002_deferred_search_index.sql', '003_changed_index.sql']
		.map((f) => fs.readFileSync(path.join(REPO, 'migrations', 'sqlite', f), 'utf8')).join('\n');
	sql(db, `PRAGMA journal_mode = WAL;
BEGIN;
${migrations}
PRAGMA user_version = 3;
INSERT INTO users (id, username, pwhash, created_at) VALUES (1, 'alice', '${hashes.alice}', 1), (2, 'bob', '${hashes.bob}', 1);
INSERT INTO rooms (id, name, kind, created_at, last_seq) VALUES (1, 'old', 0, 1, 3);
INSERT INTO members (room_id, user_id, read_seq, joined_at) VALUES (1, 1, 0, 1), (1, 2, 0, 1);
INSERT INTO messages (id, seq, room_id, user_id, text, ts) VALUES
  (1, 1, 1, 1, 'hello @bob', 1000), (2, 2, 1, 2, '@room hi', 1001), (3, 3, 1, 1, 'third', 1002);
COMMIT;`);

	const srv = await startChatd({ dbPath: db });
	servers.push(srv);
	assert.equal(sql(db, 'PRAGMA user_version;'), '7', 'the current schema (007: files)');
	assert.equal(sql(db, 'PRAGMA integrity_check;'), 'ok');
	const tokenA = await login(srv, 'alice', 'password-a');
	const tokenB = await login(srv, 'bob', 'password-b');
	const h = await api(srv, 'GET', '/api/rooms/old/messages', { token: tokenA });
	assert.equal(h.status, 200);
	assert.deepEqual(h.json.messages, [
		{ id: 1, seq: 1, room: 'old', user: 'alice', text: 'hello @bob', ts: 1000 },
		{ id: 2, seq: 2, room: 'old', user: 'bob', text: '@room hi', ts: 1001 },
		{ id: 3, seq: 3, room: 'old', user: 'alice', text: 'third', ts: 1002 },
	]);
	// Messages from before mentions existed count for nobody.
	const cb = await wsAuth(srv.wsUrl, tokenB);
	t.after(() => cb.close());
	const st = cb.hello.rooms.find((r) => r.name === 'old');
	assert.deepEqual(st, {
		name: 'old', kind: 'public', last_seq: 3, read_seq: 0, unread: 2, mentions: 0,
		topic: '', role: 'member', notify: 'all',
	});
	// The new requests on old messages.
	const ca = await wsAuth(srv.wsUrl, tokenA);
	t.after(() => ca.close());
	await join(ca, 'old');
	const r = await cb.request({ type: 'react', room: 'old', id: 1, emoji: '👍' });
	assert.equal(r.type, 'reaction');
	assert.equal(r.seq, 4);
	assert.deepEqual(r.reactions, [{ emoji: '👍', count: 1, users: ['bob'] }]);
	const m = await send(ca, 'old', 'again @bob', { reply_to: 3 });
	assert.deepEqual(m.mentions, ['bob']);
	assert.equal(m.reply_to, 3);
	const me = await api(srv, 'GET', '/api/me', { token: tokenB });
	assert.deepEqual(me.json.rooms.find((x) => x.name === 'old'), {
		name: 'old', kind: 'public', last_seq: m.seq, read_seq: 0, unread: 3, mentions: 1,
		topic: '', role: 'member', notify: 'all',
	});
	// Reading up to the end clears both counts.
	const rd = await cb.request({ type: 'read', room: 'old', seq: m.seq });
	assert.equal(rd.seq, m.seq);
	const me2 = await api(srv, 'GET', '/api/me', { token: tokenB });
	const st2 = me2.json.rooms.find((x) => x.name === 'old');
	assert.equal(st2.unread, 0);
	assert.equal(st2.mentions, 0);
});
