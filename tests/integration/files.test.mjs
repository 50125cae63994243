// Files (PROTOCOL.md, Version 2, "Files"): POST /api/files, send with
// files, GET /api/files/{id}, lifetimes, limits and hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
	useChatd, tempDir, api, newUser, wsAuth, join, until, withTimeout, uniq, WAIT_MS,
	rawRequest,
} from './lib/chatd.mjs';
import { upload, download } from './lib/files.mjs';
import { chatd, chatdOk, jsonLines } from './lib/ops.mjs';

const MiB = 1024 * 1024;

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** The files directory of srv (the default beside a SQLite database;
 * the harness's on PostgreSQL). */
const filesDir = (srv) => srv.filesDir;

/** Names in the files directory: { blobs, temps }. */
function listFiles(dir) {
	const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
	return {
		blobs: names.filter((n) => /^[0-9a-f]{64}$/.test(n)),
		temps: names.filter((n) => n.startsWith('.tmp-')),
	};
}

/** A metric's value (first sample whose line starts with name). */
async function metric(srv, name) {
	const r = await api(srv, 'GET', '/metrics');
	const line = r.text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
	return line === undefined ? undefined : Number(line.split(' ').pop());
}

/** A user with a WebSocket in room (joined). */
async function member(srv, room, prefix = 'f') {
	const u = await newUser(srv, prefix);
	u.c = await wsAuth(srv.wsUrl, u.token);
	await join(u.c, room);
	return u;
}

test('upload: 201 with the file object; bytes stored once under their SHA-256', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const bytes = randomBytes(100000);
	const r = await upload(srv, a.token, room, 'report.pdf', bytes, { type: 'application/pdf' });
	assert.equal(r.status, 201, r.text);
	assert.deepEqual(Object.keys(r.json.file).sort(), ['id', 'name', 'room', 'size', 'type']);
	assert.equal(r.json.file.name, 'report.pdf');
	assert.equal(r.json.file.size, 100000);
	assert.equal(r.json.file.type, 'application/pdf');
	assert.equal(r.json.file.room, room);
	assert.equal(typeof r.json.file.id, 'string');
	const { blobs, temps } = listFiles(filesDir(srv));
	assert.deepEqual(blobs, [sha256(bytes)]);
	assert.deepEqual(temps, []);
	assert.deepEqual(fs.readFileSync(path.join(filesDir(srv), blobs[0])), bytes);
	// The same bytes again, by another member: a new id, no new bytes.
	const b = await member(srv, room);
	const r2 = await upload(srv, b.token, room, 'copy.pdf', bytes);
	assert.equal(r2.status, 201);
	assert.notEqual(r2.json.file.id, r.json.file.id);
	assert.equal(r2.json.file.type, 'application/octet-stream', 'no Content-Type: the default');
	assert.deepEqual(listFiles(filesDir(srv)).blobs, [sha256(bytes)]);
	assert.equal(await metric(srv, 'chatd_file_bytes'), 100000);
	assert.equal(await metric(srv, 'chatd_files{state="unattached"}'), 2);
	// An empty file is a file.
	const e = await upload(srv, a.token, room, 'empty.txt', Buffer.alloc(0), { type: 'text/plain' });
	assert.equal(e.status, 201, e.text);
	assert.equal(e.json.file.size, 0);
});

test('upload: chunked bodies, Expect: 100-continue, and types', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const parts = [randomBytes(70000), randomBytes(1), randomBytes(300000)];
	const r = await upload(srv, a.token, room, 'log.txt', null, { chunks: parts, type: 'Text/Plain; charset=UTF-8' });
	assert.equal(r.status, 201, r.text);
	assert.equal(r.json.file.size, 370001);
	assert.equal(r.json.file.type, 'text/plain; charset=UTF-8', 'the media type lower-cased, parameters kept');
	assert.ok(listFiles(filesDir(srv)).blobs.includes(sha256(Buffer.concat(parts))));
	const x = await upload(srv, a.token, room, 'x.bin', randomBytes(5000), {
		headers: { Expect: '100-continue' }, type: 'not a type',
	});
	assert.equal(x.status, 201, x.text);
	assert.equal(x.json.file.type, 'application/octet-stream', 'a malformed type: the default');
});

