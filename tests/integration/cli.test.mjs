// The command line: --help, --version, bad flags, startup failures, the
// admin commands (`chatd user add|passwd|del NAME --db PATH`) and schema
// version checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
	CHATD_BIN, WEB_DIR, useChatd, startChatd, tempDir, api, login, uniq, freePort, withTimeout,
	PG_URL, pgExec,
} from './lib/chatd.mjs';

/** Runs chatd with args to completion: {code, signal, stdout, stderr}. */
function run(args, { input, ms = 15000 } = {}) {
	return new Promise((resolve, reject) => {
		const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHATD_')));
		const p = spawn(CHATD_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
		let stdout = '', stderr = '';
		p.stdout.on('data', (d) => { stdout += d; });
		p.stderr.on('data', (d) => { stderr += d; });
		const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`chatd ${args.join(' ')}: no exit in ${ms} ms; stderr: ${stderr}`)); }, ms);
		p.on('error', (e) => { clearTimeout(timer); reject(e); });
		p.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
		p.stdin.on('error', () => {});
		if (input !== undefined) p.stdin.write(input);
		p.stdin.end();
	});
}

const user = (o, db, ...rest) => run(["--db", db, "user", ...rest], o);

test('--help exits 0 and describes the flags', async () => {
	const r = await run(['--help']);
	assert.equal(r.code, 0, r.stderr);
	const out = r.stdout + r.stderr;
	for (const flag of ['--listen', '--db', '--web']) assert.ok(out.includes(flag), `help mentions ${flag}`);
});

test('--version exits 0 and prints a version', async () => {
	const r = await run(['--version']);
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stdout + r.stderr, /\d+\.\d+/);
});

test('a bad flag: one line on stderr, non-zero exit', async () => {
	for (const args of [['--bogus'], ['--listen'], ['--rate-limits', 'maybe'], ['--registration', 'sometimes'], ['--log-level', 'loud']]) {
		const r = await run(args);
		assert.notEqual(r.code, 0, `${args.join(' ')} exit code`);
		assert.equal(r.signal, null, `${args.join(' ')} crashed with ${r.signal}`);
		const lines = r.stderr.trim().split('\n').filter(Boolean);
		assert.equal(lines.length, 1, `${args.join(' ')}: stderr ${JSON.stringify(r.stderr)}`);
	}
});

test('a busy port: clear error, non-zero exit', async (t) => {
	const dir = tempDir(t);
	const blocker = net.createServer();
	await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
	t.after(() => blocker.close());
	const port = blocker.address().port;
	const r = await run(['--listen', `127.0.0.1:${port}`, '--db', path.join(dir, 'c.db'), '--web', WEB_DIR, '--rate-limits', 'off']);
	assert.notEqual(r.code, 0);
	assert.equal(r.signal, null);
	assert.match(r.stderr, /in use|address|bind|listen/i);
	assert.ok(r.stderr.includes(String(port)) || /in use/i.test(r.stderr), r.stderr);
});

test('an unwritable database path: clear error, non-zero exit', async (t) => {
	const dir = tempDir(t);
	fs.writeFileSync(path.join(dir, 'file'), 'x');
	const port = await freePort();
	for (const db of [path.join(dir, 'file', 'chat.db'), path.join(dir, 'missing-dir', 'chat.db')]) {
		const r = await run(['--listen', `127.0.0.1:${port}`, '--db', db, '--web', WEB_DIR, '--rate-limits', 'off']);
		assert.notEqual(r.code, 0, db);
		assert.equal(r.signal, null);
		assert.ok(r.stderr.trim().length > 0, 'says why');
		assert.match(r.stderr, /db|database|chat\.db|open/i);
	}
});

test('bad --listen and --web values: non-zero exit', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'c.db');
	for (const listen of ['nonsense', '127.0.0.1:99999', '127.0.0.1:']) {
		const r = await run(['--listen', listen, '--db', db, '--web', WEB_DIR]);
		assert.notEqual(r.code, 0, listen);
		assert.equal(r.signal, null);
	}
	const port = await freePort();
	const r = await run(['--listen', `127.0.0.1:${port}`, '--db', db, '--web', path.join(dir, 'no-such-web')], { ms: 5000 }).catch((e) => ({ timeout: e }));
	if (r.timeout) {
		// started anyway: acceptable only if it serves 404s; kill it
		assert.fail('chatd started with a missing web root');
	}
	assert.notEqual(r.code, 0);
});

