// tests/integration/keepalive.test.mjs — the server pings a silent
// WebSocket and drops a peer that stops answering (--ping-interval).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useChatd, newUser, rawWsConnect } from './lib/chatd.mjs';

test('a silent connection is pinged; answered pings keep it, an unanswered one drops it', async (t) => {
	const srv = await useChatd(t, { args: ['--ping-interval', '1'] });
	const u = await newUser(srv.url);
	const { ws, raw } = await rawWsConnect(srv.port, { token: u.token });
	assert.ok(ws, 'upgraded');
	assert.equal((await ws.event('hello')).user.username, u.name);

	// Two pings in a row, each answered with a pong of the same payload.
	for (let i = 0; i < 2; i++) {
		const ping = await ws.frameWhere((f) => f.opcode === 9, 5000);
		await ws.sendFrame({ opcode: 10, payload: ping.payload });
	}
	// The third goes unanswered: the server closes the connection.
	await ws.frameWhere((f) => f.opcode === 9, 5000);
	await raw.closedByPeer(5000);
	assert.ok(raw.endedFlag);
});
