// tests/integration/lib/chatd.mjs — harness for tests that run the real chatd.
//
// Starts chatd on a free loopback port with a fresh database in its own temp
// directory, waits for /healthz, and gives tests HTTP, WebSocket and raw TCP
// clients that speak PROTOCOL.md. Every wait is bounded; nothing sleeps to
// "let things settle". Shared with the browser tests in tests/e2e/.

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import zlib from 'node:zlib';
import WebSocket from 'ws';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
export const WEB_DIR = path.join(REPO, 'web');
export const CHATD_BIN = process.env.CHATD_BIN || path.join(REPO, 'build', 'chatd');
export const WAIT_MS = Number(process.env.CHATD_TEST_WAIT_MS || 5000);
// CHATD_TEST_DB=postgres: each chatd gets a fresh schema of the throwaway
// PostgreSQL at CHATD_TEST_PG (scripts/services.sh) instead of a SQLite
// file, so that the single-node suite runs against that backend too.
export const PG_URL = process.env.CHATD_TEST_DB === 'postgres' ? process.env.CHATD_TEST_PG : null;
if (process.env.CHATD_TEST_DB === 'postgres' && !PG_URL) {
	throw new Error('CHATD_TEST_DB=postgres needs CHATD_TEST_PG (scripts/services.sh)');
}

/** Runs sql on the test cluster's database with psql. */
export function pgExec(sql, url = process.env.CHATD_TEST_PG) {
	return execFileSync('psql', [url, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' });
}

/** A fresh schema of the test cluster: { name, url } (url's search_path
 * is the schema, then public for the extensions). */
export function pgSchema(prefix = 'it') {
	const name = `${prefix}_${randomBytes(6).toString('hex')}`;
	pgExec(`CREATE SCHEMA ${name}`);
	return { name, url: `${process.env.CHATD_TEST_PG}&options=-csearch_path%3D${name}%2Cpublic` };
}

// ---------------------------------------------------------------- utilities

/** A short random lower-case suffix for unique user and room names. */
export function rand(n = 8) {
	return randomBytes(n).toString('hex').slice(0, n);
}

/** A unique valid username / room name with the given prefix. */
export function uniq(prefix = 'u') {
	return `${prefix}${rand(8)}`;
}

/** Resolves after ms; only for deliberate pacing (slow clients), never to
 * wait for the server. */
export function pace(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

/** Rejects with msg unless promise settles within ms. */
export function withTimeout(promise, ms, msg) {
	let timer;
	return Promise.race([
		promise,
		new Promise((_, rej) => {
			timer = setTimeout(() => rej(new Error(`timeout after ${ms} ms: ${msg}`)), ms);
		}),
	]).finally(() => clearTimeout(timer));
}

/** Polls cond (sync or async) until truthy, at most tries times. */
export async function until(cond, { tries = 100, interval = 50, what = 'condition' } = {}) {
	let last;
	for (let i = 0; i < tries; i++) {
		try {
			last = await cond();
			if (last) return last;
		} catch (e) {
			last = e;
		}
		await pace(interval);
	}
	throw new Error(`gave up waiting for ${what}${last instanceof Error ? ': ' + last.message : ''}`);
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.unref();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// ---------------------------------------------------------------- the server

const live = new Set(); // running instances, killed if the process exits
const dirs = new Set(); // temp dirs not yet removed
const schemas = new Set(); // PostgreSQL schemas not yet dropped (the
// throwaway cluster goes with all of them at the end of the run)

/** Kills every running chatd and removes every temp dir (synchronously). */
function cleanupAll() {
	for (const inst of live) {
		try { inst.proc.kill('SIGKILL'); } catch { /* gone */ }
	}
	for (const d of dirs) {
		try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ }
	}
}
process.on('exit', cleanupAll);
// A signal ends the process without 'exit': clean up, then die of it.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.once(sig, () => {
		cleanupAll();
		process.kill(process.pid, sig);
	});
}

function healthy(port, proto, timeoutMs = 1000) {
	return new Promise((resolve) => {
		const mod = proto === 'https' ? https : http;
		const req = mod.request({
			host: '127.0.0.1', port, path: '/healthz', method: 'GET', agent: false,
			timeout: timeoutMs, rejectUnauthorized: false,
		}, (res) => {
			res.resume();
			res.on('end', () => resolve(res.statusCode === 200));
			res.on('error', () => resolve(false));
		});
		req.on('timeout', () => { req.destroy(); resolve(false); });
		req.on('error', () => resolve(false));
		req.end();
	});
}

/** process.env without CHATD_* settings, so a developer's environment
 * can't change the server under test (opts.env adds them back). */
function cleanEnv() {
	const env = {};
	for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CHATD_')) env[k] = v;
	return env;
}

