// The team-room admin commands: chatd room create [--private] [--owner U]
// [--topic T], chatd room role ROOM USER ROLE, and room list's kinds; a
// serving chatd sees what they did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import {
	CHATD_BIN, useChatd, tempDir, newUser, wsAuth, join, uniq,
} from './lib/chatd.mjs';

/** Runs chatd with args to completion: {code, stdout, stderr}. */
function run(args, { input } = {}) {
	return new Promise((resolve, reject) => {
		const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHATD_')));
		// A CLI that never exits is killed and fails the test (a watchdog,
		// not a wait: the exit event resolves).
		const p = spawn(CHATD_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], env,
			signal: AbortSignal.timeout(15000), killSignal: 'SIGKILL' });
		let stdout = '', stderr = '';
		p.stdout.on('data', (d) => { stdout += d; });
		p.stderr.on('data', (d) => { stderr += d; });
		p.on('error', (e) => reject(new Error(`chatd ${args.join(' ')}: ${e.message}`)));
		p.on('exit', (code) => resolve({ code, stdout, stderr }));
		p.stdin.on('error', () => {});
		if (input !== undefined) p.stdin.write(input);
		p.stdin.end();
	});
}

test('room create and role: arguments, errors, list kinds', async (t) => {
	const db = path.join(tempDir(t), 'c.db');
	assert.equal((await run(['--db', db, 'user', 'add', 'alice'], { input: 'password1\n' })).code, 0);
	let r = await run(['--db', db, 'room', 'create', 'Team', '--private', '--owner', 'ALICE', '--topic', 'plans']);
	assert.equal(r.code, 0, r.stderr);
	r = await run(['--db', db, 'room', 'create', 'lobby']);
	assert.equal(r.code, 0, r.stderr);
	r = await run(['--db', db, 'room', 'create', 'lobby']);
	assert.equal(r.code, 1);
	assert.match(r.stderr, /exists/);
	for (const args of [
		['room', 'create', 'dm:a:b'],
		['room', 'create', 'bad name'],
		['room', 'create', 'x1', '--owner', 'nobody'],
		['room', 'create', 'x2', '--topic', 'y'.repeat(251)],
		['room', 'role', 'lobby', 'alice', 'moderator'], // not a member
		['room', 'role', 'team', 'alice', 'boss'],
		['room', 'role', 'nosuch', 'alice', 'owner'],
		['room', 'role', 'team', 'nobody', 'owner'],
	]) {
		r = await run(['--db', db, ...args]);
		assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
		assert.ok(r.stderr.length > 0);
	}
	for (const args of [['room', 'role', 'team', 'alice'], ['room', 'create'], ['room', 'list', '--private'], ['user', 'list', '--topic', 'x']]) {
		r = await run(['--db', db, ...args]);
		assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
	}
	r = await run(['--db', db, 'room', 'list']);
	assert.equal(r.code, 0);
	assert.equal(r.stdout, 'lobby\tpublic\t0\t0\nteam\tprivate\t1\t0\n');
	r = await run(['--db', db, 'room', 'role', 'team', 'alice', 'moderator']);
	assert.equal(r.code, 0, r.stderr);
	r = await run(['--db', db, 'export']);
	assert.match(r.stdout, /"room":"team","kind":"private".*"topic":"plans"/);
	assert.match(r.stdout, /"room":"team","user":"alice".*"role":"moderator"/);
});

test('an admin gives an old room its owner while chatd serves', async (t) => {
	const srv = await useChatd(t);
	const a = await newUser(srv.url, 'a');
	const b = await newUser(srv.url, 'b');
	const ca = await wsAuth(srv.wsUrl, a.token);
	const cb = await wsAuth(srv.wsUrl, b.token);
	t.after(() => ca.close());
	t.after(() => cb.close());
	const room = uniq('r');
	await join(ca, room);
	await join(cb, room);
	await fails(cb, { type: 'topic', room, topic: 'mine' });
	const r = await run(['--db', srv.dbPath, 'room', 'role', room, b.name, 'owner']);
	assert.equal(r.code, 0, r.stderr);
	const tp = await cb.request({ type: 'topic', room, topic: 'mine' });
	assert.equal(tp.type, 'topic');
	const j = await join(cb, room);
	assert.deepEqual(j.roles, { [a.name]: 'owner', [b.name]: 'owner' });
	// A private room made by the CLI: its owner sees it at the next hello.
	const p = uniq('p');
	assert.equal((await run(['--db', srv.dbPath, 'room', 'create', p, '--private', '--owner', a.name])).code, 0);
	const ca2 = await wsAuth(srv.wsUrl, a.token);
	t.after(() => ca2.close());
	const st = ca2.hello.rooms.find((x) => x.name === p);
	assert.equal(st.kind, 'private');
	assert.equal(st.role, 'owner');
	const f = await cb.request({ type: 'join', room: p });
	assert.equal(f.code, 'forbidden');
});

async function fails(c, req) {
	const r = await c.request(req);
	assert.equal(r.code, 'forbidden', JSON.stringify(r));
}
