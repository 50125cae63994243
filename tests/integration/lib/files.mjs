// tests/integration/lib/files.mjs — upload and download helpers for the
// files tests (integration, browser, bench).
import http from 'node:http';
import { WAIT_MS } from './chatd.mjs';

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
			answered = true;
			const parts = [];
			res.on('data', (d) => parts.push(d));
			res.on('end', () => {
				const text = Buffer.concat(parts).toString();
				let json;
				try { json = JSON.parse(text); } catch { json = undefined; }
				resolve({ status: res.statusCode, headers: res.headers, json, text });
			});
		});
		// A server may answer a refused body early and close (RFC 9112
		// 9.6): once the answer is in, a failed write of the rest of the
		// body is the expected end, not an error.
		let answered = false;
		req.setTimeout(WAIT_MS * 4, () => req.destroy(new Error('upload: no answer')));
		req.on('error', (e) => { if (!answered) reject(new Error(`upload ${name}: ${e.message}`, { cause: e })); });
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

