// tests/bench/soak.mjs — the soak driver (issue 13), run by scripts/soak.sh: a load
// generator beside chatbench (it paces traffic with timers on purpose), not a test.
//
// Drives a running chatd for MINUTES minutes with a bounded, loopback-only
// mix of traffic and prints one line per minute: chatd's VmRSS and open fds
// (from /proc/PID), its connections (/metrics), messages sent and delivered,
// send→delivery latency, history / paging / search latency, and what went
// wrong. At the end it closes every client, waits for chatd to let go of
// their fds, prints a summary and exits 0 (flat), 1 (RSS grew past the
// bound, fds leaked, or protocol errors) or 2 (chatd died).
//
//   node tests/bench/soak.mjs --print-users
//   node tests/bench/soak.mjs --port P --pid PID --db DB --bin CHATD \
//        --dir TMPDIR --minutes N --password PW
//
// The traffic (counts fixed, so a run's load does not depend on its length):
//   steady      50 clients in 10 rooms, each sends every ~2 s (typing first
//               now and then), marks read, asks history (limit 50); every
//               other member measures send→delivery latency from the
//               send time carried in the text
//   reconnect   10 clients that stay 2–6 s, then close (cleanly or by
//               dropping TCP) and come back with auth + since
//   slow        up to 3 at once: auth, join, pause the TCP socket, send
//               history (limit 100, ~35 KB a page) 8 times a second for
//               20–60 s, then vanish (TCP reset); chatd stops reading them
//               above 256 KiB of output and drops them over 8 MiB (when
//               room events or pings keep coming), which is counted, not
//               an error
//   search      3 loops of GET /api/search
//   paging      2 loops walking GET /api/rooms/{room}/messages backwards
//   login       2 loops: login, /api/me, WebSocket, logout → expect 4001
//   admin       once a minute: chatd user list, room list, backup (then
//               delete the copy) against the live database
//
// Rate limits are left on (chatd's default) and every loop stays under
// them, so any rate_limited answer is counted as an error.

import WebSocket from 'ws';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';

// ---------------------------------------------------------------- settings

const N_STEADY = 50;
const N_ROOMS = 10;
const N_RECONNECT = 10;
const N_SLOW_USERS = 4;
const SLOW_MAX = 3;             // slow readers alive at once
const SLOW_EVERY_MS = 10000;    // a new slow reader at most this often
const N_SEARCH = 3;
const N_PAGER = 2;
const N_LOGIN = 2;
const SEND_EVERY_MS = 2000;     // per steady client, jittered ±25 %
const WAIT_MS = 10000;          // bound on any single reply
const VOCAB = ['apple', 'banana', 'cherry', 'delta', 'echo', 'foxtrot',
	'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mango', 'nectar'];

// RSS may grow by at most this much from the end of warm-up to the last
// minute (KiB): up to 3 slow readers × 4 MiB of output chatd holds before
// dropping one is legitimate, and glibc keeps freed heap, so RSS settles
// at a high-water mark that a sample may or may not catch; a leak keeps
// climbing past it. fds after the drain may exceed the idle count by this.
const RSS_GROWTH_MAX_KB = Number(process.env.SOAK_RSS_GROWTH_KB || 16384);
const FD_SLACK = Number(process.env.SOAK_FD_SLACK || 2);

const users = {
	steady: range(N_STEADY).map((i) => `soak-s${i}`),
	reconnect: range(N_RECONNECT).map((i) => `soak-c${i}`),
	slow: range(N_SLOW_USERS).map((i) => `soak-w${i}`),
	search: range(N_SEARCH).map((i) => `soak-q${i}`),
	pager: range(N_PAGER).map((i) => `soak-p${i}`),
	login: range(N_LOGIN).map((i) => `soak-l${i}`),
};
const roomName = (i) => `soak-r${i % N_ROOMS}`;

function range(n) {
	return Array.from({ length: n }, (_, i) => i);
}

/** Reads --name value pairs from argv. */
function parseArgs(argv) {
	const o = {};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
		const k = a.slice(2);
		if (k === 'print-users') o[k] = true;
		else o[k] = argv[++i];
	}
	return o;
}