function portBusy(text) {
	return /address already in use|EADDRINUSE|in use/i.test(text);
}

/**
 * Starts chatd. opts:
 *   args       extra command-line flags (array)
 *   dbPath     database file (default: <fresh temp dir>/chat.db, or a
 *              fresh PostgreSQL schema's URI with CHATD_TEST_DB=postgres)
 *   webDir     web root (default: <repo>/web)
 *   env        extra environment variables
 *   rateLimits 'off' (default) | 'on' | null (null: pass no --rate-limits flag)
 *   tls        true when args include --tls-cert/--tls-key (url is https)
 *   port       a fixed port (default: a free one)
 * Resolves to { port, url, wsUrl, dbPath, filesDir, dbArgs, dir, proc, stop,
 * kill, restart, logs, cleanup }: filesDir is the files directory (beside
 * a SQLite file; in dir on PostgreSQL), dbArgs the flags that point the
 * admin commands at this server's database and files.
 */
export async function startChatd(opts = {}) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-it-'));
	dirs.add(dir);
	const schema = !opts.dbPath && PG_URL ? pgSchema() : null;
	if (schema) schemas.add(schema.name);
	const inst = {
		dir,
		dbPath: opts.dbPath || (schema ? schema.url : path.join(dir, 'chat.db')),
		webDir: opts.webDir || WEB_DIR,
		opts: { ...opts },
		port: 0,
		proc: null,
		exitCode: null,
		exited: null,
		_logs: '',
		_stdout: '',
	};
	const pgFiles = path.join(dir, 'chat.db.files');
	const tlsOn = !!opts.tls || (opts.args || []).includes('--tls-cert');
	const proto = tlsOn ? 'https' : 'http';

	async function launch(extraOpts = {}, samePort = false) {
		const o = { ...inst.opts, ...extraOpts };
		inst.opts = o;
		const attempts = samePort ? 40 : 5;
		let lastErr;
		for (let attempt = 0; attempt < attempts; attempt++) {
			const port = samePort ? inst.port : (o.port || await freePort());
			const args = ['--listen', `127.0.0.1:${port}`, '--db', inst.dbPath, '--web', inst.webDir];
			// PostgreSQL's default files directory is ./chatd.files:
			// each chatd keeps its own in its temp dir, as with SQLite.
			if (schema && !(o.args || []).includes('--files')) args.push('--files', pgFiles);
			const rl = o.rateLimits === undefined ? 'off' : o.rateLimits;
			if (rl !== null) args.push('--rate-limits', rl);
			args.push(...(o.args || []));
			const proc = spawn(CHATD_BIN, args, {
				env: { ...cleanEnv(), ...(o.env || {}) },
				stdio: ['ignore', 'pipe', 'pipe'],
			});
			const startLen = inst._logs.length;
			proc.stderr.setEncoding('utf8');
			proc.stdout.setEncoding('utf8');
			proc.stderr.on('data', (d) => { inst._logs += d; });
			proc.stdout.on('data', (d) => { inst._stdout += d; });
			let exitInfo = null;
			inst.exited = new Promise((resolve) => {
				proc.on('exit', (code, signal) => {
					exitInfo = { code, signal };
					live.delete(inst);
					resolve(exitInfo);
				});
				proc.on('error', (e) => {
					exitInfo = { code: null, signal: null, error: e };
					inst._logs += `spawn error: ${e.message}\n`;
					live.delete(inst);
					resolve(exitInfo);
				});
			});
			inst.proc = proc;
			inst.port = port;
			live.add(inst);
			// Wait for /healthz, or for the process to die.
			let ok = false;
			for (let i = 0; i < 200 && !exitInfo; i++) {
				if (await healthy(port, proto)) { ok = true; break; }
				if (exitInfo) break;
				await pace(Math.min(10 + i * 5, 100));
			}
			if (ok) return;
			const newLogs = inst._logs.slice(startLen);
			if (!exitInfo) {
				proc.kill('SIGKILL');
				await inst.exited;
				lastErr = new Error(`chatd did not answer /healthz on port ${port}; stderr:\n${newLogs}`);
				break;
			}
			lastErr = new Error(`chatd exited (${JSON.stringify(exitInfo.code ?? exitInfo.signal)}) before becoming healthy on port ${port}; stderr:\n${newLogs}`);
			if (exitInfo.error) break;
			if (!portBusy(newLogs)) break;
			if (samePort) await pace(150);
		}
		throw lastErr;
	}

	await launch();

	const srv = {
		get port() { return inst.port; },
		get url() { return `${proto}://127.0.0.1:${inst.port}`; },
		get wsUrl() { return `${proto === 'https' ? 'wss' : 'ws'}://127.0.0.1:${inst.port}/ws`; },
		get proc() { return inst.proc; },
		dbPath: inst.dbPath,
		filesDir: schema ? pgFiles : `${inst.dbPath}.files`,
		dbArgs: schema ? ['--db', inst.dbPath, '--files', pgFiles] : ['--db', inst.dbPath],
		dir,
		webDir: inst.webDir,
		/** SIGTERM and wait for exit; returns the exit code (null if killed by a signal). */
		async stop(timeoutMs = 10000) {
			if (!live.has(inst)) return (await inst.exited)?.code ?? null;
			inst.proc.kill('SIGTERM');
			let info;
			try {
				info = await withTimeout(inst.exited, timeoutMs, 'chatd exit after SIGTERM');
			} catch (e) {
				inst.proc.kill('SIGKILL');
				await inst.exited;
				throw e;
			}
			return info.code;
		},
		/** SIGKILL and wait. */
		async kill() {
			if (live.has(inst)) inst.proc.kill('SIGKILL');
			const info = await inst.exited;
			return info.code;
		},
		/** Starts again on the same db and port (stops first if running). */
		async restart(extraOpts = {}) {
			if (live.has(inst)) await srv.stop();
			await launch(extraOpts, true);
			return srv;
		},
		/** stderr text so far (all runs). */
		logs() { return inst._logs; },
		stdout() { return inst._stdout; },
		/** Whether the process is running. */
		running() { return live.has(inst); },
		/** Exit info promise of the current process: {code, signal}. */
		exited() { return inst.exited; },
		/** Stops (SIGTERM, then SIGKILL if needed) and removes the temp dir. */
		async cleanup() {
			try {
				if (live.has(inst)) await srv.stop(5000);
			} catch { /* killed */ }
			try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
			dirs.delete(dir);
			if (schema) {
				try { pgExec(`SET client_min_messages = warning; DROP SCHEMA ${schema.name} CASCADE`); } catch { /* ignore */ }
				schemas.delete(schema.name);
			}
		},
	};
	return srv;
}