test('upload: name rules (1-255 bytes of UTF-8, no / \\ or control characters)', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const one = Buffer.from('x');
	const bad = [
		'', '%2F', 'a%2Fb', 'a/b', 'a%5Cb', '%00', 'a%01b', 'a%0Ab', '%7F', '%C2%85', '%FF', '%C3',
		'%ZZ', 'a%2', encodeURIComponent('é'.repeat(128)), 'x'.repeat(256), '..%2F..%2Fetc%2Fpasswd',
	];
	for (const rawName of bad) {
		const r = await upload(srv, a.token, room, null, one, { rawName });
		assert.equal(r.status, 400, `name ${rawName}: ${r.text}`);
		assert.equal(r.json.error.code, 'bad_request');
	}
	const r0 = await upload(srv, a.token, room, null, one, { rawName: '' .padEnd(0) });
	assert.equal(r0.status, 400);
	const good = [
		['x'.repeat(255), 'x'.repeat(255)],
		['a+b.txt', 'a+b.txt'], // '+' is a plus sign
		['%E6%97%A5%E6%9C%AC.txt', '日本.txt'],
		['..', '..'],
		['%22quoted%22%3B%20name.txt', '"quoted"; name.txt'],
		['%F0%9F%98%80.png', '😀.png'],
	];
	for (const [rawName, name] of good) {
		const r = await upload(srv, a.token, room, null, one, { rawName });
		assert.equal(r.status, 201, `name ${rawName}: ${r.text}`);
		assert.equal(r.json.file.name, name);
	}
	// No name at all.
	const nn = await api(srv, 'POST', `/api/files?room=${room}`, { token: a.token, raw: 'x' });
	assert.equal(nn.status, 400);
	assert.deepEqual(listFiles(filesDir(srv)).temps, []);
});

test('upload: who may upload where (401, 403, 404, 400)', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const outsider = await newUser(srv, 'o');
	const bytes = randomBytes(1000);
	let r = await upload(srv, null, room, 'a.txt', bytes);
	assert.equal(r.status, 401);
	assert.equal(r.json.error.code, 'unauthorized');
	r = await upload(srv, 'nope', room, 'a.txt', bytes);
	assert.equal(r.status, 401);
	r = await upload(srv, outsider.token, room, 'a.txt', bytes);
	assert.equal(r.status, 403);
	assert.equal(r.json.error.code, 'forbidden');
	r = await upload(srv, a.token, uniq('none'), 'a.txt', bytes);
	assert.equal(r.status, 404);
	assert.equal(r.json.error.code, 'no_such_room');
	r = await upload(srv, a.token, 'Bad Room!', 'a.txt', bytes);
	assert.equal(r.status, 400);
	assert.equal(r.json.error.code, 'invalid_room');
	// Someone else's DM.
	const b = await newUser(srv, 'b');
	const bc = await wsAuth(srv.wsUrl, b.token);
	const dm = await bc.request({ type: 'dm', user: a.name });
	assert.equal(dm.type, 'joined');
	r = await upload(srv, outsider.token, dm.room, 'a.txt', bytes);
	assert.equal(r.status, 403);
	r = await upload(srv, a.token, dm.room, 'a.txt', bytes);
	assert.equal(r.status, 201, 'a DM is its two users\' room');
	// A refused upload keeps the connection usable (keep-alive, pipelined).
	const res = await rawRequest(srv.port, Buffer.concat([
		Buffer.from(`POST /api/files?room=${room}&name=x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${outsider.token}\r\nContent-Length: 5\r\n\r\nhello`),
		Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
	]), { n: 2 });
	assert.deepEqual(res.map((x) => x.status), [403, 200]);
	assert.deepEqual(listFiles(filesDir(srv)).temps, []);
});

test('upload: the size limit, from Content-Length or as a chunked body arrives', async (t) => {
	const srv = await useChatd(t, { args: ['--max-upload-mb', '1'] });
	const room = uniq('fr');
	const a = await member(srv, room);
	const at = randomBytes(MiB);
	let r = await upload(srv, a.token, room, 'at.bin', at);
	assert.equal(r.status, 201, 'exactly the limit is allowed');
	assert.equal(r.json.file.size, MiB);
	r = await upload(srv, a.token, room, 'over.bin', Buffer.concat([at, Buffer.from('x')]));
	assert.equal(r.status, 413);
	assert.equal(r.json.error.code, 'too_large');
	r = await upload(srv, a.token, room, 'at.bin', null, { chunks: [at.subarray(0, 1000), at.subarray(1000)] });
	assert.equal(r.status, 201, 'chunked, exactly the limit');
	r = await upload(srv, a.token, room, 'over.bin', null, { chunks: [at, Buffer.from('xy')] });
	assert.equal(r.status, 413);
	assert.equal(r.json.error.code, 'too_large');
	// The 64 KiB limit of other bodies is unchanged.
	const big = await api(srv, 'POST', '/api/login', { raw: 'x'.repeat(65537), headers: { 'Content-Type': 'application/json' } });
	assert.equal(big.status, 413);
	await until(async () => listFiles(filesDir(srv)).temps.length === 0, { what: 'no temporary files' });
	assert.equal(listFiles(filesDir(srv)).blobs.length, 1);
	assert.equal(await metric(srv, 'chatd_file_uploads_active'), 0);
});

