// tests/integration/lib/ops.mjs — helpers for the operations tests: run the
// chatd admin commands to completion, parse Prometheus text strictly.
import { spawn } from 'node:child_process';
import { CHATD_BIN } from './chatd.mjs';

/** Runs chatd with args to completion: {code, signal, stdout, stderr}.
 * env: extra variables (the caller's CHATD_* are removed first). */
export function chatd(args, { input, env = {}, ms = 30000 } = {}) {
	return new Promise((resolve, reject) => {
		const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHATD_')));
		const p = spawn(CHATD_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...base, ...env } });
		const out = [];
		let stderr = '';
		p.stdout.on('data', (d) => out.push(d));
		p.stderr.on('data', (d) => { stderr += d; });
		const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`chatd ${args.join(' ')}: no exit in ${ms} ms; stderr: ${stderr}`)); }, ms);
		p.on('error', (e) => { clearTimeout(timer); reject(e); });
		p.on('close', (code, signal) => {
			clearTimeout(timer);
			resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr });
		});
		p.stdin.on('error', () => {});
		if (input !== undefined) p.stdin.write(input);
		p.stdin.end();
	});
}

/** chatd args, throwing unless it exits 0; resolves to stdout. */
export async function chatdOk(args, opts) {
	const r = await chatd(args, opts);
	if (r.code !== 0) throw new Error(`chatd ${args.join(' ')}: exit ${r.code} ${r.signal || ''}; stderr: ${r.stderr}`);
	return r.stdout;
}

/** The JSON objects of a JSON Lines text (every line must parse). */
export function jsonLines(text) {
	return text.split('\n').filter((l) => l !== '').map((l, i) => {
		try {
			return JSON.parse(l);
		} catch (e) {
			throw new Error(`line ${i + 1} is not JSON: ${l.slice(0, 200)}`);
		}
	});
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"/y;

/** Parses Prometheus text exposition format (0.0.4) strictly: every line a
 * comment, a HELP/TYPE line or a sample; a metric's TYPE comes before its
 * samples and at most once; histogram buckets are cumulative, end in +Inf
 * and +Inf equals _count. Returns {types, samples: [{name, labels, value}],
 * get(name, labels)}; throws with the offending line. */
export function parseMetrics(text) {
	const types = new Map();
	const samples = [];
	if (!text.endsWith('\n')) throw new Error('metrics text must end with a newline');
	for (const line of text.split('\n').slice(0, -1)) {
		if (line.startsWith('#')) {
			const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
			if (!m) continue; // a plain comment
			if (!NAME.test(m[2])) throw new Error(`bad metric name: ${line}`);
			if (m[1] === 'TYPE') {
				if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`bad type: ${line}`);
				if (types.has(m[2])) throw new Error(`TYPE twice: ${line}`);
				if (samples.some((s) => s.family === m[2])) throw new Error(`TYPE after samples: ${line}`);
				types.set(m[2], m[3]);
			}
			continue;
		}
		const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)( -?\d+)?$/.exec(line);
		if (!m) throw new Error(`bad sample line: ${JSON.stringify(line)}`);
		const labels = {};
		if (m[2]) {
			const body = m[2].slice(1, -1);
			LABEL.lastIndex = 0;
			let pos = 0;
			while (pos < body.length) {
				LABEL.lastIndex = pos;
				const l = LABEL.exec(body);
				if (!l) throw new Error(`bad labels: ${line}`);
				labels[l[1]] = l[2];
				pos = LABEL.lastIndex;
				if (body[pos] === ',') pos++;
			}
		}
		const v = m[3];
		if (!/^([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?Inf|NaN)$/.test(v)) throw new Error(`bad value: ${line}`);
		const family = m[1].replace(/_(bucket|sum|count)$/, '');
		const fam = types.has(m[1]) ? m[1] : family;
		if (!types.has(fam)) throw new Error(`sample without TYPE: ${line}`);
		if (types.get(fam) !== 'histogram' && fam !== m[1]) throw new Error(`suffix on a non-histogram: ${line}`);
		samples.push({ name: m[1], family: fam, labels, value: Number(v.replace('Inf', 'Infinity')) });
	}
	for (const [name, type] of types) {
		if (type !== 'histogram') continue;
		const buckets = samples.filter((s) => s.name === `${name}_bucket`);
		const count = samples.find((s) => s.name === `${name}_count`);
		if (!buckets.length || !count) throw new Error(`histogram ${name} lacks buckets or _count`);
		let prevLe = -Infinity, prev = 0;
		for (const b of buckets) {
			const le = Number(b.labels.le.replace('Inf', 'Infinity'));
			if (!(le > prevLe)) throw new Error(`${name}: buckets not in increasing le`);
			if (b.value < prev) throw new Error(`${name}: buckets not cumulative`);
			prevLe = le;
			prev = b.value;
		}
		if (prevLe !== Infinity || prev !== count.value) throw new Error(`${name}: +Inf bucket must equal _count`);
	}
	function get(name, labels = {}) {
		const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
		return s ? s.value : undefined;
	}
	return { types, samples, get };
}