/**
 * Registers srv.cleanup() to run after the test t (a node:test context), or,
 * without t, after the current suite/file (node:test `after`).
 */
export function cleanupAfter(srv, t) {
	if (t && typeof t.after === 'function') t.after(() => srv.cleanup());
	else after(() => srv.cleanup());
	return srv;
}

/** startChatd plus cleanupAfter: the usual way to get a server in a test. */
export async function useChatd(t, opts = {}) {
	const srv = await startChatd(opts);
	return cleanupAfter(srv, t);
}

/** The resident set size of a running chatd in KiB (VmRSS in
 * /proc/<pid>/status; Linux). */
export function rssKiB(srv) {
	const status = fs.readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8');
	const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
	if (!m) throw new Error(`no VmRSS for chatd pid ${srv.proc.pid}`);
	return Number(m[1]);
}

/** A fresh temp dir removed after test t (or at process exit). */
export function tempDir(t, prefix = 'chatd-it-') {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	dirs.add(d);
	const rm = () => { fs.rmSync(d, { recursive: true, force: true }); dirs.delete(d); };
	if (t && typeof t.after === 'function') t.after(rm);
	return d;
}

// ---------------------------------------------------------------- HTTP

/**
 * One HTTP request on a fresh connection.
 * base: 'http://127.0.0.1:PORT' (or a srv object). body: an object/array/
 * value is sent as JSON; raw: a string or Buffer sent as-is.
 * Resolves to { status, headers, json, text }.
 */
export function api(base, method, p, { token, body, headers = {}, raw, timeout = WAIT_MS * 2 } = {}) {
	if (typeof base === 'object' && base.url) base = base.url;
	const u = new URL(p, base);
	const mod = u.protocol === 'https:' ? https : http;
	const h = { ...headers };
	let data;
	if (raw !== undefined) {
		data = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw));
	} else if (body !== undefined) {
		data = Buffer.from(JSON.stringify(body));
		if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
	}
	if (data !== undefined && !Object.keys(h).some((k) => /^(content-length|transfer-encoding)$/i.test(k))) {
		h['Content-Length'] = String(data.length);
	}
	if (token) h.Authorization = `Bearer ${token}`;
	return new Promise((resolve, reject) => {
		const req = mod.request({
			host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h,
			agent: false, rejectUnauthorized: false,
		}, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				let json;
				try { json = text.length ? JSON.parse(text) : undefined; } catch { json = undefined; }
				resolve({ status: res.statusCode, headers: res.headers, json, text });
			});
			res.on('error', reject);
		});
		req.setTimeout(timeout, () => req.destroy(new Error(`HTTP ${method} ${p}: no answer in ${timeout} ms`)));
		req.on('error', reject);
		if (data !== undefined) req.write(data);
		req.end();
	});
}

