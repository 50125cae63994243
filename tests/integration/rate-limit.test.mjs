// Rate limits, on by default (PROTOCOL.md: `rate_limited`; README: burst 20,
// 10 requests/s sustained per connection).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useChatd, api, newUser, register, uniq, wsAuth, join } from './lib/chatd.mjs';

test('40 messages at once: some rate_limited, the connection stays open', async (t) => {
	const s = await useChatd(t, { rateLimits: null }); // no flag: the default
	const a = await newUser(s);
	const c = await wsAuth(s.wsUrl, a.token);
	t.after(() => c.close());
	const room = uniq('rl');
	await join(c, room);
	const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => c.request({ type: 'send', room, text: `flood ${i}` })));
	const ok = replies.filter((r) => r.type === 'message');
	const limited = replies.filter((r) => r.type === 'error' && r.code === 'rate_limited');
	assert.equal(ok.length + limited.length, 40, JSON.stringify(replies.filter((r) => r.type === 'error' && r.code !== 'rate_limited')));
	assert.ok(limited.length > 0, 'some rate_limited');
	assert.ok(ok.length >= 15, `burst allowed (${ok.length} ok)`);
	for (const e of limited) assert.equal(typeof e.message, 'string');
	assert.equal(c.isClosed, false);
	// still open; history shows exactly the accepted ones (wait out the limit first)
	await c.fence();
	assert.equal(c.isClosed, false);
	const h = await api(s, 'GET', `/api/rooms/${room}/messages?limit=100`, { token: a.token });
	assert.deepEqual(h.json.messages.map((m) => m.id), ok.map((m) => m.id).sort((x, y) => x - y));
});

test('--rate-limits off: 40 messages at once all succeed', async (t) => {
	const s = await useChatd(t);
	const a = await newUser(s);
	const c = await wsAuth(s.wsUrl, a.token);
	t.after(() => c.close());
	const room = uniq('rlo');
	await join(c, room);
	const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => c.request({ type: 'send', room, text: `flood ${i}` })));
	assert.ok(replies.every((r) => r.type === 'message'), JSON.stringify(replies.find((r) => r.type !== 'message')));
});

test('repeated failed logins get 429 rate_limited', async (t) => {
	const s = await useChatd(t, { rateLimits: null });
	const name = uniq('bf');
	await register(s, name, 'password1');
	let got;
	for (let i = 0; i < 40 && !got; i++) {
		const r = await api(s, 'POST', '/api/login', { body: { username: name, password: `wrong-${i}-pass` } });
		if (r.status === 429) got = r;
		else assert.equal(r.status, 401);
	}
	assert.ok(got, 'a 429 within 40 failed logins');
	assert.equal(got.json.error.code, 'rate_limited');
});
