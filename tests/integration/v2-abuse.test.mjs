// An attacker's pass over the version 2 requests (issue 13's rule: a client
// that never reads, floods, sends hostile names or sizes, or races itself):
// what one member can make a message, a room or a request cost everyone
// else, and what hostile values get. docs/operations.md "Limits and abuse".
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	startChatd, api, newUser, uniq, wsAuth, join, send,
} from './lib/chatd.mjs';

// The caps of storage/storage.h (docs/protocol.md 7.2).
const USER_MAX = 20;
const EMOJIS_MAX = 50;

let srv;
before(async () => { srv = await startChatd(); });
after(() => srv.cleanup());

async function open(t, u, opts = {}) {
	const c = await wsAuth(srv.wsUrl, u.token, opts);
	t.after(() => c.close());
	return c;
}

/** n users, each with one connection, all in a fresh room. */
async function roomOf(t, n, prefix = 'ab') {
	const room = uniq(prefix);
	const users = [];
	for (let i = 0; i < n; i++) {
		const u = await newUser(srv);
		u.c = await open(t, u);
		await join(u.c, room);
		users.push(u);
	}
	for (const u of users) await u.c.fence();
	return { room, users };
}

const react = (u, room, id, emoji, on = true) =>
	u.c.request({ type: 'react', room, id, emoji, on });

describe('reactions are bounded per message', () => {
	test(`one user: at most ${USER_MAX} reactions on a message; removing always works`, async (t) => {
		const { room, users: [a, b] } = await roomOf(t, 2);
		const m = await send(a.c, room, 'flood me');
		let last;
		for (let i = 0; i < USER_MAX; i++) {
			last = await react(b, room, m.id, `e${i}`);
			assert.equal(last.type, 'reaction', JSON.stringify(last));
		}
		const over = await react(b, room, m.id, 'one-more');
		assert.equal(over.type, 'error');
		assert.equal(over.code, 'too_large');
		assert.match(over.message, new RegExp(`${USER_MAX}`));
		// Nothing stored or sent: the seq did not move, nobody heard of it.
		await a.c.fence();
		const h = await a.c.request({ type: 'history', room, around: m.id, limit: 1 });
		assert.equal(h.messages[0].seq, last.seq);
		assert.equal(h.messages[0].reactions.length, USER_MAX);
		// One the user has: the usual no-op reply, not an error.
		const again = await react(b, room, m.id, 'e0');
		assert.equal(again.type, 'reaction');
		assert.equal(again.seq, last.seq);
		// Removing at the cap works, and makes room for one.
		const off = await react(b, room, m.id, 'e5', false);
		assert.equal(off.type, 'reaction');
		assert.equal(off.reactions.length, USER_MAX - 1);
		const now = await react(b, room, m.id, 'one-more');
		assert.equal(now.type, 'reaction');
		assert.equal(now.reactions.at(-1).emoji, 'one-more');
		// Other users are not held back by b's cap.
		assert.equal((await react(a, room, m.id, 'mine')).type, 'reaction');
	});

	test(`a message: at most ${EMOJIS_MAX} different emojis`, async (t) => {
		const { room, users } = await roomOf(t, 4);
		const m = await send(users[0].c, room, 'a wall of emojis');
		for (let i = 0; i < EMOJIS_MAX; i++) {
			const r = await react(users[Math.floor(i / USER_MAX)], room, m.id, `x${i}`);
			assert.equal(r.type, 'reaction', JSON.stringify(r));
		}
		const over = await react(users[3], room, m.id, 'x-new');
		assert.equal(over.code, 'too_large');
		assert.match(over.message, new RegExp(`${EMOJIS_MAX}`));
		// An emoji already there is still welcome.
		const same = await react(users[3], room, m.id, 'x7');
		assert.equal(same.type, 'reaction');
		assert.equal(same.reactions.length, EMOJIS_MAX);
		assert.equal(same.reactions.find((r) => r.emoji === 'x7').count, 2);
		// An emoji that falls to 0 makes room.
		await react(users[0], room, m.id, 'x0', false);
		const now = await react(users[3], room, m.id, 'x-new');
		assert.equal(now.type, 'reaction');
		assert.equal(now.reactions.length, EMOJIS_MAX);
	});
});