/** Registers a user; resolves to the {id, username} object; throws unless 201. */
export async function register(base, name, pw) {
	const r = await api(base, 'POST', '/api/register', { body: { username: name, password: pw } });
	if (r.status !== 201) throw new Error(`register ${name}: ${r.status} ${r.text}`);
	return r.json.user;
}

/** Logs in; resolves to the token; throws unless 200. */
export async function login(base, name, pw) {
	const r = await api(base, 'POST', '/api/login', { body: { username: name, password: pw } });
	if (r.status !== 200) throw new Error(`login ${name}: ${r.status} ${r.text}`);
	return r.json.token;
}

/** Registers a new random user and logs in: { name, pw, id, token }. */
export async function newUser(base, prefix = 'u') {
	const name = uniq(prefix);
	const pw = `pw-${rand(12)}`;
	const user = await register(base, name, pw);
	const token = await login(base, name, pw);
	return { name, pw, id: user.id, token };
}

// ---------------------------------------------------------------- WebSocket

let refCounter = 0;
/** A unique ref. */
export function nextRef(prefix = 'r') {
	return `${prefix}${++refCounter}-${rand(4)}`;
}

function describe(ev) {
	const s = JSON.stringify(ev);
	return s.length > 200 ? s.slice(0, 200) + '…' : s;
}

/**
 * A WebSocket client that buffers incoming JSON events in arrival order.
 * - send(obj)            JSON-encodes objects; strings/Buffers go as-is
 * - next(pred|type, ms)  the next buffered-or-future event matching (removed
 *                        from the buffer; others stay, in order)
 * - request(obj, ms)     sends obj with a fresh ref, resolves to the reply
 *                        (any event carrying that ref, including errors)
 * - fence(ms)            a request/reply fence: resolves to (and removes) the
 *                        events that arrived before the fence's reply
 * - none(pred, what)     fence, then asserts no such event arrived
 * - close(code, reason)  closes and waits; closed: promise of {code, reason}
 */
export class Client {
	constructor(ws) {
		this.ws = ws;
		this.buffer = [];
		this.all = [];
		this.waiters = [];
		this.closeCode = null;
		this.closeReason = null;
		this.isClosed = false;
		this.closed = new Promise((resolve) => {
			ws.on('close', (code, reason) => {
				this.closeCode = code;
				this.closeReason = reason.toString();
				this.isClosed = true;
				for (const w of this.waiters.splice(0)) w.onClose();
				resolve({ code, reason: this.closeReason });
			});
		});
		ws.on('error', () => { /* surfaced through close */ });
		ws.on('message', (data, isBinary) => {
			let ev;
			if (isBinary) ev = { type: '__binary', data };
			else {
				const s = data.toString('utf8');
				try { ev = JSON.parse(s); } catch { ev = { type: '__unparsable', text: s }; }
			}
			this.all.push(ev);
			for (let i = 0; i < this.waiters.length; i++) {
				if (this.waiters[i].pred(ev)) {
					const [w] = this.waiters.splice(i, 1);
					w.resolve(ev);
					return;
				}
			}
			this.buffer.push(ev);
		});
	}

	send(obj) {
		const data = (typeof obj === 'string' || Buffer.isBuffer(obj)) ? obj : JSON.stringify(obj);
		this.ws.send(data);
	}

	/** Sends raw bytes as a binary frame. */
	sendBinary(buf) {
		this.ws.send(buf, { binary: true });
	}

	next(what, ms = WAIT_MS) {
		const pred = typeof what === 'function' ? what
			: typeof what === 'string' ? (e) => e.type === what
			: (e) => Object.entries(what).every(([k, v]) => e[k] === v);
		const label = typeof what === 'function' ? (what.label || what.toString()) : JSON.stringify(what);
		const i = this.buffer.findIndex(pred);
		if (i >= 0) return Promise.resolve(this.buffer.splice(i, 1)[0]);
		if (this.isClosed) {
			return Promise.reject(new Error(`next(${label}): connection closed (${this.closeCode} ${this.closeReason}); buffered: ${this.buffer.map(describe).join(', ')}`));
		}
		return new Promise((resolve, reject) => {
			const w = {
				pred,
				resolve: (ev) => { clearTimeout(w.timer); resolve(ev); },
				onClose: () => {
					clearTimeout(w.timer);
					reject(new Error(`next(${label}): connection closed (${this.closeCode} ${this.closeReason}); buffered: ${this.buffer.map(describe).join(', ')}`));
				},
			};
			w.timer = setTimeout(() => {
				const k = this.waiters.indexOf(w);
				if (k >= 0) this.waiters.splice(k, 1);
				reject(new Error(`next(${label}): nothing matching within ${ms} ms; buffered: ${this.buffer.map(describe).join(', ') || '(none)'}`));
			}, ms);
			this.waiters.push(w);
		});
	}