test('upload: a client that disconnects mid-upload, or goes silent, leaves nothing', async (t) => {
	const srv = await useChatd(t, { args: ['--header-timeout', '1'] });
	const room = uniq('fr');
	const a = await member(srv, room);
	const head = `POST /api/files?room=${room}&name=cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\n`;
	// Disconnect after half the body.
	const s = net.connect(srv.port, '127.0.0.1');
	await new Promise((r) => s.once('connect', r));
	s.write(`${head}Content-Length: 200000\r\n\r\n`);
	s.write(randomBytes(100000));
	await until(async () => listFiles(filesDir(srv)).temps.length === 1, { what: 'the temporary file' });
	s.destroy();
	await until(async () => listFiles(filesDir(srv)).temps.length === 0, { what: 'the temporary file removed' });
	// Silence mid-body (slowloris): 408 after --header-timeout, nothing kept.
	const s2 = net.connect(srv.port, '127.0.0.1');
	let got = '';
	s2.on('data', (d) => { got += d; });
	const closed = new Promise((r) => s2.on('close', r));
	await new Promise((r) => s2.once('connect', r));
	s2.write(`${head}Transfer-Encoding: chunked\r\n\r\n1000\r\n`);
	s2.write(randomBytes(100));
	await withTimeout(closed, WAIT_MS * 2, 'silent upload closed');
	assert.match(got, /^HTTP\/1.1 408 /);
	assert.deepEqual(listFiles(filesDir(srv)), { blobs: [], temps: [] });
	assert.equal(await metric(srv, 'chatd_file_uploads_active'), 0);
	assert.ok(await metric(srv, 'chatd_file_uploads_failed_total') >= 2);
});

test('upload: the hourly quota per user, off with --rate-limits off', async (t) => {
	const srv = await useChatd(t, { rateLimits: 'on', args: ['--upload-quota-mb', '1'] });
	const room = uniq('fr');
	const a = await member(srv, room);
	const b = await member(srv, room);
	const part = randomBytes(700 * 1024);
	let r = await upload(srv, a.token, room, 'a.bin', part);
	assert.equal(r.status, 201);
	r = await upload(srv, a.token, room, 'b.bin', part);
	assert.equal(r.status, 429);
	assert.equal(r.json.error.code, 'rate_limited');
	assert.ok(Number(r.headers['retry-after']) >= 1);
	// Chunked: refused as the bytes pass the quota.
	r = await upload(srv, a.token, room, 'c.bin', null, { chunks: [part.subarray(0, 1000), part] });
	assert.equal(r.status, 429);
	// Another user has a quota of their own.
	r = await upload(srv, b.token, room, 'b.bin', part);
	assert.equal(r.status, 201);
	await until(async () => listFiles(filesDir(srv)).temps.length === 0, { what: 'no temporary files' });
	await srv.restart({ rateLimits: 'off' });
	r = await upload(srv, a.token, room, 'd.bin', part);
	assert.equal(r.status, 201);
	r = await upload(srv, a.token, room, 'e.bin', part);
	assert.equal(r.status, 201, 'no quota with --rate-limits off');
});

test('download: unknown, unattached and malformed ids are 404', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const r = await upload(srv, a.token, room, 'a.txt', Buffer.from('hello'));
	assert.equal(r.status, 201);
	for (const id of [r.json.file.id, '0'.repeat(32), 'x', '..%2F..%2Fetc%2Fpasswd', `${r.json.file.id}/..`,
		sha256(Buffer.from('hello')), `..%2F${sha256(Buffer.from('hello'))}`]) {
		const d = await download(srv, a.token, id);
		assert.equal(d.status, 404, `id ${id}`);
		assert.equal(d.json.error.code, 'not_found');
	}
	const d = await download(srv, null, r.json.file.id);
	assert.equal(d.status, 401);
});