const opt = parseArgs(process.argv.slice(2));
if (opt['print-users']) {
	for (const list of Object.values(users)) for (const u of list) console.log(u);
	process.exit(0);
}
for (const k of ['port', 'pid', 'db', 'bin', 'dir', 'minutes', 'password']) {
	if (!opt[k]) {
		console.error(`soak.mjs: --${k} is required`);
		process.exit(64);
	}
}
const PORT = Number(opt.port);
const PID = Number(opt.pid);
const MINUTES = Number(opt.minutes);
const MINUTE_MS = Number(process.env.SOAK_MINUTE_MS || 60000);
const WARMUP = MINUTES >= 10 ? 3 : 1; // minutes not held against RSS growth
const BASE = `http://127.0.0.1:${PORT}`;
const WS_URL = `ws://127.0.0.1:${PORT}/ws`;

// ---------------------------------------------------------------- stats

let stopping = false;
let chatdDead = false;
const tokens = new Map();    // username → token
const sockets = new Set();   // every open driver WebSocket
let loginsInFlight = 0;
let orderErrors = 0;         // a seq at or below one already seen
let totals = { sent: 0, delivered: 0, errors: 0, dropped: 0, reconnects: 0 };

/** The per-minute counters. */
function freshMinute() {
	return {
		sent: 0, delivered: 0, deliveryMs: [], historyMs: [], pageMs: [],
		searchMs: [], errors: new Map(), reconnects: 0, replayed: 0,
		logins: 0, logouts: 0, slowStarted: 0, slowDropped: 0,
		slowVanished: 0, admin: [],
	};
}
let cur = freshMinute();

/** Counts an error of a kind (shown in the minute's line). */
function err(kind) {
	cur.errors.set(kind, (cur.errors.get(kind) || 0) + 1);
}

/** The q-quantile of a numeric array (nearest rank); null when empty. */
function quantile(xs, q) {
	if (!xs.length) return null;
	const s = Float64Array.from(xs).sort();
	return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

function ms(v) {
	return v === null ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1);
}

const sleep = (t) => new Promise((r) => setTimeout(r, t));
const jitter = (t) => t * (0.75 + Math.random() * 0.5);
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

/** Sleeps up to t ms, waking early when the run stops. */
async function nap(t) {
	const end = Date.now() + t;
	while (!stopping && Date.now() < end) await sleep(Math.min(250, end - Date.now()));
}

// ---------------------------------------------------------------- HTTP

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One request; resolves to {status, json, headers}; rejects on a network
 * error or after WAIT_MS. */
function request(method, p, { token, body, agent = false } = {}) {
	return new Promise((resolve, reject) => {
		const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
		const headers = {};
		if (data) {
			headers['Content-Type'] = 'application/json';
			headers['Content-Length'] = String(data.length);
		}
		if (token) headers.Authorization = `Bearer ${token}`;
		const req = http.request({ host: '127.0.0.1', port: PORT, path: p, method, headers, agent }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				let json;
				try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
				resolve({ status: res.statusCode, json, text, headers: res.headers });
			});
			res.on('error', reject);
		});
		req.setTimeout(WAIT_MS, () => req.destroy(new Error(`${method} ${p}: no answer in ${WAIT_MS} ms`)));
		req.on('error', reject);
		if (data) req.write(data);
		req.end();
	});
}

/** Logs name in, retrying a 503 busy or 429 after Retry-After; the token. */
async function login(name) {
	for (let attempt = 0; attempt < 20; attempt++) {
		loginsInFlight++;
		let r;
		try {
			r = await request('POST', '/api/login', { body: { username: name, password: opt.password } });
		} finally {
			loginsInFlight--;
		}
		if (r.status === 200) return r.json.token;
		if (r.status !== 503 && r.status !== 429) throw new Error(`login ${name}: ${r.status} ${r.text}`);
		err(`login_${r.status}`);
		await sleep(1000 * Number(r.headers['retry-after'] || 1));
	}
	throw new Error(`login ${name}: still refused after 20 attempts`);
}

