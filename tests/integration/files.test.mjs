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

const MiB = 1024 * 1024;

/**
 * POST /api/files. opts: type (Content-Type), chunks (an array of
 * Buffers sent chunked, without Content-Length), headers, rawName (the
 * name query value as is). Resolves to { status, headers, json }.
 */
export function upload(srv, token, room, name, bytes, opts = {}) {
	const q = `room=${encodeURIComponent(room)}&name=${opts.rawName ?? encodeURIComponent(name)}`;
	const headers = { ...(opts.headers || {}) };
	if (token) headers.Authorization = `Bearer ${token}`;
	if (opts.type !== undefined) headers['Content-Type'] = opts.type;
	if (!opts.chunks) headers['Content-Length'] = String(bytes.length);
	return new Promise((resolve, reject) => {
		const req = http.request({
			host: '127.0.0.1', port: srv.port, path: `/api/files?${q}`, method: 'POST', headers, agent: false,
		}, (res) => {
			const parts = [];
			res.on('data', (d) => parts.push(d));
			res.on('end', () => {
				const text = Buffer.concat(parts).toString();
				let json;
				try { json = JSON.parse(text); } catch { json = undefined; }
				resolve({ status: res.statusCode, headers: res.headers, json, text });
			});
		});
		req.setTimeout(WAIT_MS * 4, () => req.destroy(new Error('upload: no answer')));
		req.on('error', reject);
		if (opts.chunks) for (const c of opts.chunks) req.write(c);
		else req.write(bytes);
		req.end();
	});
}

/** GET /api/files/{id}: { status, headers, body (Buffer), json }. */
export function download(srv, token, id, headers = {}, method = 'GET') {
	const h = { ...headers };
	if (token) h.Authorization = `Bearer ${token}`;
	return new Promise((resolve, reject) => {
		const req = http.request({
			host: '127.0.0.1', port: srv.port, path: `/api/files/${id}`, method, headers: h, agent: false,
		}, (res) => {
			const parts = [];
			res.on('data', (d) => parts.push(d));
			res.on('end', () => {
				const body = Buffer.concat(parts);
				let json;
				try { json = JSON.parse(body.toString()); } catch { json = undefined; }
				resolve({ status: res.statusCode, headers: res.headers, body, json });
			});
		});
		req.setTimeout(WAIT_MS * 4, () => req.destroy(new Error('download: no answer')));
		req.on('error', reject);
		req.end();
	});
}

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** The files directory of srv (the default, beside the database). */
const filesDir = (srv) => `${srv.dbPath}.files`;

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
