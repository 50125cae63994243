// Failed-login limits under concurrency and the bounded password hashing
// queue (README "Limits"): a login takes its failed-login tokens before its
// Argon2 job is queued, so parallel wrong passwords for one user run at most
// the bucket's burst (5) of real password checks; the hashing queue holds at
// most 8 jobs per client address (WORKER_QUEUE_PER_KEY) and serves
// addresses in turn, answering 503 busy with Retry-After beyond that.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { useChatd, api, register, login, uniq, until, withTimeout, isErrorBody, WAIT_MS } from './lib/chatd.mjs';
import { parseMetrics } from './lib/ops.mjs';

const USER_BURST = 5; // failed logins per username
const PER_ADDR = 8; // hashing jobs one address may hold

/** POST path with a JSON body from the source address from (a 127.x
 * loopback address: chatd sees it as the client address). */
function postFrom(srv, from, p, body) {
	const data = Buffer.from(JSON.stringify(body));
	return new Promise((resolve, reject) => {
		const req = http.request({
			host: '127.0.0.1', port: srv.port, path: p, method: 'POST', agent: false,
			localAddress: from,
			headers: { 'Content-Type': 'application/json', 'Content-Length': String(data.length) },
		}, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				let json;
				try { json = JSON.parse(text); } catch { json = undefined; }
				resolve({ status: res.statusCode, headers: res.headers, json, text });
			});
			res.on('error', reject);
		});
		req.setTimeout(WAIT_MS * 4, () => req.destroy(new Error(`POST ${p} from ${from}: no answer`)));
		req.on('error', reject);
		req.end(data);
	});
}

async function metric(srv, name) {
	const r = await api(srv, 'GET', '/metrics');
	assert.equal(r.status, 200);
	const v = parseMetrics(r.text).get(name);
	assert.notEqual(v, undefined, `${name} in /metrics`);
	return v;
}

function count(list, status) {
	return list.filter((r) => r.status === status).length;
}

test('200 parallel wrong logins for one user: 5 password checks, the rest 429', async (t) => {
	const s = await useChatd(t, { rateLimits: 'on' });
	const name = uniq('pl');
	await register(s, name, 'password1');
	const rs = await Promise.all(Array.from({ length: 200 }, (_, i) =>
		api(s, 'POST', '/api/login', { body: { username: name, password: `wrong-${i}-pass` } })));
	const other = rs.filter((r) => r.status !== 401 && r.status !== 429);
	assert.deepEqual(other.map((r) => `${r.status} ${r.text}`), []);
	assert.equal(count(rs, 401), USER_BURST);
	assert.equal(count(rs, 429), 200 - USER_BURST);
	for (const r of rs.filter((x) => x.status === 429)) {
		assert.ok(isErrorBody(r.json, 'rate_limited'), r.text);
		assert.match(r.headers['retry-after'] || '', /^[1-9][0-9]*$/);
	}
	// Every 401 was a real check, and nothing else ran one (registration
	// is not a check).
	assert.equal(await metric(s, 'chatd_password_checks_total'), USER_BURST);
	assert.equal(await metric(s, 'chatd_rate_limited_total'), 200 - USER_BURST);
	// The bucket is empty: even the right password waits for the refill.
	const r = await api(s, 'POST', '/api/login', { body: { username: name, password: 'password1' } });
	assert.equal(r.status, 429);
	assert.equal(await metric(s, 'chatd_password_checks_total'), USER_BURST);
});

test('right passwords give their failed-login tokens back', async (t) => {
	const s = await useChatd(t, { rateLimits: 'on' });
	const name = uniq('rp');
	await register(s, name, 'password1');
	// More correct logins than the burst, some at once.
	await Promise.all([1, 2, 3].map(() => login(s, name, 'password1')));
	for (let i = 0; i < USER_BURST + 2; i++) await login(s, name, 'password1');
	// The whole failed-login budget is still there.
	for (let i = 0; i < USER_BURST; i++) {
		const r = await api(s, 'POST', '/api/login', { body: { username: name, password: `wrong-${i}-pass` } });
		assert.equal(r.status, 401, `wrong login ${i}: ${r.text}`);
	}
	const r = await api(s, 'POST', '/api/login', { body: { username: name, password: 'wrong-pass' } });
	assert.equal(r.status, 429);
});

