// Several nodes on a Redis that wants a password (docs/cluster.md): the
// password in the --redis URL (percent-encoded) or in
// --redis-password-file, for Redis's default user or an ACL user (AUTH
// USER PASSWORD). A wrong password is logged once and retried, the node
// serves meanwhile, and no password is ever printed. Two chatd on one
// PostgreSQL (a fresh schema of the throwaway cluster at CHATD_TEST_PG,
// scripts/services.sh) and a redis-server this file starts itself.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
	startChatd, api, newUser, uniq, wsAuth, join, send, freePort, pgSchema,
	pgExec, until, withTimeout, WAIT_MS, WEB_DIR,
} from './lib/chatd.mjs';
import { chatd } from './lib/ops.mjs';

const PG = process.env.CHATD_TEST_PG;
const SLOW = Math.max(WAIT_MS * 4, 20000);
// Characters a URL must percent-encode, so the decoding is tested too.
const PASSWORD = 'S3cr3t@p:ss/w%rd #1';
const ALICE_PASSWORD = 'al1ce-Secret';
const WRONG = 'Wr0ng-Passw0rd';
const SECRETS = [PASSWORD, encodeURIComponent(PASSWORD), ALICE_PASSWORD, WRONG];

/** redis-server on port with extra arguments; resolves once its log says
 * it accepts connections (an event, not a poll). */
async function startRedis(port, dir, extra) {
	const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
		'--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
	{ stdio: ['ignore', 'pipe', 'pipe'] });
	let log = '';
	const ready = new Promise((resolve, reject) => {
		proc.stdout.on('data', (d) => {
			log += d;
			if (log.includes('Ready to accept connections')) resolve();
		});
		proc.on('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log}`)));
		proc.on('error', reject);
	});
	try {
		await withTimeout(ready, SLOW, `redis-server on port ${port}`);
	} catch (e) {
		proc.kill('SIGKILL');
		throw e;
	}
	proc.stdout.resume();
	return proc;
}

/** Asserts no password of SECRETS is in text (what). */
function assertNoSecret(text, what) {
	for (const s of SECRETS) assert.ok(!text.includes(s), `${what} shows a password: ${text}`);
}

/** srv's chatd_cluster_redis_up, or null without it. */
async function redisUp(srv) {
	const r = await api(srv.url, 'GET', '/metrics', { raw: true });
	const m = /^chatd_cluster_redis_up (\d+)$/m.exec(r.text);
	return m ? Number(m[1]) : null;
}