/** Server-side open connections (all states) from /metrics, or null. */
async function serverConnections() {
	try {
		const r = await request('GET', '/metrics');
		let n = 0;
		for (const m of r.text.matchAll(/^chatd_connections\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
		return n - 1; // not counting this request's own connection
	} catch {
		return null;
	}
}

// ---------------------------------------------------------------- WebSocket

/**
 * A driver WebSocket: JSON in and out, replies matched by ref, every
 * stored event checked for seq order. onEvent sees events without a ref.
 */
class Sock {
	constructor(label) {
		this.label = label;
		this.pending = new Map(); // ref → {resolve, reject, timer}
		this.lastSeq = new Map(); // room → highest seq seen here
		this.refN = 0;
		this.onEvent = null;
		this.closed = false;
		this.closeCode = null;
	}

	/** Opens and authenticates (message form, optional since); the hello. */
	async open(token, since) {
		const ws = new WebSocket(WS_URL, { perMessageDeflate: false, handshakeTimeout: WAIT_MS });
		this.ws = ws;
		this.closedP = new Promise((resolve) => {
			ws.on('close', (code) => {
				this.closed = true;
				this.closeCode = code;
				sockets.delete(this);
				for (const p of this.pending.values()) {
					clearTimeout(p.timer);
					p.reject(new Error(`${this.label}: closed (${code})`));
				}
				this.pending.clear();
				resolve(code);
			});
		});
		ws.on('error', () => { /* seen as close */ });
		ws.on('message', (data) => this.receive(data));
		await new Promise((resolve, reject) => {
			ws.once('open', resolve);
			ws.once('error', reject);
			ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade: HTTP ${res.statusCode}`)));
		});
		sockets.add(this);
		const msg = { type: 'auth', token };
		if (since) msg.since = since;
		const hello = await this.request(msg);
		if (hello.type !== 'hello') throw new Error(`${this.label}: auth: ${JSON.stringify(hello)}`);
		return hello;
	}

	receive(data) {
		let ev;
		try { ev = JSON.parse(data.toString('utf8')); } catch { err('unparsable'); return; }
		if (ev.seq !== undefined && ev.room && /^(message|edited|deleted)$/.test(ev.type)) {
			const last = this.lastSeq.get(ev.room) || 0;
			if (ev.seq <= last) orderErrors++;
			else this.lastSeq.set(ev.room, ev.seq);
		}
		if (ev.type === 'error' && ev.code === 'rate_limited') err('rate_limited');
		if (ev.ref !== undefined && this.pending.has(ev.ref)) {
			const p = this.pending.get(ev.ref);
			this.pending.delete(ev.ref);
			clearTimeout(p.timer);
			p.resolve(ev);
			return;
		}
		if (this.onEvent) this.onEvent(ev);
	}

	/** Sends obj with a fresh ref; resolves to its reply. */
	request(obj) {
		const ref = `${this.label}.${++this.refN}`;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.pending.delete(ref);
				reject(new Error(`${this.label}: no reply to ${obj.type} in ${WAIT_MS} ms`));
			}, WAIT_MS);
			this.pending.set(ref, { resolve, reject, timer });
			this.send({ ...obj, ref });
		});
	}

	/** Sends obj without waiting for anything. */
	send(obj) {
		if (!this.closed && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
	}

	/** Closes cleanly, or drops TCP after 3 s. */
	async close() {
		if (this.closed) return;
		try { this.ws.close(1000); } catch { this.ws.terminate(); }
		const t = setTimeout(() => this.ws.terminate(), 3000);
		await this.closedP;
		clearTimeout(t);
	}

	terminate() {
		this.ws.terminate();
		return this.closedP;
	}
}

/** Joins room on s; throws unless joined. */
async function join(s, room) {
	const r = await s.request({ type: 'join', room });
	if (r.type !== 'joined') throw new Error(`${s.label}: join ${room}: ${JSON.stringify(r)}`);
}

/** A message text carrying its send time, then ~200 bytes of search words
 * (so a history page of 100 is ~35 KB and a slow reader fills up fast). */
function soakText(label, n) {
	const words = range(30).map(() => pick(VOCAB)).join(' ');
	return `soak ${label} n${n} t=${performance.now().toFixed(3)} ${words}`;
}

/** Records the delivery latency of a soak message event. */
function delivered(ev) {
	const m = / t=([\d.]+) /.exec(ev.text || '');
	if (!m) return;
	cur.delivered++;
	cur.deliveryMs.push(performance.now() - Number(m[1]));
}

// ---------------------------------------------------------------- steady

/** One steady client: sends every ~2 s, reads, types, asks history. */
async function steady(i) {
	const name = users.steady[i];
	const room = roomName(i);
	let s = null;
	let n = 0;
	while (!stopping) {
		try {
			if (!s || s.closed) {
				if (s) err('steady_closed');
				const since = s ? { [room]: s.lastSeq.get(room) || 0 } : undefined;
				const prev = s;
				s = new Sock(name);
				if (prev) for (const [k, v] of prev.lastSeq) s.lastSeq.set(k, v);
				s.onEvent = (ev) => {
					if (ev.type === 'message' && ev.room === room) delivered(ev);
				};
				await s.open(tokens.get(name), since);
				if (!prev) await join(s, room);
			}
			await nap(jitter(SEND_EVERY_MS));
			if (stopping) break;
			if (Math.random() < 0.2) s.send({ type: 'typing', room });
			const r = await s.request({ type: 'send', room, text: soakText(name, ++n) });
			if (r.type === 'message') cur.sent++;
			else err(`send_${r.code}`);
			if (n % 5 === 0) {
				const rr = await s.request({ type: 'read', room, seq: s.lastSeq.get(room) || 0 });
				if (rr.type !== 'read') err(`read_${rr.code}`);
			}
			if (n % 3 === 0) {
				const t0 = performance.now();
				const h = await s.request({ type: 'history', room, limit: 50 });
				if (h.type === 'history') cur.historyMs.push(performance.now() - t0);
				else err(`history_${h.code}`);
			}
		} catch (e) {
			if (stopping) break;
			err('steady');
			if (process.env.SOAK_VERBOSE) console.error(e.message);
			await nap(1000);
		}
	}
	if (s) await s.close();
}

// ---------------------------------------------------------------- reconnect

/** A client that keeps going away and coming back with since. */
async function reconnecting(i) {
	const name = users.reconnect[i];
	const room = roomName(i);
	let last = null; // room → seq from the previous connection
	while (!stopping) {
		const s = new Sock(name);
		try {
			if (last) for (const [k, v] of last) s.lastSeq.set(k, v);
			let live = false;
			s.onEvent = (ev) => {
				if (ev.type === 'truncated') err('truncated');
				if (ev.type === 'message' && ev.room === room) {
					if (live) delivered(ev);
					else cur.replayed++;
				}
			};
			const since = last ? { [room]: last.get(room) || 0 } : undefined;
			await s.open(tokens.get(name), since);
			if (last) cur.reconnects++;
			else await join(s, room);
			// everything before this reply is the replay
			await s.request({ type: 'history', room, limit: 1 });
			live = true;
			await nap(2000 + Math.random() * 4000);
			last = s.lastSeq;
			if (Math.random() < 0.5) await s.close();
			else await s.terminate();
		} catch (e) {
			if (stopping) break;
			err('reconnect');
			if (process.env.SOAK_VERBOSE) console.error(e.message);
			if (!s.closed && s.ws) await s.terminate();
			await nap(1000);
		}
	}
}

// ---------------------------------------------------------------- slow readers

let slowAlive = 0;

/** Starts a slow reader every SLOW_EVERY_MS while fewer than SLOW_MAX live. */
async function slowSpawner() {
	let k = 0;
	while (!stopping) {
		if (slowAlive < SLOW_MAX) {
			slowAlive++;
			slowReader(k++).finally(() => { slowAlive--; });
		}
		await nap(SLOW_EVERY_MS);
	}
}

/** Never reads: asks for big pages until dropped or until it vanishes. */
async function slowReader(k) {
	const name = users.slow[k % users.slow.length];
	const room = roomName(k);
	const s = new Sock(`${name}.${k}`);
	let paused = false;
	try {
		await s.open(tokens.get(name));
		await join(s, room);
		cur.slowStarted++;
		s.ws._socket.pause(); // from here on nothing is read
		paused = true;
		const until = Date.now() + 20000 + Math.random() * 40000;
		while (!stopping && !s.closed && Date.now() < until) {
			s.send({ type: 'history', room, limit: 100, ref: `${s.label}.h` });
			await sleep(125);
		}
		if (s.closed) cur.slowDropped++;
		else {
			cur.slowVanished++;
			await s.terminate(); // TCP reset with unread data behind it
		}
	} catch (e) {
		if (stopping) return;
		if (s.closed && paused) cur.slowDropped++;
		else err('slow');
		if (process.env.SOAK_VERBOSE) console.error(e.message);
		if (s.ws && !s.closed) await s.terminate();
	}
}

// ---------------------------------------------------------------- HTTP loops

/** GET /api/search over and over (searcher 0 on one keep-alive connection). */
async function searcher(i) {
	const token = tokens.get(users.search[i]);
	const agent = i === 0 ? keepAlive : false;
	while (!stopping) {
		const q = Math.random() < 0.5 ? pick(VOCAB) : `${pick(VOCAB)} ${pick(VOCAB)}`;
		const scope = Math.random() < 0.5 ? `&room=${roomName(Math.floor(Math.random() * N_ROOMS))}` : '';
		const t0 = performance.now();
		try {
			const r = await request('GET', `/api/search?q=${encodeURIComponent(q)}&limit=20${scope}`, { token, agent });
			if (r.status === 200) cur.searchMs.push(performance.now() - t0);
			else err(`search_${r.status}`);
		} catch {
			if (!stopping) err('search');
		}
		await nap(200 + Math.random() * 300);
	}
}

/** Walks rooms' history backwards, 100 at a time, over HTTP. */
async function pager(i) {
	const token = tokens.get(users.pager[i]);
	let room = i;
	while (!stopping) {
		let before = null;
		for (let page = 0; page < 20 && !stopping; page++) {
			const q = before === null ? '' : `&before=${before}`;
			const t0 = performance.now();
			try {
				const r = await request('GET', `/api/rooms/${roomName(room)}/messages?limit=100${q}`, { token });
				if (r.status !== 200) { err(`page_${r.status}`); break; }
				cur.pageMs.push(performance.now() - t0);
				const msgs = r.json.messages;
				if (!r.json.has_more || !msgs.length) break;
				before = msgs[0].id;
			} catch {
				if (!stopping) err('page');
				break;
			}
			await nap(150);
		}
		room++;
	}
}

/** Logs in, looks, opens a WebSocket, logs out: expects close 4001. */
async function loginLoop(i) {
	const name = users.login[i];
	await nap(i * 2500);
	while (!stopping) {
		let s = null;
		try {
			const token = await login(name);
			cur.logins++;
			const me = await request('GET', '/api/me', { token });
			if (me.status !== 200) err(`me_${me.status}`);
			s = new Sock(`${name}.l`);
			await s.open(token);
			const out = await request('POST', '/api/logout', { token });
			if (out.status !== 204) err(`logout_${out.status}`);
			else cur.logouts++;
			const t = setTimeout(() => s.ws.terminate(), WAIT_MS);
			const code = await s.closedP;
			clearTimeout(t);
			if (code !== 4001) err(`logout_close_${code}`);
		} catch (e) {
			if (stopping) break;
			err('login');
			if (process.env.SOAK_VERBOSE) console.error(e.message);
			if (s && s.ws && !s.closed) await s.terminate();
		}
		await nap(jitter(5000));
	}
}

// ---------------------------------------------------------------- admin

/** Runs chatd ARGS... against the live database; {ok, ms, out}. */
function admin(args) {
	const t0 = performance.now();
	return new Promise((resolve) => {
		execFile(opt.bin, ['--db', opt.db, '--log-level', 'warn', ...args], { timeout: 60000 }, (e, out, errOut) => {
			resolve({ ok: !e, ms: performance.now() - t0, out, errOut, what: args[0] + (args[1] && !args[1].includes('/') ? ' ' + args[1] : '') });
		});
	});
}

/** The minute's admin commands: user list, room list, backup + delete. */
async function adminRound(minute) {
	const copy = path.join(opt.dir, `backup-${minute}.db`);
	const results = [];
	for (const args of [['user', 'list'], ['room', 'list'], ['backup', copy]]) {
		const r = await admin(args);
		results.push(r);
		if (!r.ok) {
			err(`admin_${r.what.replace(' ', '_')}`);
			console.error(`soak: chatd ${args.join(' ')} failed: ${r.errOut.trim().split('\n').pop()}`);
		}
	}
	const u = results[0];
	if (u.ok && u.out.split('\n').filter((l) => l.includes('soak-')).length < Object.values(users).flat().length) {
		err('admin_user_list_short');
	}
	for (const f of [copy, `${copy}-wal`, `${copy}-shm`]) fs.rmSync(f, { force: true });
	return results;
}

// ---------------------------------------------------------------- sampling

/** chatd's VmRSS (KiB) and open fds, or null when it is gone. */
function sample() {
	try {
		const status = fs.readFileSync(`/proc/${PID}/status`, 'utf8');
		const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)[1]);
		const fds = fs.readdirSync(`/proc/${PID}/fd`).length;
		return { rss, fds };
	} catch {
		return null;
	}
}

/** A sample taken while no login is hashing (a hash holds 19 MiB briefly). */
async function quietSample() {
	for (let i = 0; i < 40 && loginsInFlight > 0; i++) await sleep(50);
	return sample();
}

const rows = [];

function header() {
	console.log('min  rss_kb  fds conns  sent deliv  lat_p50 lat_p99 lat_max  hist_p50/p99 page_p50/p99 srch_p50/p99  rec  slow(start/drop/gone)  login/out  admin_ms  errors');
}

/** Prints and records the line of minute m. */
function report(m, smp, conns, adminRes) {
	const c = cur;
	cur = freshMinute();
	totals.sent += c.sent;
	totals.delivered += c.delivered;
	totals.dropped += c.slowDropped;
	totals.reconnects += c.reconnects;
	const nErr = [...c.errors.values()].reduce((a, b) => a + b, 0);
	totals.errors += nErr;
	const row = {
		minute: m, rss_kb: smp.rss, fds: smp.fds, conns, sent: c.sent, delivered: c.delivered,
		lat_p50: quantile(c.deliveryMs, 0.5), lat_p99: quantile(c.deliveryMs, 0.99),
		lat_max: c.deliveryMs.length ? Math.max(...c.deliveryMs) : null,
		hist_p50: quantile(c.historyMs, 0.5), hist_p99: quantile(c.historyMs, 0.99),
		page_p50: quantile(c.pageMs, 0.5), page_p99: quantile(c.pageMs, 0.99),
		search_p50: quantile(c.searchMs, 0.5), search_p99: quantile(c.searchMs, 0.99),
		reconnects: c.reconnects, replayed: c.replayed, slow_started: c.slowStarted,
		slow_dropped: c.slowDropped, slow_vanished: c.slowVanished,
		logins: c.logins, logouts: c.logouts, errors: Object.fromEntries(c.errors),
		admin_ms: adminRes ? adminRes.map((r) => Math.round(r.ms)) : null,
	};
	rows.push(row);
	const errs = nErr ? `${nErr} ${[...c.errors].map(([k, v]) => `${k}=${v}`).join(',')}` : '0';
	console.log([
		String(m).padStart(3), String(smp.rss).padStart(7), String(smp.fds).padStart(4),
		String(conns ?? '-').padStart(5), String(c.sent).padStart(5), String(c.delivered).padStart(5),
		ms(row.lat_p50).padStart(8), ms(row.lat_p99).padStart(7), ms(row.lat_max).padStart(7),
		`${ms(row.hist_p50)}/${ms(row.hist_p99)}`.padStart(13),
		`${ms(row.page_p50)}/${ms(row.page_p99)}`.padStart(12),
		`${ms(row.search_p50)}/${ms(row.search_p99)}`.padStart(12),
		String(c.reconnects).padStart(4),
		`${c.slowStarted}/${c.slowDropped}/${c.slowVanished}`.padStart(22),
		`${c.logins}/${c.logouts}`.padStart(10),
		(row.admin_ms ? row.admin_ms.join('+') : '-').padStart(9),
		` ${errs}`,
	].join(' '));
}

// ---------------------------------------------------------------- main

/** Least-squares slope of ys over xs (units of y per unit of x). */
function slope(xs, ys) {
	const n = xs.length;
	if (n < 2) return 0;
	const mx = xs.reduce((a, b) => a + b, 0) / n;
	const my = ys.reduce((a, b) => a + b, 0) / n;
	let num = 0, den = 0;
	for (let i = 0; i < n; i++) {
		num += (xs[i] - mx) * (ys[i] - my);
		den += (xs[i] - mx) ** 2;
	}
	return den ? num / den : 0;
}

async function main() {
	const base = sample();
	if (!base) throw new Error(`no chatd at pid ${PID}`);
	const baseConns = await serverConnections();
	console.log(`soak: chatd pid ${PID} port ${PORT}, ${MINUTES} min, warm-up ${WARMUP} min; idle: rss ${base.rss} KiB, ${base.fds} fds`);

	// tokens, 4 logins at a time (the hashing queue takes 8 per address)
	const names = Object.values(users).flat().filter((u) => !users.login.includes(u));
	for (let i = 0; i < names.length; i += 4) {
		await Promise.all(names.slice(i, i + 4).map(async (u) => tokens.set(u, await login(u))));
	}
	// searchers are members of every room, so a search without room= has
	// ten rooms to look through
	for (const u of users.search) {
		const s = new Sock(u);
		await s.open(tokens.get(u));
		for (let r = 0; r < N_ROOMS; r++) await join(s, roomName(r));
		await s.close();
	}
	cur = freshMinute();

	const loops = [
		...range(N_STEADY).map(steady),
		...range(N_RECONNECT).map(reconnecting),
		slowSpawner(),
		...range(N_SEARCH).map(searcher),
		...range(N_PAGER).map(pager),
		...range(N_LOGIN).map(loginLoop),
	];
	header();

	const t0 = Date.now();
	for (let m = 1; m <= MINUTES && !chatdDead; m++) {
		// the admin commands run half-way through the minute
		const adminAt = t0 + (m - 0.5) * MINUTE_MS;
		while (Date.now() < adminAt && !chatdDead) { await sleep(200); if (!sample()) chatdDead = true; }
		const adminRes = chatdDead ? null : await adminRound(m);
		const end = t0 + m * MINUTE_MS;
		while (Date.now() < end && !chatdDead) { await sleep(200); if (!sample()) chatdDead = true; }
		if (chatdDead) break;
		const smp = await quietSample();
		if (!smp) { chatdDead = true; break; }
		report(m, smp, await serverConnections(), adminRes);
	}

	// stop every loop and close every client
	stopping = true;
	await Promise.race([Promise.allSettled(loops), sleep(WAIT_MS * 2)]);
	await Promise.allSettled([...sockets].map((s) => s.close()));
	keepAlive.destroy();

	if (chatdDead) {
		console.log('soak: FAIL: chatd died during the run');
		return 2;
	}
	// chatd lets go of the clients' fds: wait (bounded) for the idle count
	let drained = sample();
	for (let i = 0; i < 100 && drained && drained.fds > base.fds + FD_SLACK; i++) {
		await sleep(100);
		drained = sample();
	}
	if (!drained) {
		console.log('soak: FAIL: chatd died during the drain');
		return 2;
	}
	const conns = await serverConnections();

	// summary
	const fail = [];
	const fdsSeen = rows.map((r) => r.fds);
	const first = rows[0], last = rows[rows.length - 1];
	const warm = rows[Math.min(WARMUP, rows.length) - 1];
	const after = rows.slice(WARMUP - 1);
	const growth = last.rss_kb - warm.rss_kb;
	const drift = slope(after.map((r) => r.minute), after.map((r) => r.rss_kb));
	const allLat = rows.map((r) => r.lat_p99).filter((v) => v !== null);
	console.log('');
	console.log(`summary: rss ${first.rss_kb} KiB (minute 1) → ${last.rss_kb} KiB (minute ${last.minute}); ` +
		`after warm-up (minute ${warm.minute}) ${growth >= 0 ? '+' : ''}${growth} KiB, drift ${drift.toFixed(0)} KiB/min ` +
		`(bound +${RSS_GROWTH_MAX_KB} KiB)`);
	console.log(`summary: fds idle ${base.fds}, min ${Math.min(...fdsSeen)}, max ${Math.max(...fdsSeen)}, ` +
		`after the drain ${drained.fds} (slack ${FD_SLACK}); connections idle ${baseConns}, after ${conns}; ` +
		`rss after the drain ${drained.rss} KiB`);
	console.log(`summary: ${totals.sent} sent, ${totals.delivered} delivered, worst minute p99 ` +
		`${ms(allLat.length ? Math.max(...allLat) : null)} ms; ${totals.reconnects} reconnects, ` +
		`${totals.dropped} slow readers dropped by chatd; ${totals.errors} errors, ${orderErrors} out-of-order`);
	if (rows.length > WARMUP && growth > RSS_GROWTH_MAX_KB) fail.push(`RSS grew ${growth} KiB after warm-up (bound ${RSS_GROWTH_MAX_KB})`);
	if (drained.fds > base.fds + FD_SLACK) fail.push(`fds leaked: ${drained.fds} after the drain, ${base.fds} idle`);
	if (orderErrors) fail.push(`${orderErrors} events out of seq order`);
	if (totals.sent === 0 || totals.delivered === 0) fail.push('no traffic got through');
	fs.writeFileSync(path.join(opt.dir, 'soak.json'), JSON.stringify({ base, drained, rows }, null, 1));
	if (fail.length) {
		console.log(`soak: FAIL: ${fail.join('; ')}`);
		return 1;
	}
	console.log('soak: PASS: RSS and fds flat');
	return 0;
}

main().then((code) => process.exit(code), (e) => {
	console.error(`soak: driver error: ${e.stack || e.message}`);
	process.exit(3);
});