test('a login flood from one address gets 503 busy beyond its share; another address logs in promptly', async (t) => {
	// Rate limits off (as in the other tests): the queue bound stays on.
	const s = await useChatd(t, { args: ['--log-level', 'debug'] });
	const name = uniq('fq');
	const pw = 'password1';
	await register(s, name, pw);

	// The flood: wrong logins from 127.0.0.1, FLOOD at a time; a request
	// refused with 503 is sent again once one of the flood's is answered.
	const FLOOD = PER_ADDR + 4;
	const flood = { answered: 0, busy: [], stopped: false, parked: 0, running: new Set(), errors: [] };
	const fire = () => {
		const p = postFrom(s, '127.0.0.1', '/api/login', { username: uniq('nobody'), password: 'not-the-password' })
			.then((r) => {
				flood.running.delete(p);
				if (r.status === 401) {
					flood.answered++;
					if (!flood.stopped) fire();
					for (; flood.parked > 0 && !flood.stopped; flood.parked--) fire();
				} else if (r.status === 503) {
					flood.busy.push(r);
					flood.parked++;
				} else {
					flood.errors.push(`${r.status} ${r.text}`);
				}
			}, (e) => { flood.running.delete(p); flood.errors.push(e.message); });
		flood.running.add(p);
	};
	t.after(async () => {
		flood.stopped = true;
		await Promise.allSettled([...flood.running]);
	});
	for (let i = 0; i < FLOOD; i++) fire();

	// The flood fills its share: the next ones are refused at once.
	await until(() => flood.busy.length > 0 || flood.errors.length > 0, { tries: 200, what: 'a 503 for the flood' });
	assert.deepEqual(flood.errors, []);
	const busy = flood.busy[0];
	assert.ok(isErrorBody(busy.json, 'busy'), busy.text);
	assert.equal(busy.headers['retry-after'], '1');

	// Another address logs in while the flood still holds its share. In
	// the server's log (its order of events, not the client's), between
	// that login being queued and being answered, at most the two running
	// hashes and one more of the flood's finish (+1 for the two threads'
	// finishing order): not the flood's whole queue.
	const r = await withTimeout(postFrom(s, '127.0.0.2', '/api/login', { username: name, password: pw }), WAIT_MS * 4, 'the other login');
	assert.equal(r.status, 200, r.text);
	const done = new RegExp(`debug api_login_finish: login of '${name}' from 127\\.0\\.0\\.2`);
	await until(() => done.test(s.logs()), { what: 'the login in the log' });
	const lines = s.logs().split('\n');
	const queued = lines.findIndex((l) => l.includes(`login of '${name}' from 127.0.0.2 queued`));
	const answered = lines.findIndex((l) => done.test(l));
	assert.ok(queued >= 0 && answered > queued, `queued at ${queued}, answered at ${answered}`);
	const between = lines.slice(queued, answered).filter((l) => /failed login for '.*' from 127\.0\.0\.1$/.test(l)).length;
	assert.ok(between <= 4, `${between} flood logins answered while the other one waited`);
	flood.stopped = true;
	await Promise.allSettled([...flood.running]);
	assert.deepEqual(flood.errors, []);

	const rejected = await metric(s, 'chatd_hash_queue_rejected_total');
	assert.ok(rejected >= flood.busy.length, `${rejected} rejections counted, ${flood.busy.length} seen`);
	assert.equal(await metric(s, 'chatd_hash_queue_jobs'), 0);
	assert.match(s.logs(), /warn api_busy: password hashing queue: \d+ requests refused with 503 .*from 127\.0\.0\.1: its share used up/);
});