test('upload: disk full (a small tmpfs) answers 507, removes the partial file, harms nothing else', async (t) => {
	// Mounting needs root; the suite runs as root in CI and on the dev VM.
	assert.equal(process.getuid(), 0, 'this test mounts a tmpfs: run the suite as root');
	const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-tmpfs-'));
	execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
	t.after(() => {
		try { execFileSync('umount', ['-l', mnt]); } catch { /* gone */ }
		fs.rmSync(mnt, { recursive: true, force: true });
	});
	const srv = await useChatd(t, { args: ['--files', mnt] });
	const room = uniq('fr');
	const a = await member(srv, room);
	const small = randomBytes(300 * 1024);
	let r = await upload(srv, a.token, room, 'small.bin', small);
	assert.equal(r.status, 201);
	r = await upload(srv, a.token, room, 'big.bin', randomBytes(2 * MiB));
	assert.equal(r.status, 507, r.text);
	assert.equal(r.json.error.code, 'insufficient_storage');
	r = await upload(srv, a.token, room, 'big.bin', null, { chunks: [randomBytes(MiB), randomBytes(MiB)] });
	assert.equal(r.status, 507, r.text);
	assert.deepEqual(listFiles(mnt), { blobs: [sha256(small)], temps: [] });
	// The server goes on: chat, and uploads that fit.
	const m = await a.c.request({ type: 'send', room, text: 'still here' });
	assert.equal(m.type, 'message');
	r = await upload(srv, a.token, room, 'fits.bin', randomBytes(100 * 1024));
	assert.equal(r.status, 201);
});

/** Uploads bytes as name and sends them in a message: { file, msg }. */
async function share(srv, u, room, name, bytes, type, text = '') {
	const r = await upload(srv, u.token, room, name, bytes, { type });
	assert.equal(r.status, 201, r.text);
	const msg = await u.c.request({ type: 'send', room, text, files: [r.json.file.id] });
	assert.equal(msg.type, 'message', JSON.stringify(msg));
	return { file: r.json.file, msg };
}

test('send with files: the message carries them; everyone in the room sees them', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const b = await member(srv, room);
	const png = randomBytes(2000);
	const f1 = (await upload(srv, a.token, room, 'shot.png', png, { type: 'image/png' })).json.file;
	const f2 = (await upload(srv, a.token, room, 'notes.txt', Buffer.from('hi'), { type: 'text/plain' })).json.file;
	const msg = await a.c.request({ type: 'send', room, text: '', files: [f2.id, f1.id] });
	assert.equal(msg.type, 'message', JSON.stringify(msg));
	assert.equal(msg.text, '', 'with files, text may be empty');
	assert.deepEqual(msg.files, [
		{ id: f2.id, name: 'notes.txt', size: 2, type: 'text/plain' },
		{ id: f1.id, name: 'shot.png', size: 2000, type: 'image/png' },
	]);
	const ev = await b.c.next((e) => e.type === 'message' && e.id === msg.id);
	assert.deepEqual(ev.files, msg.files);
	// History (WebSocket and HTTP) and search carry them too.
	const h = await b.c.request({ type: 'history', room });
	assert.deepEqual(h.messages.find((m) => m.id === msg.id).files, msg.files);
	const hh = await api(srv, 'GET', `/api/rooms/${room}/messages`, { token: b.token });
	assert.deepEqual(hh.json.messages.find((m) => m.id === msg.id).files, msg.files);
	// A message without files has no "files" member.
	const plain = await a.c.request({ type: 'send', room, text: 'no files' });
	assert.equal('files' in plain, false);
	// An edit keeps the files.
	const ed = await a.c.request({ type: 'edit', room, id: msg.id, text: 'look' });
	assert.deepEqual(ed.files, msg.files);
	assert.equal(await metric(srv, 'chatd_files{state="attached"}'), 2);
});

test('send with files: only the sender\'s own unattached uploads to that room', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const other = uniq('fo');
	const a = await member(srv, room);
	await join(a.c, other);
	const b = await member(srv, room);
	const mine = (await upload(srv, a.token, room, 'a.txt', Buffer.from('a'))).json.file;
	const elsewhere = (await upload(srv, a.token, other, 'b.txt', Buffer.from('b'))).json.file;
	const bs = (await upload(srv, b.token, room, 'c.txt', Buffer.from('c'))).json.file;
	const bad = async (files, code, text = 'x') => {
		const r = await a.c.request({ type: 'send', room, text, files });
		assert.equal(r.type, 'error', JSON.stringify(files));
		assert.equal(r.code, code, JSON.stringify(files));
	};
	await bad([], 'bad_request');
	await bad(Array(11).fill(mine.id), 'bad_request');
	await bad('abc', 'bad_request');
	await bad([1], 'bad_request');
	await bad([elsewhere.id], 'not_found');
	await bad([bs.id], 'not_found');
	await bad(['0'.repeat(32)], 'not_found');
	await bad(['../../etc/passwd'], 'not_found');
	await bad([mine.id, mine.id], 'not_found');
	await bad([mine.id, bs.id], 'not_found');
	const r0 = await a.c.request({ type: 'send', room, text: '   ' });
	assert.equal(r0.code, 'empty', 'without files, empty text is still empty');
	const ok = await a.c.request({ type: 'send', room, text: 'ok', files: [mine.id] });
	assert.equal(ok.type, 'message');
	await bad([mine.id], 'not_found'); // attached already
	// Nothing was attached by the failed sends: b's file is still b's to send.
	const okb = await b.c.request({ type: 'send', room, text: '', files: [bs.id] });
	assert.equal(okb.type, 'message');
	// client_msg_id: a resend gets the original, files and all.
	const f = (await upload(srv, a.token, room, 'd.txt', Buffer.from('d'))).json.file;
	const first = await a.c.request({ type: 'send', room, text: 'once', client_msg_id: 'k1', files: [f.id] });
	const again = await a.c.request({ type: 'send', room, text: 'once', client_msg_id: 'k1', files: [f.id] });
	assert.deepEqual(again.files, first.files);
	assert.equal(again.id, first.id);
});

