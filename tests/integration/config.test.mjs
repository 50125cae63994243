// Configuration: defaults < config file < environment < flags, as shown by
// `chatd check-config`; a server started from a config file; --help; and
// `make install` with DESTDIR and PREFIX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { useChatd, tempDir, api, uniq, REPO, CHATD_BIN, WEB_DIR } from './lib/chatd.mjs';
import { chatd } from './lib/ops.mjs';

/** check-config's settings: {name: [value, source]} (origin: a list). */
function settings(stdout) {
	const out = {};
	for (const line of stdout.trim().split('\n')) {
		const m = /^(\S+) = (.*)\t# (.*)$/.exec(line);
		assert.ok(m, `check-config line ${line}`);
		if (m[1] === 'origin') (out.origin ||= []).push([m[2], m[3]]);
		else out[m[1]] = [m[2], m[3]];
	}
	return out;
}

test('config file < environment < flags over the defaults, shown by check-config', async (t) => {
	const dir = tempDir(t);
	const conf = path.join(dir, 'chatd.conf');
	fs.writeFileSync(conf, [
		'# a comment',
		'',
		'listen = 127.0.0.1:1111',
		`db = ${path.join(dir, 'chat.db')}`,
		`web = ${WEB_DIR}`,
		'log-level=debug',
		'  token-days =   7  ',
		'origin = https://file.example',
		'registration = closed',
	].join('\n') + '\n');
	const env = { CHATD_LISTEN: '127.0.0.1:2222', CHATD_ORIGIN: 'https://env1.example,https://env2.example', CHATD_LOG_FORMAT: 'json' };

	let r = await chatd(['--config', conf, 'check-config']);
	assert.equal(r.code, 0, r.stderr);
	let s = settings(r.stdout);
	assert.deepEqual(s.listen, ['127.0.0.1:1111', 'config file']);
	assert.deepEqual(s['token-days'], ['7', 'config file']);
	assert.deepEqual(s['log-level'], ['debug', 'config file']);
	assert.deepEqual(s.origin, [['https://file.example', 'config file']]);
	assert.deepEqual(s['idle-timeout'], ['60', 'default']);
	assert.deepEqual(s['log-format'], ['text', 'default']);

	r = await chatd(['check-config'], { env: { ...env, CHATD_CONFIG: conf } });
	assert.equal(r.code, 0, r.stderr);
	s = settings(r.stdout);
	assert.deepEqual(s.listen, ['127.0.0.1:2222', 'environment']);
	assert.deepEqual(s['log-format'], ['json', 'environment']);
	assert.deepEqual(s['token-days'], ['7', 'config file']);
	assert.deepEqual(s.origin, [['https://env1.example', 'environment'], ['https://env2.example', 'environment']]);

	r = await chatd(['check-config', '--listen', '127.0.0.1:3333', '--config', conf, '--registration=open'], { env });
	assert.equal(r.code, 0, r.stderr);
	s = settings(r.stdout);
	assert.deepEqual(s.listen, ['127.0.0.1:3333', 'flag']);
	assert.deepEqual(s.registration, ['open', 'flag']);
	assert.deepEqual(s['log-format'], ['json', 'environment']);
	assert.match(r.stderr, /configuration OK/);
	assert.ok(!fs.existsSync(path.join(dir, 'chat.db')), 'check-config creates no database');
});

test('check-config fails on a bad line, a bad value, a missing web root', async (t) => {
	const dir = tempDir(t);
	const conf = path.join(dir, 'bad.conf');
	for (const [text, why] of [
		['listen 127.0.0.1:1\n', /bad\.conf:1: expected name = value/],
		['# ok\nbogus = 1\n', /bad\.conf:2: unknown option 'bogus'/],
		['rate-limits = maybe\n', /invalid value for --rate-limits/],
		['help = 1\n', /unknown option 'help'/],
	]) {
		fs.writeFileSync(conf, text);
		const r = await chatd(['--config', conf, 'check-config']);
		assert.equal(r.code, 2, text);
		assert.match(r.stderr, why);
	}
	const r = await chatd(['--db', path.join(dir, 'c.db'), '--web', path.join(dir, 'nope'), '--listen', 'nowhere', 'check-config']);
	assert.equal(r.code, 1);
	assert.match(r.stderr, /--web .*nope: not a directory/);
	assert.match(r.stderr, /--listen nowhere: expected ADDR:PORT/);
	const missing = await chatd(['--config', path.join(dir, 'missing.conf'), 'check-config']);
	assert.equal(missing.code, 2);
	assert.match(missing.stderr, /missing\.conf: No such file/);
});

test('a server started with a config file uses it (flags still win)', async (t) => {
	const dir = tempDir(t);
	const conf = path.join(dir, 'chatd.conf');
	fs.writeFileSync(conf, 'registration = closed\nlisten = 127.0.0.1:1\n');
	const srv = await useChatd(t, { args: ['--config', conf] });
	const r = await api(srv, 'POST', '/api/register', { body: { username: uniq('cf'), password: 'password-123' } });
	assert.equal(r.status, 403);
	assert.equal(r.json.error.code, 'registration_closed');
});

test('--help lists every option with its environment variable and default', async () => {
	const r = await chatd(['--help']);
	assert.equal(r.code, 0);
	for (const v of ['CHATD_LISTEN', 'CHATD_DB', 'CHATD_WEB', 'CHATD_CONFIG', 'CHATD_LOG_LEVEL', 'CHATD_LOG_FORMAT', 'CHATD_SLOW_QUERY_MS', 'CHATD_RATE_LIMITS'])
		assert.match(r.stdout, new RegExp(`${v} `));
	assert.match(r.stdout, /default: 127\.0\.0\.1:8080/);
	for (const cmd of ['check-config', 'backup FILE', 'restore FILE', 'export', 'import', 'room del NAME', 'user passwd NAME'])
		assert.ok(r.stdout.includes(cmd), `help mentions ${cmd}`);
});

test('make install puts the binary, the web files and the unit under DESTDIR/PREFIX', async (t) => {
	const dest = tempDir(t);
	const build = path.relative(REPO, path.dirname(CHATD_BIN));
	// -o: install the binary under test as it is, never rebuild it here.
	execFileSync('make', ['-s', '-C', REPO, '-o', `${build}/chatd`, 'install', `DESTDIR=${dest}`, 'PREFIX=/usr', `BUILD=${build}`], { stdio: 'pipe' });
	const bin = path.join(dest, 'usr/bin/chatd');
	assert.ok(fs.statSync(bin).mode & 0o111, 'chatd is executable');
	assert.ok(fs.existsSync(path.join(dest, 'usr/share/chatd/web/index.html')), 'web files');
	const unit = fs.readFileSync(path.join(dest, 'usr/lib/systemd/system/chatd.service'), 'utf8');
	assert.match(unit, /^ExecStart=\/usr\/bin\/chatd$/m);
	assert.match(unit, /^Environment=CHATD_WEB=\/usr\/share\/chatd\/web$/m);
	for (const key of ['User=chatd', 'ProtectSystem=strict', 'StateDirectory=chatd', 'NoNewPrivileges=yes'])
		assert.ok(unit.includes(key), `unit has ${key}`);
});