describe('Redis with a password', () => {
	let redis, port, schema, dir, files, pwFile, alicePwFile;
	const nodes = [];

	/** A node on the cluster's schema with these --redis arguments. */
	async function node(id, redisArgs, extra = []) {
		const n = await startChatd({
			dbPath: schema.url,
			args: [...redisArgs, '--node-id', id, '--files', files, ...extra],
		});
		nodes.push(n);
		return n;
	}

	/** The URL of the test's Redis with userinfo (raw) and a path. */
	function url(userinfo = '', db = '') {
		return `redis://${userinfo ? `${userinfo}@` : ''}127.0.0.1:${port}${db}`;
	}

	before(async () => {
		assert.ok(PG, 'CHATD_TEST_PG is not set: run through scripts/test.sh (scripts/services.sh)');
		dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-redis-auth-'));
		files = path.join(dir, 'files');
		pwFile = path.join(dir, 'redis.pw');
		fs.writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
		alicePwFile = path.join(dir, 'alice.pw');
		fs.writeFileSync(alicePwFile, `${ALICE_PASSWORD}\n`, { mode: 0o600 });
		port = await freePort();
		redis = await startRedis(port, dir, ['--requirepass', PASSWORD,
			'--user', 'alice', 'on', `>${ALICE_PASSWORD}`, '~*', '&*', '+@all']);
		schema = pgSchema('ra');
	});

	after(async () => {
		for (const n of nodes) await n.cleanup();
		redis?.kill('SIGKILL');
		if (schema) {
			try { pgExec(`SET client_min_messages = warning; DROP SCHEMA ${schema.name} CASCADE`); } catch { /* ignore */ }
		}
		fs.rmSync(dir, { recursive: true, force: true });
	});

	test('a message crosses from a node with the password in the URL to one of an ACL user with a password file', async (t) => {
		const n1 = await node('ra1', ['--redis', url(`:${encodeURIComponent(PASSWORD)}`, '/1')]);
		const n2 = await node('ra2', ['--redis', url('alice'), '--redis-password-file', alicePwFile]);
		for (const n of [n1, n2]) {
			await until(async () => (await redisUp(n)) === 1, { tries: 400, what: `redis_up 1 on ${n.port}` });
		}
		const a = await newUser(n1.url);
		const b = await newUser(n1.url);
		a.c = await wsAuth(n1.wsUrl, a.token);
		b.c = await wsAuth(n2.wsUrl, b.token);
		t.after(() => { a.c.close(); b.c.close(); });
		const room = uniq('auth');
		await join(a.c, room);
		await join(b.c, room);
		const m = await send(a.c, room, 'through an authenticated Redis');
		const seen = await b.c.next((e) => e.type === 'message' && e.id === m.id, SLOW);
		assert.equal(seen.text, 'through an authenticated Redis');
		for (const n of [n1, n2]) {
			assertNoSecret(n.logs(), `node ${n.port}'s stderr`);
			assert.doesNotMatch(n.logs(), /refused the password/);
		}
	});

	test('a wrong password: the node serves, logs the refusal once, never the password, redis_up 0', async () => {
		const n = await node('ra3', ['--redis', url(`:${WRONG}`)], ['--log-level', 'debug']);
		// Both connections retried a few times with the backoff: the
		// debug lines count the attempts.
		for (const who of ['subscriber', 'publisher']) {
			await until(() => new RegExp(`${who} of .*AUTH refused: .*\\(attempt 3\\)`).test(n.logs()),
				{ tries: 400, what: `the ${who}'s third attempt` });
		}
		const warns = n.logs().split('\n').filter((l) => / warn /.test(l) && /refused the password/.test(l));
		assert.equal(warns.length, 1, n.logs());
		assert.match(warns[0], /redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ refused the password \(WRONGPASS/);
		assertNoSecret(n.logs(), 'stderr');
		assert.equal(await redisUp(n), 0);
		const h = await api(n.url, 'GET', '/healthz', { raw: true });
		assert.equal(h.status, 200);
	});

	test('check-config AUTHs to Redis, and says why without the password', async () => {
		const base = ['--db', schema.url, '--files', files, '--web', WEB_DIR];
		const bad = await chatd([...base, '--redis', url(`:${WRONG}`), 'check-config']);
		assert.equal(bad.code, 1, bad.stderr);
		assert.match(bad.stderr, /--redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: Redis refused the password \(AUTH\): WRONGPASS/);
		assert.match(bad.stdout, /^redis = redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\t# flag$/m);
		assertNoSecret(bad.stderr + bad.stdout, 'check-config');

		const none = await chatd([...base, '--redis', url(), 'check-config']);
		assert.equal(none.code, 1, none.stderr);
		assert.match(none.stderr, /NOAUTH.*--redis-password-file/);

		const ok = await chatd([...base, '--redis', url(`:${encodeURIComponent(PASSWORD)}`, '/2'), 'check-config']);
		assert.equal(ok.code, 0, ok.stderr);
		assertNoSecret(ok.stderr + ok.stdout, 'check-config');

		const file = await chatd([...base, 'check-config'], {
			env: { CHATD_REDIS: url(), CHATD_REDIS_PASSWORD_FILE: pwFile },
		});
		assert.equal(file.code, 0, file.stderr);
		assert.match(file.stdout, /^redis-password-file = .*redis\.pw\t# environment$/m);
		assertNoSecret(file.stderr + file.stdout, 'check-config');

		const acl = await chatd([...base, '--redis', url('alice'), '--redis-password-file', pwFile, 'check-config']);
		assert.equal(acl.code, 1, acl.stderr);
		assert.match(acl.stderr, /--redis redis:\/\/\*\*\*@127\.0\.0\.1:\d+: Redis refused the password \(AUTH\): WRONGPASS/);
		assertNoSecret(acl.stderr + acl.stdout, 'check-config');
	});

	test('a password both in the URL and in a file, or a file that is no password, is refused at start', async () => {
		const base = ['--db', schema.url, '--files', files, '--web', WEB_DIR];
		const both = await chatd([...base, '--redis', url(`:${WRONG}`), '--redis-password-file', pwFile, 'check-config']);
		assert.equal(both.code, 2);
		assert.match(both.stderr, /--redis has a password and --redis-password-file is set: give it one way, not both/);
		assertNoSecret(both.stderr + both.stdout, 'the refusal');

		const empty = path.join(dir, 'empty.pw');
		fs.writeFileSync(empty, '\n');
		const e = await chatd([...base, '--redis', url(), '--redis-password-file', empty]);
		assert.equal(e.code, 2);
		assert.match(e.stderr, /--redis-password-file .*empty\.pw: empty/);

		const lone = await chatd([...base, '--redis-password-file', pwFile, 'check-config']);
		assert.equal(lone.code, 2);
		assert.match(lone.stderr, /--redis-password-file is the password of --redis, which is not set/);

		const twice = await chatd([...base, '--redis', url(`u:${WRONG}@x`), 'check-config']);
		assert.equal(twice.code, 1);
		assert.match(twice.stderr, /'@' twice/);
		assertNoSecret(twice.stderr + twice.stdout, 'the refusal');
	});
});