	/** Sends obj with a fresh ref; resolves to the direct reply (or error). */
	async request(obj, ms = WAIT_MS) {
		const ref = obj.ref ?? nextRef();
		const p = this.next((e) => e.ref === ref, ms);
		this.send({ ...obj, ref });
		return p;
	}

	/** Request/reply fence: resolves to the unconsumed events that arrived
	 * before the reply to a harmless request, removing them from the buffer. */
	async fence(ms = WAIT_MS) {
		const ref = nextRef('fence');
		const p = this.next((e) => e.ref === ref, ms);
		// history of a room that (almost certainly) does not exist: the
		// reply is an error or an empty history, either way carrying ref.
		this.send({ type: 'history', room: `fence-${rand(10)}`, limit: 1, ref });
		await p;
		return this.buffer.splice(0);
	}

	/** Fence, then throws if any event matching pred arrived before it. */
	async none(pred, what = 'unexpected event') {
		const p = typeof pred === 'string' ? (e) => e.type === pred : pred;
		const evs = await this.fence();
		const bad = evs.filter(p);
		if (bad.length) throw new Error(`${what}: got ${bad.map(describe).join(', ')}`);
		return evs;
	}

	/** Events currently buffered (not consumed). */
	pending() { return this.buffer.slice(); }

	/** Waits for the connection to close; resolves to {code, reason}. */
	waitClose(ms = WAIT_MS) {
		return withTimeout(this.closed, ms, 'WebSocket close');
	}

	async close(code = 1000, reason = '') {
		if (!this.isClosed) {
			try { this.ws.close(code, reason); } catch { this.ws.terminate(); }
		}
		try {
			return await this.waitClose();
		} catch {
			this.ws.terminate();
			return this.closed;
		}
	}

	terminate() { this.ws.terminate(); }
}

/**
 * Opens a WebSocket. opts: token (Authorization header), origin, headers,
 * deflate (ws's perMessageDeflate option: false by default, true or an
 * object such as { threshold: 0 } to offer compression).
 * Resolves to a Client once open; rejects with err.status set when the
 * server answers the upgrade with an HTTP status instead.
 */
export function wsConnect(wsUrl, { token, origin, headers = {}, ms = WAIT_MS, deflate = false } = {}) {
	if (typeof wsUrl === 'object' && wsUrl.wsUrl) wsUrl = wsUrl.wsUrl;
	const h = { ...headers };
	if (token) h.Authorization = `Bearer ${token}`;
	const wopts = { headers: h, rejectUnauthorized: false, handshakeTimeout: ms, maxPayload: 0, perMessageDeflate: deflate };
	if (origin !== undefined) wopts.origin = origin;
	const ws = new WebSocket(wsUrl, wopts);
	const client = new Client(ws);
	return new Promise((resolve, reject) => {
		ws.once('open', () => resolve(client));
		ws.once('unexpected-response', (req, res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const e = new Error(`upgrade refused: HTTP ${res.statusCode}`);
				e.status = res.statusCode;
				e.headers = res.headers;
				e.body = Buffer.concat(chunks).toString();
				reject(e);
				req.destroy();
			});
		});
		ws.once('error', (e) => reject(e));
	});
}

/** Connects and authenticates by header; resolves to a Client with .hello. */
export async function wsHeaderAuth(wsUrl, token, opts = {}) {
	const c = await wsConnect(wsUrl, { ...opts, token });
	c.hello = await c.next('hello');
	return c;
}

/** Connects and authenticates by first message (optionally with since);
 * resolves to a Client with .hello. */
export async function wsAuth(wsUrl, token, { since, ...opts } = {}) {
	const c = await wsConnect(wsUrl, opts);
	const msg = { type: 'auth', token };
	if (since !== undefined) msg.since = since;
	const reply = await c.request(msg);
	if (reply.type !== 'hello') throw new Error(`auth failed: ${describe(reply)}`);
	c.hello = reply;
	return c;
}

/** A WebSocket of user u on srv, authenticated, closed after test t. */
export async function openWs(t, srv, u, opts = {}) {
	const c = await wsAuth(srv.wsUrl, u.token, opts);
	t.after(() => c.close());
	return c;
}

/** n new users on srv, each with one connection (u.c), all in a fresh
 * room; every member has seen every join before it resolves. */
export async function usersInRoom(t, srv, n, prefix = 'r') {
	const room = uniq(prefix);
	const users = [];
	for (let i = 0; i < n; i++) {
		const u = await newUser(srv);
		u.c = await openWs(t, srv, u);
		await join(u.c, room);
		users.push(u);
	}
	for (const u of users) await u.c.fence();
	return { room, users };
}