test('user add (password on stdin), then login works', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'c.db');
	const name = uniq('cli');
	const r = await user({ input: 'cli-password-1\n' }, db, 'add', name);
	assert.equal(r.code, 0, r.stderr);
	const srv = await useChatd(t, { dbPath: db, args: ['--registration', 'closed'] });
	const token = await login(srv, name, 'cli-password-1');
	assert.equal(typeof token, 'string');
	// upper case input folded
	const r2 = await user({ input: 'cli-password-2\n' }, db, 'add', `${name}X`.toUpperCase());
	assert.equal(r2.code, 0, r2.stderr);
	await login(srv, `${name}x`, 'cli-password-2');
});

test('user add while the server runs; duplicates and bad input refused', async (t) => {
	const srv = await useChatd(t);
	const name = uniq('live');
	const r = await user({ input: 'live-password\n' }, srv.dbPath, 'add', name);
	assert.equal(r.code, 0, r.stderr);
	await login(srv, name, 'live-password');
	const dup = await user({ input: 'other-password\n' }, srv.dbPath, 'add', name);
	assert.notEqual(dup.code, 0);
	assert.ok(dup.stderr.trim().length > 0);
	const badName = await user({ input: 'some-password\n' }, srv.dbPath, 'add', '.bad');
	assert.notEqual(badName.code, 0);
	const shortPw = await user({ input: 'short\n' }, srv.dbPath, 'add', uniq('sp'));
	assert.notEqual(shortPw.code, 0);
	const noPw = await user({ input: '' }, srv.dbPath, 'add', uniq('np'));
	assert.notEqual(noPw.code, 0);
});

test('user passwd changes the password', async (t) => {
	const srv = await useChatd(t);
	const name = uniq('pwd');
	assert.equal((await user({ input: 'first-password\n' }, srv.dbPath, 'add', name)).code, 0);
	await login(srv, name, 'first-password');
	const r = await user({ input: 'second-password\n' }, srv.dbPath, 'passwd', name);
	assert.equal(r.code, 0, r.stderr);
	await login(srv, name, 'second-password');
	const old = await api(srv, 'POST', '/api/login', { body: { username: name, password: 'first-password' } });
	assert.equal(old.status, 401);
	const missing = await user({ input: 'whatever-pass\n' }, srv.dbPath, 'passwd', uniq('ghost'));
	assert.notEqual(missing.code, 0);
});

test('user del: login fails afterwards, the name stays taken', async (t) => {
	const srv = await useChatd(t);
	const name = uniq('del');
	assert.equal((await user({ input: 'del-password\n' }, srv.dbPath, 'add', name)).code, 0);
	const token = await login(srv, name, 'del-password');
	const r = await user({}, srv.dbPath, 'del', name);
	assert.equal(r.code, 0, r.stderr);
	const li = await api(srv, 'POST', '/api/login', { body: { username: name, password: 'del-password' } });
	assert.equal(li.status, 401);
	assert.equal(li.json.error.code, 'bad_credentials');
	const me = await api(srv, 'GET', '/api/me', { token });
	assert.equal(me.status, 401, 'sessions of a deleted user are revoked');
	const reg = await api(srv, 'POST', '/api/register', { body: { username: name, password: 'new-password' } });
	assert.equal(reg.status, 409);
	const missing = await user({}, srv.dbPath, 'del', uniq('ghost'));
	assert.notEqual(missing.code, 0);
});

test('a database with a newer schema is refused', async (t) => {
	const srv = await startChatd();
	t.after(() => srv.cleanup());
	assert.equal(await srv.stop(), 0);
	// SQLite's schema version is user_version; PostgreSQL's, meta's.
	if (PG_URL) pgExec("UPDATE meta SET value = '9999' WHERE key = 'schema_version'", srv.dbPath);
	else execFileSync('sqlite3', [srv.dbPath, 'PRAGMA user_version = 9999;']);
	const port = await freePort();
	const r = await run(['--listen', `127.0.0.1:${port}`, '--db', srv.dbPath, '--web', WEB_DIR, '--rate-limits', 'off']);
	assert.notEqual(r.code, 0);
	assert.equal(r.signal, null);
	assert.match(r.stderr, /schema|version|newer/i);
	const u = await run(["--db", srv.dbPath, "user", "add", uniq("x")], { input: 'password-123\n' });
	assert.notEqual(u.code, 0);
});

test('a file that is not a database is refused', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'junk.db');
	fs.writeFileSync(db, 'this is not an sqlite database, just some text '.repeat(100));
	const port = await freePort();
	const r = await run(['--listen', `127.0.0.1:${port}`, '--db', db, '--web', WEB_DIR, '--rate-limits', 'off']);
	assert.notEqual(r.code, 0);
	assert.equal(r.signal, null);
});

test('--log-level and SIGINT', async (t) => {
	const srv = await useChatd(t, { args: ['--log-level', 'debug'] });
	assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
	srv.proc.kill('SIGINT');
	const info = await withTimeout(srv.exited(), 10000, 'exit after SIGINT');
	assert.equal(info.code, 0);
});
