// Durability: acknowledged messages survive kill -9; SIGTERM shuts down
// cleanly (PROTOCOL.md "send": committed before anyone receives it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useChatd, api, newUser, login, uniq, wsAuth, join, send } from './lib/chatd.mjs';

async function fullHistory(s, token, room) {
	const all = [];
	let after = 0;
	for (;;) {
		const r = await api(s, 'GET', `/api/rooms/${room}/messages?after=${after}&limit=100`, { token });
		assert.equal(r.status, 200, r.text);
		all.push(...r.json.messages);
		if (!r.json.has_more) break;
		after = r.json.messages[r.json.messages.length - 1].id;
	}
	return all;
}

for (const mode of ['normal', 'full']) test(`every acknowledged message survives kill -9 (--durability ${mode})`, async (t) => {
	const s = await useChatd(t, { args: ['--durability', mode] });
	const a = await newUser(s);
	const b = await newUser(s);
	const ca = await wsAuth(s.wsUrl, a.token);
	const cb = await wsAuth(s.wsUrl, b.token);
	const room = uniq('dur');
	await join(ca, room);
	await join(cb, room);
	const acked = [];
	// two clients exchange 500 messages, each waiting for its ack
	const run = async (c, who, n) => {
		for (let i = 0; i < n; i++) {
			const m = await send(c, room, `${who}-${i}`);
			acked.push(m);
		}
	};
	await Promise.all([run(ca, 'a', 250), run(cb, 'b', 250)]);
	await s.kill(); // right after the last acknowledgement
	ca.terminate();
	cb.terminate();
	await s.restart();
	const token = await login(s, a.name, a.pw).catch(() => a.token);
	const hist = await fullHistory(s, token, room);
	const want = acked.map((m) => m.id).sort((x, y) => x - y);
	assert.equal(hist.length, 500);
	assert.deepEqual(hist.map((m) => m.id), want, 'every acked message exactly once, in order');
	const byId = new Map(acked.map((m) => [m.id, m]));
	for (const m of hist) {
		assert.equal(m.text, byId.get(m.id).text);
		assert.equal(m.user, byId.get(m.id).user);
		assert.equal(m.ts, byId.get(m.id).ts);
	}
	// the seq counter continues after the restart: no reuse of ids
	const c = await wsAuth(s.wsUrl, token);
	const after = await send(c, room, 'after restart');
	assert.ok(after.id > want[want.length - 1]);
	await c.close();
});

test('tokens, memberships, read positions and edits survive a restart', async (t) => {
	const s = await useChatd(t);
	const a = await newUser(s);
	const b = await newUser(s);
	const ca = await wsAuth(s.wsUrl, a.token);
	const cb = await wsAuth(s.wsUrl, b.token);
	const room = uniq('per');
	await join(ca, room);
	await join(cb, room);
	const m1 = await send(cb, room, 'one');
	const m2 = await send(cb, room, 'two');
	await ca.request({ type: 'read', room, seq: m1.seq });
	const ed = await cb.request({ type: 'edit', room, id: m1.id, text: 'one!' });
	const dm = await ca.request({ type: 'dm', user: b.name });
	await ca.close();
	await cb.close();
	const before = (await api(s, 'GET', '/api/me', { token: a.token })).json;
	await s.kill();
	await s.restart();
	const me = await api(s, 'GET', '/api/me', { token: a.token });
	assert.equal(me.status, 200, 'token still valid after restart');
	assert.deepEqual(me.json, before);
	const st = me.json.rooms.find((r) => r.name === room);
	assert.equal(st.read_seq, m1.seq);
	assert.equal(st.last_seq, ed.seq);
	assert.equal(st.unread, 1);
	assert.ok(me.json.rooms.some((r) => r.name === dm.room && r.kind === 'dm'));
	const h = await api(s, 'GET', `/api/rooms/${room}/messages`, { token: a.token });
	assert.deepEqual(h.json.messages.map((m) => [m.id, m.text]), [[m1.id, 'one!'], [m2.id, 'two']]);
});

test('SIGTERM: clients get 1001, exit code 0, data intact', async (t) => {
	const s = await useChatd(t);
	const a = await newUser(s);
	const c = await wsAuth(s.wsUrl, a.token);
	const room = uniq('term');
	await join(c, room);
	const m = await send(c, room, 'last words');
	const code = await s.stop();
	assert.equal((await c.waitClose()).code, 1001);
	assert.equal(code, 0, `exit code; stderr:\n${s.logs()}`);
	await s.restart();
	const h = await api(s, 'GET', `/api/rooms/${room}/messages`, { token: a.token });
	assert.deepEqual(h.json.messages.map((x) => x.id), [m.id]);
});