/** Joins room; returns the joined reply (throws on error reply). */
export async function join(c, room) {
	const r = await c.request({ type: 'join', room });
	if (r.type !== 'joined') throw new Error(`join ${room}: ${describe(r)}`);
	return r;
}

/** Sends text to room; returns the message reply (throws on error reply). */
export async function send(c, room, text, extra = {}) {
	const r = await c.request({ type: 'send', room, text, ...extra });
	if (r.type !== 'message') throw new Error(`send to ${room}: ${describe(r)}`);
	return r;
}

// ---------------------------------------------------------------- raw TCP

/**
 * A raw TCP (or TLS) connection for malformed HTTP, pipelining, slow clients
 * and hand-built WebSocket frames.
 */
export class Raw {
	constructor(sock) {
		this.sock = sock;
		this.data = Buffer.alloc(0);
		this.endedFlag = false;
		this.waiters = [];
		this.ended = new Promise((resolve) => {
			const done = () => {
				if (this.endedFlag) return;
				this.endedFlag = true;
				this._wake();
				resolve();
			};
			sock.on('end', done);
			sock.on('close', done);
			sock.on('error', (e) => { this.error = e; done(); });
		});
		sock.on('data', (d) => { this.data = Buffer.concat([this.data, d]); this._wake(); });
	}

	_wake() { for (const w of this.waiters.splice(0)) w(); }

	write(bytes) {
		return new Promise((resolve) => {
			if (this.sock.destroyed) return resolve(false);
			this.sock.write(bytes, () => resolve(true));
		});
	}

	/** Waits until fn(this.data) returns a truthy value or the peer closes. */
	async waitFor(fn, ms = WAIT_MS, what = 'data') {
		const deadline = Date.now() + ms;
		for (;;) {
			const v = fn(this.data);
			if (v) return v;
			if (this.endedFlag) {
				throw new Error(`raw: connection closed while waiting for ${what}; got ${JSON.stringify(this.data.toString('latin1').slice(0, 300))}`);
			}
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`raw: timeout waiting for ${what}; got ${JSON.stringify(this.data.toString('latin1').slice(0, 300))}`);
			await new Promise((resolve) => {
				const t = setTimeout(resolve, left);
				this.waiters.push(() => { clearTimeout(t); resolve(); });
			});
		}
	}

	/** Waits for n complete HTTP responses; resolves to them (parsed). */
	async responses(n = 1, ms = WAIT_MS, { head = false } = {}) {
		return this.waitFor((buf) => {
			const { responses } = parseResponses(buf, { head, eof: this.endedFlag });
			return responses.length >= n ? responses.slice(0, n) : null;
		}, ms, `${n} HTTP response(s)`);
	}

	/** Waits for the peer to close; resolves to all bytes received. */
	async closedByPeer(ms = WAIT_MS) {
		await withTimeout(this.ended, ms, 'peer close');
		return this.data;
	}

	close() { this.sock.destroy(); }
}

/** Opens a raw TCP connection to 127.0.0.1:port (tls: true for TLS). */
export function rawConnect(port, { tls: useTls = false } = {}) {
	if (typeof port === 'object' && port.port) port = port.port;
	return new Promise((resolve, reject) => {
		const sock = useTls
			? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
			: net.connect({ host: '127.0.0.1', port });
		sock.once(useTls ? 'secureConnect' : 'connect', () => { sock.off('error', reject); resolve(new Raw(sock)); });
		sock.once('error', reject);
	});
}

/** Sends bytes on a fresh connection and waits for n responses. */
export async function rawRequest(port, bytes, { n = 1, ms = WAIT_MS } = {}) {
	const r = await rawConnect(port);
	try {
		await r.write(bytes);
		return await r.responses(n, ms);
	} finally {
		r.close();
	}
}

/**
 * Parses as many complete HTTP/1.x responses as buf holds.
 * Returns { responses: [{status, version, headers (lower-case), body, json}], rest }.
 * Bodies: Content-Length, chunked, or none for 1xx/204/304 (and HEAD);
 * otherwise up to EOF (only when eof is true).
 */
