// tests/integration/ws_echo.test.mjs — the WebSocket engine and glue, end
// to end: tests/ws_echo (chatd's engine and connection code with the echo
// application) against npm's `ws` client and hand-built frames. Mirrors the
// Autobahn fuzzingclient sections it can reach from outside.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import WebSocket from 'ws';
import { CHATD_BIN, freePort, rawConnect, rawWsConnect, until, WAIT_MS } from './lib/chatd.mjs';

const ECHO_BIN = path.join(path.dirname(CHATD_BIN), 'tests', 'ws_echo');
let proc;
let port;

before(async () => {
	port = await freePort();
	proc = spawn(ECHO_BIN, [String(port)], { stdio: ['ignore', 'ignore', 'inherit'] });
	await until(async () => {
		const raw = await rawConnect(port).catch(() => null);
		if (raw) raw.close();
		return raw !== null;
	}, { tries: 200, what: 'ws_echo listening' });
});

after(async () => {
	if (proc && proc.exitCode === null) {
		const done = new Promise((r) => proc.once('exit', r));
		proc.kill('SIGTERM');
		await done;
	}
});

/** Opens a `ws` client to the echo server. */
function open() {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(`ws://127.0.0.1:${port}/any/path`, { maxPayload: 0 });
		ws.once('open', () => resolve(ws));
		ws.once('error', reject);
	});
}

/** Sends data and resolves to the echoed message. */
function roundTrip(ws, data, opts = {}) {
	return new Promise((resolve, reject) => {
		ws.once('message', (msg, isBinary) => resolve({ msg, isBinary }));
		ws.once('error', reject);
		ws.send(data, opts);
	});
}

test('text and binary messages of every length class echo back intact', async () => {
	const ws = await open();
	for (const n of [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20, 16 << 20]) {
		const bin = Buffer.alloc(n);
		for (let i = 0; i < n; i++) bin[i] = (i * 31 + 7) & 0xff;
		let r = await roundTrip(ws, bin, { binary: true });
		assert.equal(r.isBinary, true);
		assert.ok(Buffer.compare(r.msg, bin) === 0, `binary ${n}`);
		const text = 'é€😀a'.repeat(Math.ceil(n / 10)).slice(0, n);
		r = await roundTrip(ws, text);
		assert.equal(r.isBinary, false);
		assert.equal(r.msg.toString('utf8'), text, `text ${n}`);
	}
	ws.close();
});

test('a fragmented message with a ping between fragments: pong first, then the whole message', async () => {
	const { ws } = await rawWsConnect(port, { path: '/' });
	assert.ok(ws);
	ws.sendFrame({ opcode: 1, fin: false, payload: Buffer.from('Hel') });
	ws.sendFrame({ opcode: 9, payload: Buffer.from('ping!') });
	ws.sendFrame({ opcode: 0, fin: false, payload: Buffer.from('lo, ') });
	ws.sendFrame({ opcode: 0, fin: true, payload: Buffer.from('wörld') });
	const pong = await ws.frame();
	assert.equal(pong.opcode, 10);
	assert.equal(pong.payload.toString(), 'ping!');
	const msg = await ws.frame();
	assert.equal(msg.opcode, 1);
	assert.equal(msg.payload.toString(), 'Hello, wörld');
	ws.close();
});

test('the closing handshake: our close is echoed with its code, then TCP closes', async () => {
	const { ws, raw } = await rawWsConnect(port, { path: '/' });
	const payload = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]);
	ws.sendFrame({ opcode: 8, payload });
	const f = await ws.closeFrame();
	assert.equal(f.payload.readUInt16BE(0), 1000);
	await raw.closedByPeer(WAIT_MS);
});

/** Sends bad bytes after the handshake; resolves to the close code. */
async function closeCodeFor(frames) {
	const { ws, raw } = await rawWsConnect(port, { path: '/' });
	for (const f of frames) {
		if (Buffer.isBuffer(f)) ws.write(f);
		else ws.sendFrame(f);
	}
	const close = await ws.closeFrame();
	await raw.closedByPeer(WAIT_MS);
	return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
}

test('protocol violations fail the connection with the RFC close code', async () => {
	assert.equal(await closeCodeFor([{ opcode: 1, mask: false, payload: Buffer.from('x') }]), 1002, 'unmasked');
	assert.equal(await closeCodeFor([{ opcode: 1, rsv: 4, payload: Buffer.from('x') }]), 1002, 'RSV1');
	assert.equal(await closeCodeFor([{ opcode: 3, payload: Buffer.from('x') }]), 1002, 'opcode 3');
	assert.equal(await closeCodeFor([{ opcode: 11, payload: Buffer.alloc(0) }]), 1002, 'opcode 11');
	assert.equal(await closeCodeFor([{ opcode: 9, fin: false, payload: Buffer.from('x') }]), 1002, 'fragmented ping');
	assert.equal(await closeCodeFor([{ opcode: 9, payload: Buffer.alloc(126) }]), 1002, 'ping over 125');
	assert.equal(await closeCodeFor([{ opcode: 0, payload: Buffer.from('x') }]), 1002, 'continuation first');
	assert.equal(await closeCodeFor([
		{ opcode: 1, fin: false, payload: Buffer.from('a') },
		{ opcode: 1, fin: true, payload: Buffer.from('b') },
	]), 1002, 'new message inside a fragmented one');
	assert.equal(await closeCodeFor([{ opcode: 8, payload: Buffer.from([0x03, 0xed]) }]), 1002, 'close 1005');
	assert.equal(await closeCodeFor([{ opcode: 8, payload: Buffer.from([0x03]) }]), 1002, 'close payload of 1 byte');
});

test('invalid UTF-8 fails with 1007, even split across fragments', async () => {
	assert.equal(await closeCodeFor([{ opcode: 1, payload: Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80]) }]), 1007);
	assert.equal(await closeCodeFor([
		{ opcode: 1, fin: false, payload: Buffer.from([0xf0, 0x9f]) },
		{ opcode: 0, fin: true, payload: Buffer.from([0x98, 0x28]) },
	]), 1007);
	assert.equal(await closeCodeFor([{ opcode: 8, payload: Buffer.from([0x03, 0xe8, 0xff]) }]), 1007, 'close reason');
});
