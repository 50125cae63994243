// tests/bench/peer-ws/server.mjs — the comparison server for the benchmark:
// the subset of PROTOCOL.md that chatbench uses, on npm's `ws`, without
// persistence — the server a small team would write instead of chatd.
//
//   node tests/bench/peer-ws/server.mjs --listen 127.0.0.1:PORT
//
// register/login accept anyone and return a token; /ws takes
// {"type":"auth","token"} → hello, join → joined, send → a `message` event
// to every connection of every member (the sender's copy carries its ref),
// history → an empty page. /healthz answers 200.
import http from 'node:http';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

// Reuse the ws package installed for the tests (the top node_modules).
const require = createRequire(new URL('../../../package.json', import.meta.url));
const { WebSocketServer } = require('ws');

const arg = process.argv.indexOf('--listen');
const [host, port] = (arg > 0 ? process.argv[arg + 1] : '127.0.0.1:8090')
	.split(':');

const users = new Map(); // username -> {id, username, conns: Set}
const tokens = new Map(); // token -> user
const rooms = new Map(); // room name -> {members: Set<user>, lastSeq}
let nextUserId = 1;
let seq = 0;

// The user record for a name, created on first use.
function userFor(name) {
	let u = users.get(name);
	if (!u) {
		u = { id: nextUserId++, username: name, conns: new Set() };
		users.set(name, u);
	}
	return u;
}

// Sends a JSON reply with a status.
function reply(res, status, obj) {
	const body = JSON.stringify(obj);
	res.writeHead(status, {
		'Content-Type': 'application/json',
		'Content-Length': Buffer.byteLength(body),
	});
	res.end(body);
}

// Reads a JSON request body (up to 64 KiB), or null.
function readJson(req) {
	return new Promise((resolve) => {
		const parts = [];
		let size = 0;
		req.on('data', (d) => {
			size += d.length;
			if (size <= 65536) parts.push(d);
		});
		req.on('end', () => {
			try {
				resolve(JSON.parse(Buffer.concat(parts).toString()));
			} catch {
				resolve(null);
			}
		});
	});
}

const server = http.createServer(async (req, res) => {
	if (req.method === 'GET' && req.url === '/healthz')
		return reply(res, 200, { status: 'ok' });
	if (req.method !== 'POST' ||
	    (req.url !== '/api/register' && req.url !== '/api/login'))
		return reply(res, 404, { error: { code: 'not_found',
			message: 'not found' } });
	const body = await readJson(req);
	if (!body || typeof body.username !== 'string')
		return reply(res, 400, { error: { code: 'bad_request',
			message: 'bad request' } });
	const u = userFor(body.username.toLowerCase());
	const user = { id: u.id, username: u.username };
	if (req.url === '/api/register') return reply(res, 201, { user });
	const token = randomBytes(24).toString('hex');
	tokens.set(token, u);
	reply(res, 200, { token, expires_at: Date.now() + 30 * 86400e3, user });
});

const wss = new WebSocketServer({ noServer: true, maxPayload: 65536 });
server.on('upgrade', (req, socket, head) => {
	if (req.url !== '/ws') return socket.destroy();
	wss.handleUpgrade(req, socket, head, (ws) => attach(ws));
});

// Room state of user u, as in hello.
function roomStates(u) {
	const out = [];
	for (const [name, r] of rooms)
		if (r.members.has(u))
			out.push({ name, kind: 'public', last_seq: r.lastSeq,
				read_seq: r.lastSeq, unread: 0 });
	return out;
}

// Sends one JSON object with the request's ref.
function answer(ws, obj, ref) {
	if (ref !== undefined) obj.ref = ref;
	ws.send(JSON.stringify(obj));
}

// Handles one request of an authenticated connection.
function handle(ws, u, m) {
	const ref = m.ref;
	const r = typeof m.room === 'string' ? rooms.get(m.room) : undefined;
	switch (m.type) {
	case 'join': {
		if (typeof m.room !== 'string')
			return answer(ws, { type: 'error', code: 'bad_request' }, ref);
		let room = r;
		if (!room) {
			room = { members: new Set(), lastSeq: 0 };
			rooms.set(m.room, room);
		}
		room.members.add(u);
		return answer(ws, { type: 'joined', room: m.room, kind: 'public',
			members: [...room.members].map((x) => x.username),
			last_seq: room.lastSeq }, ref);
	}
	case 'send': {
		if (!r) return answer(ws, { type: 'error', code: 'no_such_room' }, ref);
		if (!r.members.has(u))
			return answer(ws, { type: 'error', code: 'not_member' }, ref);
		if (typeof m.text !== 'string' || m.text.length === 0)
			return answer(ws, { type: 'error', code: 'empty' }, ref);
		seq++;
		r.lastSeq = seq;
		const ev = { type: 'message', id: seq, seq, room: m.room,
			user: u.username, text: m.text, ts: Date.now() };
		const frame = Buffer.from(JSON.stringify(ev)); // encoded once
		for (const member of r.members)
			for (const c of member.conns)
				if (c !== ws) c.send(frame, { binary: false });
		return answer(ws, ev, ref);
	}
	case 'history':
		return answer(ws, { type: 'history', room: m.room, messages: [],
			has_more: false }, ref);
	default:
		return answer(ws, { type: 'error', code: 'bad_request' }, ref);
	}
}

// Wires up a new WebSocket: auth first, then requests.
function attach(ws) {
	let u = null;
	const timer = setTimeout(() => ws.close(1008), 10000);
	ws.on('message', (data, isBinary) => {
		let m;
		if (isBinary) return ws.close(1003);
		try {
			m = JSON.parse(data);
		} catch {
			return answer(ws, { type: 'error', code: 'bad_request' });
		}
		if (u) return handle(ws, u, m);
		clearTimeout(timer);
		u = m && m.type === 'auth' ? tokens.get(m.token) : undefined;
		if (!u) {
			answer(ws, { type: 'error', code: 'unauthorized' });
			return ws.close(1008);
		}
		u.conns.add(ws);
		answer(ws, { type: 'hello', user: { id: u.id, username: u.username },
			epoch: 'peer', rooms: roomStates(u),
			limits: { max_text_chars: 4000, max_message_bytes: 65536 } },
		m.ref);
	});
	ws.on('close', () => {
		clearTimeout(timer);
		if (u) u.conns.delete(ws);
	});
	ws.on('error', () => {});
}

server.listen(Number(port), host);
process.on('SIGTERM', () => process.exit(0));