test('download: exact headers, inline only for the four image types, RFC 6266 names', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const cases = [
		['pic.png', 'image/png', 'inline'],
		['pic.jpg', 'image/jpeg', 'inline'],
		['pic.gif', 'image/gif', 'inline'],
		['pic.webp', 'image/webp', 'inline'],
		['pic.svg', 'image/svg+xml', 'attachment'],
		['page.html', 'text/html', 'attachment'],
		['x.bin', undefined, 'attachment'],
	];
	for (const [name, type, disp] of cases) {
		const bytes = randomBytes(3000);
		const { file } = await share(srv, a, room, name, bytes, type);
		const d = await download(srv, a.token, file.id);
		assert.equal(d.status, 200);
		assert.deepEqual(d.body, bytes);
		assert.equal(d.headers['content-type'], type ?? 'application/octet-stream');
		assert.equal(d.headers['content-length'], '3000');
		assert.equal(d.headers['x-content-type-options'], 'nosniff');
		assert.equal(d.headers['content-security-policy'], 'sandbox');
		assert.equal(d.headers.etag, `"${sha256(bytes)}"`);
		assert.equal(d.headers['content-disposition'], `${disp}; filename="${name}"; filename*=UTF-8''${name}`);
		const head = await download(srv, a.token, file.id, {}, 'HEAD');
		assert.equal(head.status, 200);
		assert.equal(head.body.length, 0);
		assert.equal(head.headers['content-length'], '3000');
	}
	// A hostile name: quotes, backslash-free, semicolons, non-ASCII, '%'.
	const { file } = await share(srv, a, room, 'a "b"; c=d 100% 日本.txt', Buffer.from('x'), 'text/plain');
	const d = await download(srv, a.token, file.id);
	assert.equal(d.headers['content-disposition'],
		'attachment; filename="a _b_; c=d 100_ __.txt"; filename*=UTF-8\'\'a%20%22b%22%3B%20c%3Dd%20100%25%20%E6%97%A5%E6%9C%AC.txt'
			.replace('__.txt', '______.txt'));
	const star = /filename\*=UTF-8''(.*)$/.exec(d.headers['content-disposition'])[1];
	assert.equal(decodeURIComponent(star), 'a "b"; c=d 100% 日本.txt');
});

test('download: Range (206), suffixes, open ends, 416, and ignored ranges', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const bytes = randomBytes(1000);
	const { file } = await share(srv, a, room, 'r.bin', bytes);
	const get = (range, extra = {}) => download(srv, a.token, file.id, { Range: range, ...extra });
	let d = await get('bytes=0-99');
	assert.equal(d.status, 206);
	assert.deepEqual(d.body, bytes.subarray(0, 100));
	assert.equal(d.headers['content-range'], 'bytes 0-99/1000');
	assert.equal(d.headers['content-length'], '100');
	d = await get('bytes=990-');
	assert.equal(d.status, 206);
	assert.deepEqual(d.body, bytes.subarray(990));
	d = await get('bytes=-10');
	assert.equal(d.status, 206);
	assert.deepEqual(d.body, bytes.subarray(990));
	assert.equal(d.headers['content-range'], 'bytes 990-999/1000');
	d = await get('bytes=-5000');
	assert.equal(d.status, 206, 'a suffix longer than the file: all of it');
	assert.deepEqual(d.body, bytes);
	d = await get('bytes=500-99999');
	assert.equal(d.status, 206);
	assert.deepEqual(d.body, bytes.subarray(500));
	d = await get('bytes=999-999');
	assert.deepEqual(d.body, bytes.subarray(999));
	for (const r of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
		d = await get(r);
		assert.equal(d.status, 416, r);
		assert.equal(d.headers['content-range'], 'bytes */1000');
	}
	// Several ranges, other units, nonsense, reversed: the whole file.
	for (const r of ['bytes=0-1,5-6', 'items=0-1', 'bytes=abc', 'bytes=5-1', 'bytes=0-1,' + '2-3,'.repeat(500) + '4-5',
		'bytes=99999999999999999999999-']) {
		d = await get(r);
		assert.equal(d.status, 200, r);
		assert.deepEqual(d.body, bytes);
	}
	// If-Range: the file's ETag keeps the range, another validator not.
	d = await get('bytes=0-9', { 'If-Range': `"${sha256(bytes)}"` });
	assert.equal(d.status, 206);
	d = await get('bytes=0-9', { 'If-Range': '"other"' });
	assert.equal(d.status, 200);
});