export function parseResponses(buf, { head = false, eof = false } = {}) {
	const responses = [];
	let off = 0;
	for (;;) {
		const end = buf.indexOf('\r\n\r\n', off);
		if (end < 0) break;
		const headText = buf.subarray(off, end).toString('latin1');
		const lines = headText.split('\r\n');
		const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
		if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
		const headers = {};
		for (const l of lines.slice(1)) {
			const i = l.indexOf(':');
			if (i < 0) continue;
			const k = l.slice(0, i).trim().toLowerCase();
			const v = l.slice(i + 1).trim();
			headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
		}
		const status = Number(m[2]);
		let p = end + 4;
		let body;
		if (head || status < 200 || status === 204 || status === 304) {
			body = Buffer.alloc(0);
		} else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
			const parts = [];
			let ok = false;
			for (;;) {
				const le = buf.indexOf('\r\n', p);
				if (le < 0) break;
				const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
				if (Number.isNaN(size)) throw new Error('bad chunk size');
				if (size === 0) {
					const te = buf.indexOf('\r\n\r\n', le);
					if (te < 0) break;
					p = te + 4;
					ok = true;
					break;
				}
				if (buf.length < le + 2 + size + 2) break;
				parts.push(buf.subarray(le + 2, le + 2 + size));
				p = le + 2 + size + 2;
			}
			if (!ok) break;
			body = Buffer.concat(parts);
		} else if (headers['content-length'] !== undefined) {
			const n = Number(headers['content-length']);
			if (buf.length < p + n) break;
			body = buf.subarray(p, p + n);
			p += n;
		} else {
			if (!eof) break;
			body = buf.subarray(p);
			p = buf.length;
		}
		let json;
		try { json = JSON.parse(body.toString('utf8')); } catch { json = undefined; }
		responses.push({ status, version: m[1], reason: m[3] || '', headers, body, text: body.toString('utf8'), json });
		off = p;
	}
	return { responses, rest: buf.subarray(off) };
}

// ---------------------------------------------------------------- raw WebSocket

/** Sec-WebSocket-Accept for a key (RFC 6455 4.2.2). */
export function wsAccept(key) {
	return createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}

/** Encodes a client frame. opts: fin (true), mask (true), rsv (0-7),
 * opcode, payload (Buffer|string), len (override the declared length). */
export function encodeFrame({ opcode = 1, payload = Buffer.alloc(0), fin = true, mask = true, rsv = 0 } = {}) {
	const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
	const len = data.length;
	let head;
	if (len < 126) {
		head = Buffer.alloc(2);
		head[1] = len;
	} else if (len < 65536) {
		head = Buffer.alloc(4);
		head[1] = 126;
		head.writeUInt16BE(len, 2);
	} else {
		head = Buffer.alloc(10);
		head[1] = 127;
		head.writeBigUInt64BE(BigInt(len), 2);
	}
	head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
	if (!mask) return Buffer.concat([head, data]);
	head[1] |= 0x80;
	const key = randomBytes(4);
	const masked = Buffer.alloc(len);
	for (let i = 0; i < len; i++) masked[i] = data[i] ^ key[i & 3];
	return Buffer.concat([head, key, masked]);
}

/** Parses one server frame at the start of buf: {fin, rsv, opcode, payload,
 * size, json} or null if incomplete. payload is as it came; a compressed
 * whole message (RSV1, permessage-deflate) has its inflated bytes in
 * .inflated and .json parsed from those. */
export function parseFrame(buf) {
	if (buf.length < 2) return null;
	const fin = !!(buf[0] & 0x80);
	const rsv = (buf[0] >> 4) & 7;
	const opcode = buf[0] & 0x0f;
	const masked = !!(buf[1] & 0x80);
	let len = buf[1] & 0x7f;
	let p = 2;
	if (len === 126) {
		if (buf.length < 4) return null;
		len = buf.readUInt16BE(2);
		p = 4;
	} else if (len === 127) {
		if (buf.length < 10) return null;
		len = Number(buf.readBigUInt64BE(2));
		p = 10;
	}
	let key;
	if (masked) {
		if (buf.length < p + 4) return null;
		key = buf.subarray(p, p + 4);
		p += 4;
	}
	if (buf.length < p + len) return null;
	let payload = Buffer.from(buf.subarray(p, p + len));
	if (masked) for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
	const f = { fin, rsv, opcode, masked, payload, size: p + len };
	if (opcode === 8) {
		f.code = len >= 2 ? payload.readUInt16BE(0) : 1005;
		f.reason = len > 2 ? payload.subarray(2).toString('utf8') : '';
	}
	const data = (rsv & 4) && fin ? inflateMessage(payload) : payload;
	if (rsv & 4) f.inflated = data;
	if (opcode === 1 && data) {
		try { f.json = JSON.parse(data.toString('utf8')); } catch { /* not JSON */ }
	}
	return f;
}

/** Inflates a permessage-deflate message (RFC 7692 7.2.2: the 00 00 ff ff
 * trailer put back); null if it is not valid deflate data. */
export function inflateMessage(payload) {
	try {
		return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]),
			{ finishFlush: zlib.constants.Z_SYNC_FLUSH });
	} catch {
		return null;
	}
}

