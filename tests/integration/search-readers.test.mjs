// Search on reader threads (docs/storage.md "Reader threads"): a search
// never holds up the event loop, a search over --query-timeout-ms answers
// 503 timeout, a client may leave while its search runs, and SIGTERM with
// searches in flight exits cleanly.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
	startChatd, api, newUser, uniq, wsAuth, join, send, until,
} from './lib/chatd.mjs';

// SLOW_ROWS messages of 4000 'a's in a room of b's that a is not in,
// searched for 1000 'a's by a: FTS5 checks a phrase of ~1000 trigrams
// against ~4000 positions in every one of them, ~10 ms a row here
// (seconds in all), to find none in a's rooms (the case of a term common
// in rooms the user is not in); SQLite's progress handler gets a look in
// between rows.
const SLOW_ROWS = 400;
const SLOW_Q = 'a'.repeat(1000);
// Longer than any chat round trip on a loop that is free, much shorter
// than the whole slow search: a search stopped by it cannot answer before
// it has passed.
const BUDGET_MS = 1500;

let srv, a, b, room, ca, cb;

/** The status, and the start of the body (a 200 here would be long). */
const brief = (r) => `${r.status} ${r.text.slice(0, 200)}`;

before(async () => {
	srv = await startChatd({ args: ['--query-timeout-ms', String(BUDGET_MS)] });
	[a, b] = await Promise.all([newUser(srv), newUser(srv)]);
	room = uniq('sr');
	ca = await wsAuth(srv.wsUrl, a.token);
	cb = await wsAuth(srv.wsUrl, b.token);
	await join(ca, room);
	await join(cb, room);
	const slowRoom = uniq('slow');
	await join(cb, slowRoom);
	const text = 'a'.repeat(4000);
	for (let i = 0; i < SLOW_ROWS; i += 50)
		await Promise.all(Array.from({ length: 50 }, () => send(cb, slowRoom, text)));
	// The first search indexes what was sent (on the loop): here, not in
	// the tests below.
	const r = await search('zzz');
	assert.equal(r.status, 200, brief(r));
});
after(async () => {
	ca?.close();
	cb?.close();
	await srv?.cleanup();
});

function search(q, token = a.token) {
	return api(srv, 'GET', `/api/search?q=${encodeURIComponent(q)}`, { token, timeout: 30000 });
}

/** A gauge or counter of /metrics. */
async function metric(name) {
	const r = await api(srv, 'GET', '/metrics');
	const m = r.text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
	assert.ok(m, `${name} in /metrics`);
	return Number(m[1]);
}

/** Waits until n searches are queued or running on the reader threads. */
function searchesHeld(n) {
	return until(async () => (await metric('chatd_search_queue_jobs')) === n,
		{ tries: 1000, interval: 10, what: `${n} searches held` });
}

describe('search on reader threads', () => {
	test('a chat round trip is not held up by a running search', async () => {
		const order = [];
		const slow = search(SLOW_Q).then((r) => { order.push('search'); return r; });
		// The loop has taken the search and handed it to a reader.
		await searchesHeld(1);
		const sent = await send(cb, room, 'while searching');
		const seen = await ca.next((e) => e.type === 'message' && e.id === sent.id);
		assert.equal(seen.text, 'while searching');
		order.push('chat');
		const r = await slow;
		// The search could only answer after its budget ran out.
		assert.equal(r.status, 503, brief(r));
		assert.equal(r.json.error.code, 'timeout');
		assert.deepEqual(order, ['chat', 'search']);
	});

	test('a search over the budget answers 503 timeout, counted', async () => {
		const before = await metric('chatd_search_timeouts_total');
		const r = await search(SLOW_Q);
		assert.equal(r.status, 503, brief(r));
		assert.equal(r.json.error.code, 'timeout');
		assert.equal(typeof r.json.error.message, 'string');
		assert.equal(r.headers['retry-after'], '1');
		assert.equal(await metric('chatd_search_timeouts_total'), before + 1);
		assert.match(srv.logs(), /searches stopped by --query-timeout-ms/);
		// Other searches go on as before.
		const ok = await search('while searching');
		assert.equal(ok.status, 200);
		assert.equal(ok.json.results.length, 1);
	});

	test('a client that leaves while its search runs', async () => {
		const req = http.request({
			host: '127.0.0.1', port: srv.port, agent: false,
			path: `/api/search?q=${SLOW_Q}`,
			headers: { Authorization: `Bearer ${a.token}` },
		});
		req.on('error', () => {});
		req.end();
		await searchesHeld(1);
		req.destroy();
		// The job ends (its budget) and lets go of the connection.
		await searchesHeld(0);
		const r = await search('while searching');
		assert.equal(r.status, 200);
		assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
	});

	test('with a 1 ms budget, a slow search answers 503 timeout', async () => {
		await srv.restart({ args: ['--query-timeout-ms', '1'] });
		const r = await search(SLOW_Q);
		assert.equal(r.status, 503, brief(r));
		assert.equal(r.json.error.code, 'timeout');
		assert.equal(await metric('chatd_search_timeouts_total'), 1);
	});

	test('SIGTERM with searches running and queued exits cleanly', async () => {
		await srv.restart({ args: ['--query-timeout-ms', '0'] }); // none
		const answers = [1, 2, 3].map(() => search(SLOW_Q).catch((e) => e));
		await searchesHeld(3);
		const t0 = Date.now();
		assert.equal(await srv.stop(), 0);
		// Cancelled, not waited out (the whole search takes seconds).
		assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
		for (const r of await Promise.all(answers)) {
			// Closed by the shutdown, or told so.
			if (r instanceof Error) continue;
			assert.equal(r.status, 503);
			assert.equal(r.json.error.code, 'unavailable');
		}
		await srv.restart({ args: ['--query-timeout-ms', String(BUDGET_MS)] });
	});
});