test('download: who may read (members, non-members, banned users, public-room readers)', async (t) => {
	const srv = await useChatd(t);
	const pub = uniq('fp');
	const a = await member(srv, pub);
	const reader = await newUser(srv, 'rd'); // signed in, never joined
	const { file } = await share(srv, a, pub, 'p.txt', Buffer.from('public'));
	assert.equal((await download(srv, reader.token, file.id)).status, 200, 'a public room is readable by all');
	// A private room: members only.
	const priv = uniq('fv');
	const cr = await a.c.request({ type: 'create', room: priv, kind: 'private' });
	assert.equal(cr.type, 'joined', JSON.stringify(cr));
	const pf = (await share(srv, a, priv, 'secret.txt', Buffer.from('secret'))).file;
	let d = await download(srv, reader.token, pf.id);
	assert.equal(d.status, 403, 'a private room: members only');
	assert.equal(d.json.error.code, 'forbidden');
	// A DM: its two users.
	const b = await newUser(srv, 'b');
	b.c = await wsAuth(srv.wsUrl, b.token);
	const dm = await a.c.request({ type: 'dm', user: b.name });
	const df = (await share(srv, a, dm.room, 'dm.txt', Buffer.from('dm'))).file;
	assert.equal((await download(srv, b.token, df.id)).status, 200);
	assert.equal((await download(srv, reader.token, df.id)).status, 403, 'someone else\'s DM');
	// Banned from the public room: forbidden, as its history is.
	const v = await member(srv, pub, 'v');
	assert.equal((await download(srv, v.token, file.id)).status, 200);
	const k = await a.c.request({ type: 'kick', room: pub, user: v.name, ban: true });
	assert.equal(k.type, 'kicked', JSON.stringify(k));
	d = await download(srv, v.token, file.id);
	assert.equal(d.status, 403, 'banned');
	assert.equal((await a.c.request({ type: 'unban', room: pub, user: v.name })).type, 'unbanned');
	assert.equal((await download(srv, v.token, file.id)).status, 200);
});

test('delete: a message takes its files; bytes go when no other file shares them', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const b = await member(srv, room);
	const same = randomBytes(5000);
	const only = randomBytes(6000);
	const m1 = await share(srv, a, room, 'one.bin', same);
	const m2 = await share(srv, b, room, 'two.bin', same);
	const m3 = await share(srv, a, room, 'three.bin', only);
	assert.deepEqual(listFiles(filesDir(srv)).blobs.sort(), [sha256(same), sha256(only)].sort());
	let del = await a.c.request({ type: 'delete', room, id: m1.msg.id });
	assert.equal(del.type, 'deleted');
	assert.equal('files' in del, false, 'a tombstone has no files');
	assert.equal((await download(srv, a.token, m1.file.id)).status, 404);
	assert.equal((await download(srv, a.token, m2.file.id)).status, 200, 'the other file keeps the bytes');
	assert.ok(listFiles(filesDir(srv)).blobs.includes(sha256(same)));
	del = await a.c.request({ type: 'delete', room, id: m3.msg.id });
	assert.equal(del.type, 'deleted');
	await until(async () => !listFiles(filesDir(srv)).blobs.includes(sha256(only)), { what: 'bytes removed' });
	// A moderator's delete too (the room's owner deletes b's message).
	await join(a.c, room);
	const h = await b.c.request({ type: 'history', room });
	assert.ok(h.messages.find((m) => m.id === m1.msg.id).deleted);
	assert.equal('files' in h.messages.find((m) => m.id === m1.msg.id), false);
	assert.equal(await metric(srv, 'chatd_files{state="attached"}'), 1);
	assert.equal(await metric(srv, 'chatd_file_bytes'), 5000);
});