/** Deflates a message as a permessage-deflate client sends it (sync flush,
 * the trailer taken off). */
export function deflateMessage(data) {
	const out = zlib.deflateRawSync(Buffer.from(data), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
	return out.subarray(0, out.length - 4);
}

/** A raw WebSocket connection: the handshake done by hand over Raw. */
export class RawWs {
	constructor(raw, response) {
		this.raw = raw;
		this.response = response;
		this.offset = 0; // bytes of raw.data consumed (head + frames)
	}

	sendFrame(opts) { return this.raw.write(encodeFrame(opts)); }
	sendText(obj) {
		const s = typeof obj === 'string' ? obj : JSON.stringify(obj);
		return this.sendFrame({ opcode: 1, payload: Buffer.from(s) });
	}
	write(bytes) { return this.raw.write(bytes); }

	/** The next frame from the server (any opcode). */
	async frame(ms = WAIT_MS) {
		const f = await this.raw.waitFor((buf) => parseFrame(buf.subarray(this.offset)), ms, 'a WebSocket frame');
		this.offset += f.size;
		return f;
	}

	/** The next frame matching pred (skipping others). */
	async frameWhere(pred, ms = WAIT_MS) {
		const deadline = Date.now() + ms;
		for (;;) {
			const f = await this.frame(Math.max(1, deadline - Date.now()));
			if (pred(f)) return f;
		}
	}

	/** The next text frame's JSON matching pred (type string or function). */
	async event(what, ms = WAIT_MS) {
		const pred = typeof what === 'string' ? (e) => e && e.type === what : what;
		return (await this.frameWhere((f) => f.opcode === 1 && pred(f.json), ms)).json;
	}

	/** Waits for a close frame; resolves to it ({code, reason}). Skips data frames. */
	async closeFrame(ms = WAIT_MS) {
		return this.frameWhere((f) => f.opcode === 8, ms);
	}

	close() { this.raw.close(); }
}

/**
 * Opens a raw TCP connection and performs the WebSocket handshake by hand.
 * opts: token, origin, headers (object, merged over the defaults; a value of
 * null drops a default header), path ('/ws'), host, key.
 * Resolves to { ws: RawWs|null, response, raw, key }: ws is null unless 101.
 */
export async function rawWsConnect(port, { token, origin, headers = {}, path: p = '/ws', key, host, tls: useTls = false, ms = WAIT_MS } = {}) {
	if (typeof port === 'object' && port.port) port = port.port;
	const raw = await rawConnect(port, { tls: useTls });
	key = key ?? randomBytes(16).toString('base64');
	const h = {
		Host: host ?? `127.0.0.1:${port}`,
		Upgrade: 'websocket',
		Connection: 'Upgrade',
		'Sec-WebSocket-Key': key,
		'Sec-WebSocket-Version': '13',
	};
	if (origin !== undefined) h.Origin = origin;
	if (token) h.Authorization = `Bearer ${token}`;
	for (const [k, v] of Object.entries(headers)) {
		const existing = Object.keys(h).find((x) => x.toLowerCase() === k.toLowerCase());
		if (existing) delete h[existing];
		if (v !== null) h[k] = v;
	}
	let req = `GET ${p} HTTP/1.1\r\n`;
	for (const [k, v] of Object.entries(h)) req += `${k}: ${v}\r\n`;
	req += '\r\n';
	await raw.write(req);
	// The head of the response; for 101 nothing else is part of it.
	const headEnd = await raw.waitFor((buf) => {
		const i = buf.indexOf('\r\n\r\n');
		return i >= 0 ? i + 4 : null;
	}, ms, 'upgrade response');
	const headText = raw.data.subarray(0, headEnd).toString('latin1');
	const lines = headText.split('\r\n');
	const status = Number(lines[0].split(' ')[1]);
	const rh = {};
	for (const l of lines.slice(1)) {
		const i = l.indexOf(':');
		if (i > 0) rh[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
	}
	const response = { status, headers: rh, statusLine: lines[0] };
	if (status !== 101) {
		// Read the whole error response (body) if possible.
		try {
			const [full] = await raw.responses(1, ms);
			Object.assign(response, { body: full.body, text: full.text, json: full.json });
		} catch { /* no body / closed */ }
		return { ws: null, response, raw, key };
	}
	const ws = new RawWs(raw, response);
	ws.offset = headEnd;
	return { ws, response, raw, key };
}

// ---------------------------------------------------------------- assertions

/** Checks an HTTP JSON error body: {"error":{"code","message"}} with code. */
export function isErrorBody(json, code) {
	return !!json && typeof json === 'object' && json.error && typeof json.error === 'object'
		&& typeof json.error.code === 'string' && typeof json.error.message === 'string'
		&& (code === undefined || json.error.code === code);
}
