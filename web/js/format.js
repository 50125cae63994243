// Message text formatting: a small, safe subset of Markdown.
//
// parse() turns text into a tree of plain objects (no DOM, so Node tests
// it directly: tests/web/format.test.mjs); render() builds DOM nodes from
// the tree with createElement and Text nodes only, never innerHTML.
//
// Blocks: ``` fenced code ``` (the fence lines alone on their line; an
// unclosed fence stays literal) and "> " quoted lines. Inline, on one
// line: **bold**, *italic*, ~~strike~~, `code`, http(s) and www. links,
// and @mentions of the users the server listed in the message's
// `mentions` (or `@room` with `mention_room`). Everything else is text.

// http(s) URLs and bare www. hosts; trailing punctuation stays outside.
const URL_RE = /(?:https?:\/\/|www\.)[^\s<>"'`]+/iy;
const TRAILING = /[.,;:!?'"\])}>*~]+$/;
const WORD = /[A-Za-z0-9_]/;
const NAME_RUN = /[A-Za-z0-9_.-]+/y;
const NAME_CH = /[a-z0-9_.-]/;
const FENCE_OPEN = /^```([A-Za-z0-9_+#.-]*)\s*$/;
const FENCE_CLOSE = /^```\s*$/;
const QUOTE = /^>(?: |$)/;

/**
 * Text → array of nodes. opts: {mentions: [usernames], mentionRoom: bool,
 * me: username}. Node shapes: {t:'text',v} {t:'b'|'i'|'s',c:[...]}
 * {t:'code',v} {t:'pre',v,lang} {t:'quote',c:[...]} {t:'link',href,v}
 * {t:'mention',name,v,me}.
 */
export function parse(text, opts = {}) {
  const ctx = {
    names: new Set((opts.mentions || []).map((n) => String(n).toLowerCase())),
    room: !!opts.mentionRoom,
    me: opts.me ? String(opts.me).toLowerCase() : '',
  };
  const lines = String(text).split('\n');
  const out = [];
  let para = [];
  const flush = () => {
    if (!para.length) return;
    pushAll(out, inline(para.join('\n'), ctx));
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const open = line.match(FENCE_OPEN);
    if (open) {
      let j = i + 1;
      while (j < lines.length && !FENCE_CLOSE.test(lines[j])) j++;
      if (j < lines.length) {
        flush();
        out.push({ t: 'pre', v: lines.slice(i + 1, j).join('\n'), lang: open[1] });
        i = j;
        continue;
      }
    } else if (QUOTE.test(line)) {
      const q = [];
      let j = i;
      while (j < lines.length && QUOTE.test(lines[j])) q.push(lines[j++].replace(/^> ?/, ''));
      flush();
      out.push({ t: 'quote', c: inline(q.join('\n'), ctx) });
      i = j - 1;
      continue;
    }
    para.push(line);
  }
  flush();
  return out;
}

function pushAll(out, nodes) {
  for (const n of nodes) {
    const last = out[out.length - 1];
    if (n.t === 'text' && last && last.t === 'text') last.v += n.v;
    else out.push(n);
  }
}

/** Inline formatting of one block of text. */
function inline(s, ctx) {
  const out = [];
  let buf = '';
  const push = (n) => {
    if (buf) { out.push({ t: 'text', v: buf }); buf = ''; }
    out.push(n);
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '`') {
      const j = s.indexOf('`', i + 1);
      if (j > i + 1 && !s.slice(i + 1, j).includes('\n')) {
        push({ t: 'code', v: s.slice(i + 1, j) });
        i = j + 1;
        continue;
      }
    } else if (c === '*' || c === '~') {
      const d = s[i + 1] === c ? c + c : c;
      if (d !== '~') {
        const end = findClose(s, i + d.length, d);
        if (end > 0) {
          const t = d === '**' ? 'b' : d === '*' ? 'i' : 's';
          push({ t, c: inline(s.slice(i + d.length, end), ctx) });
          i = end + d.length;
          continue;
        }
      }
      buf += d; // an unmatched delimiter is literal, whole
      i += d.length;
      continue;
    } else if (c === '@') {
      const m = mentionAt(s, i, ctx);
      if (m) { push(m); i += m.v.length; continue; }
    } else if ((c === 'h' || c === 'H' || c === 'w' || c === 'W') && (i === 0 || !WORD.test(s[i - 1]))) {
      const l = linkAt(s, i);
      if (l) { push(l); i += l.v.length; continue; }
    }
    buf += c;
    i++;
  }
  if (buf) out.push({ t: 'text', v: buf });
  return out;
}

/**
 * Index of the closing delimiter d for a span opened just before `from`,
 * or -1: on the same line, not inside `code`, content not empty and not
 * starting or ending with white space; a single * skips over **.
 */
function findClose(s, from, d) {
  if (from >= s.length || /\s/.test(s[from])) return -1;
  for (let j = from; j < s.length; j++) {
    const c = s[j];
    if (c === '\n') return -1;
    if (c === '`') {
      const k = s.indexOf('`', j + 1);
      if (k > j + 1 && !s.slice(j + 1, k).includes('\n')) { j = k; continue; }
    }
    if (s.startsWith(d, j) && j > from && !/\s/.test(s[j - 1])) {
      if (d === '*' && s[j + 1] === '*') { j++; continue; } // ** inside *…*
      return j;
    }
    if (d === '*' && c === '*' && s[j + 1] === '*') j++;
  }
  return -1;
}

/** An @mention of a listed user (or @room) starting at s[i], or null. */
function mentionAt(s, i, ctx) {
  if (i > 0 && NAME_CH.test(s[i - 1].toLowerCase())) return null;
  NAME_RUN.lastIndex = i + 1;
  const m = NAME_RUN.exec(s);
  if (!m) return null;
  const run = m[0];
  const known = (n) => (n === 'room' ? ctx.room : ctx.names.has(n));
  let name = run;
  if (!known(name.toLowerCase())) {
    name = run.replace(/[.-]+$/, '');
    if (!name || !known(name.toLowerCase())) return null;
  }
  const lower = name.toLowerCase();
  return { t: 'mention', name: lower, v: '@' + name, me: lower === 'room' || lower === ctx.me };
}

/** An http(s) or www. link starting at s[i], or null. */
function linkAt(s, i) {
  URL_RE.lastIndex = i;
  const m = URL_RE.exec(s);
  if (!m) return null;
  let url = m[0];
  const trail = url.match(TRAILING);
  if (trail) {
    let cut = trail[0].length;
    // keep a closing paren that balances an opening one inside the URL
    if (trail[0].startsWith(')') && url.includes('(')) cut -= 1;
    if (cut > 0) url = url.slice(0, url.length - cut);
  }
  const href = /^www\./i.test(url) ? 'https://' + url : url;
  try {
    const u = new URL(href);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    if (!u.hostname) return null;
  } catch {
    return null;
  }
  return { t: 'link', href, v: url };
}

/** Tree → DocumentFragment (DOM nodes only, no HTML parsing). */
export function render(nodes) {
  const frag = document.createDocumentFragment();
  for (const n of nodes) frag.append(node(n));
  return frag;
}

const TAGS = { b: 'strong', i: 'em', s: 'del' };

function node(n) {
  switch (n.t) {
    case 'text': return document.createTextNode(n.v);
    case 'b': case 'i': case 's': {
      const el = document.createElement(TAGS[n.t]);
      el.append(render(n.c));
      return el;
    }
    case 'code': {
      const el = document.createElement('code');
      el.textContent = n.v;
      return el;
    }
    case 'pre': {
      const pre = document.createElement('pre');
      const code = document.createElement('code');
      code.textContent = n.v;
      pre.append(code);
      return pre;
    }
    case 'quote': {
      const el = document.createElement('blockquote');
      el.append(render(n.c));
      return el;
    }
    case 'link': {
      const a = document.createElement('a');
      a.href = n.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = n.v;
      return a;
    }
    case 'mention': {
      const el = document.createElement('span');
      el.className = n.me ? 'mention me' : 'mention';
      el.textContent = n.v;
      return el;
    }
    default: return document.createTextNode('');
  }
}

/** Message text → DOM fragment, formatted (see parse for opts). */
export function formatText(text, opts) {
  return render(parse(text, opts));
}

/** Plain text of a message for a short quote: formatting marks kept. */
export function snippet(text, max = 120) {
  const one = String(text).replace(/\s+/g, ' ').trim();
  const cps = [...one];
  return cps.length > max ? cps.slice(0, max - 1).join('') + '…' : one;
}