test('lifetimes: unattached files are swept after 24 hours (injected clock); room del and user del', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const old = randomBytes(1000);
	const kept = await share(srv, a, room, 'kept.bin', randomBytes(1000));
	const loose = (await upload(srv, a.token, room, 'loose.bin', old)).json.file;
	assert.equal(listFiles(filesDir(srv)).blobs.length, 2);
	// 23 hours later: still there.
	await srv.restart({ env: { CHATD_TEST_CLOCK_OFFSET_MS: String(23 * 3600 * 1000) } });
	assert.equal(listFiles(filesDir(srv)).blobs.length, 2);
	assert.equal(await metric(srv, 'chatd_files{state="unattached"}'), 1);
	// 25 hours later: the unattached file is gone, the attached one stays.
	await srv.restart({ env: { CHATD_TEST_CLOCK_OFFSET_MS: String(25 * 3600 * 1000) } });
	assert.deepEqual(listFiles(filesDir(srv)).blobs, [sha256((await download(srv, a.token, kept.file.id)).body)]);
	assert.equal(await metric(srv, 'chatd_files{state="unattached"}'), 0);
	a.c = await wsAuth(srv.wsUrl, a.token);
	const r = await a.c.request({ type: 'send', room, text: 'x', files: [loose.id] });
	assert.equal(r.code, 'not_found');
	// user del: their unattached uploads go, attached files stay.
	const b = await member(srv, room, 'b');
	const bk = await share(srv, b, room, 'b-kept.bin', randomBytes(100));
	await upload(srv, b.token, room, 'b-loose.bin', randomBytes(100));
	await srv.stop();
	execFileSync(process.env.CHATD_BIN || path.resolve('build/chatd'), [...srv.dbArgs, 'user', 'del', b.name]);
	await srv.restart();
	assert.equal(await metric(srv, 'chatd_files{state="unattached"}'), 0);
	assert.equal((await download(srv, a.token, bk.file.id)).status, 200);
	assert.equal(listFiles(filesDir(srv)).blobs.length, 2, 'the loose upload\'s bytes swept at start');
	// room del: every file of the room, and their bytes at the next sweep.
	await srv.stop();
	execFileSync(process.env.CHATD_BIN || path.resolve('build/chatd'), [...srv.dbArgs, 'room', 'del', room]);
	await srv.restart();
	assert.deepEqual(listFiles(filesDir(srv)), { blobs: [], temps: [] });
	assert.equal((await download(srv, a.token, kept.file.id)).status, 404);
});

test('an HTML upload is served as an attachment in a sandbox, never as a page', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const html = Buffer.from('<!doctype html><script>parent.pwned = 1</script>');
	const { file } = await share(srv, a, room, 'evil.html', html, 'text/html');
	const d = await download(srv, a.token, file.id);
	assert.equal(d.headers['content-type'], 'text/html');
	assert.match(d.headers['content-disposition'], /^attachment;/);
	assert.equal(d.headers['content-security-policy'], 'sandbox');
	assert.equal(d.headers['x-content-type-options'], 'nosniff');
	// Not cacheable by shared caches, and no token in the URL works.
	assert.match(d.headers['cache-control'], /private/);
	const q = await api(srv, 'GET', `/api/files/${file.id}?token=${a.token}`);
	assert.equal(q.status, 401);
});

test('backup writes the files beside the copy; restore brings them back', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const one = randomBytes(4000);
	const two = randomBytes(5000);
	const m1 = await share(srv, a, room, 'one.bin', one);
	const m2 = await share(srv, a, room, 'two.bin', two);
	await upload(srv, a.token, room, 'loose.bin', randomBytes(10)); // unattached: in the backup too
	const bk = path.join(tempDir(t), 'bk.db');
	assert.equal(await chatdOk([...srv.dbArgs, 'backup', bk]), '');
	assert.deepEqual(listFiles(`${bk}.files`).blobs.sort(), listFiles(filesDir(srv)).blobs.sort());
	// After the backup: one message deleted (its bytes go), one more sent.
	await a.c.request({ type: 'delete', room, id: m1.msg.id });
	const m3 = await share(srv, a, room, 'three.bin', randomBytes(3000));
	await until(async () => !listFiles(filesDir(srv)).blobs.includes(sha256(one)), { what: 'bytes gone' });
	await srv.stop();
	await chatdOk([...srv.dbArgs, 'restore', bk]);
	await srv.restart();
	const d1 = await download(srv, a.token, m1.file.id);
	assert.equal(d1.status, 200, 'the deleted file is back');
	assert.deepEqual(d1.body, one);
	assert.deepEqual((await download(srv, a.token, m2.file.id)).body, two);
	assert.equal((await download(srv, a.token, m3.file.id)).status, 404, 'made after the backup');
	// Bytes the restored database does not name are swept at start.
	assert.equal(listFiles(filesDir(srv)).blobs.length, 3);
});

test('export carries files as base64 lines; import brings them to a new server', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const bytes = randomBytes(70000);
	const m = await share(srv, a, room, 'data.bin', bytes, 'application/x-thing');
	const img = await share(srv, a, room, 'pic.png', randomBytes(100), 'image/png');
	await a.c.request({ type: 'delete', room, id: img.msg.id });
	await upload(srv, a.token, room, 'loose.bin', randomBytes(10));
	const out = await chatdOk([...srv.dbArgs, 'export']);
	const lines = jsonLines(out);
	const files = lines.filter((l) => l.type === 'file');
	assert.equal(files.length, 1, 'attached files of live messages only');
	assert.equal(files[0].id, m.file.id);
	assert.equal(files[0].content_type, 'application/x-thing');
	assert.deepEqual(Buffer.from(files[0].data, 'base64'), bytes);
	assert.deepEqual(lines.find((l) => l.type === 'message' && l.id === m.msg.id).files, m.msg.files);
	// --room of another room: no file lines.
	const o = uniq('fo');
	await join(a.c, o);
	const other = jsonLines(await chatdOk([...srv.dbArgs, 'export', '--room', o]));
	assert.equal(other.filter((l) => l.type === 'file').length, 0, 'another room: none');
	const mine = jsonLines(await chatdOk([...srv.dbArgs, 'export', '--room', room]));
	assert.equal(mine.filter((l) => l.type === 'file').length, 1, 'the room: its file');
	const dir = tempDir(t);
	const db2 = path.join(dir, 'new.db');
	await chatdOk(['--db', db2, 'import'], { input: out });
	assert.deepEqual(listFiles(`${db2}.files`).blobs, [sha256(bytes)]);
	const srv2 = await useChatd(t, { dbPath: db2 });
	// Log in on the new server.
	const r = await api(srv2, 'POST', '/api/login', { body: { username: a.name, password: a.pw } });
	const d2 = await download(srv2, r.json.token, m.file.id);
	assert.equal(d2.status, 200);
	assert.deepEqual(d2.body, bytes);
	assert.equal(d2.headers['content-type'], 'application/x-thing');
	// A file line whose bytes do not match its size is refused.
	const bad = out.split('\n').map((l) => (l.includes('"type":"file"') ? l.replace('"size":70000', '"size":69999') : l)).join('\n');
	assert.notEqual(bad, out);
	const db3 = path.join(dir, 'bad.db');
	await assert.rejects(chatdOk(['--db', db3, 'import'], { input: bad }));
});

test('check-config checks that the files directory is writable', async (t) => {
	const dir = tempDir(t);
	const db = path.join(dir, 'c.db');
	const ok = await chatd(['--db', db, '--web', 'web', 'check-config']);
	assert.equal(ok.code, 0, ok.stderr);
	assert.match(ok.stdout, new RegExp(`files = ${db}\\.files\\t# default`));
	fs.writeFileSync(path.join(dir, 'plain'), 'x');
	const bad = await chatd(['--db', db, '--web', 'web', '--files', path.join(dir, 'plain'), 'check-config']);
	assert.equal(bad.code, 1);
	assert.match(bad.stderr, /--files .*plain: not a directory/);
	const deep = await chatd(['--db', db, '--web', 'web', '--files', path.join(dir, 'plain', 'sub'), 'check-config']);
	assert.equal(deep.code, 1);
	const badmb = await chatd(['--db', db, '--web', 'web', '--max-upload-mb', '0', 'check-config']);
	assert.equal(badmb.code, 2, badmb.stderr);
});

test('download: a big file then pipelined requests on one connection, in order', async (t) => {
	const srv = await useChatd(t);
	const room = uniq('fr');
	const a = await member(srv, room);
	const bytes = randomBytes(3 * MiB + 123);
	const { file } = await share(srv, a, room, 'big.bin', bytes);
	const get = `GET /api/files/${file.id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\n\r\n`;
	const res = await rawRequest(srv.port, Buffer.from(get +
		`GET /api/files/${file.id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\nRange: bytes=-5\r\n\r\n` +
		'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), { n: 3, ms: WAIT_MS * 2 });
	assert.deepEqual(res.map((r) => r.status), [200, 206, 200]);
	assert.deepEqual(res[0].body, bytes);
	assert.deepEqual(res[1].body, bytes.subarray(bytes.length - 5));
	assert.equal(await metric(srv, 'chatd_file_download_bytes_total'), bytes.length + 5);
});
