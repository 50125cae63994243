// File attachments on the page (PROTOCOL.md "Files"): the "Attach file"
// button, files dropped on the room and images pasted into the composer
// are uploaded at once (XMLHttpRequest, for its upload progress) and wait
// in the "Attachments" list above the composer until the next message is
// sent. Files in messages: the four inline image types as images, the rest
// as download links. Every download is a fetch with the token in the
// Authorization header, shown from a blob: URL; the token never goes into
// a URL. File names are only ever text (textContent, attributes).

import { h } from './util.js';

const $ = (id) => document.getElementById(id);
const INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
export const MAX_FILES = 10;           // files per message (PROTOCOL.md)
const DOWNLOAD_KEEP_MS = 60000;        // a download's blob URL is revoked after this
const PARALLEL = 3;                    // uploads at once (chatd allows a user 4)

let ctx = null;          // {S, render, setError}
let seq = 0;             // attachment keys
let gen = 0;             // bumped at sign-out: late answers are dropped
const tray = [];         // attachments not sent yet: {key, room, blob, name, size, state, loaded, xhr, error, meta}
const images = new Map(); // file id -> {url, promise} of inline images
const urls = new Set();  // every blob: URL made (revoked at sign-out)
let viewer = null;       // the open image dialog
let maxUpload = 0;       // bytes, once a 413 told us (chatd does not announce it)

/** A files-only message in a line of text (quotes, notifications): the names. */
export function filesText(m) {
  return m && Array.isArray(m.files) ? m.files.map((f) => f.name).join(', ') : '';
}

/** "12 KB": sizes in units of 1024. */
export function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0)} MB`;
  return `${(n / 1073741824).toFixed(1)} GB`;
}

/** Wires the button, the drop target and paste. ctx: {S, render, setError}. */
export function initFiles(c) {
  ctx = c;
  const input = $('attach-input');
  $('attach-btn').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    add(input.files);
    input.value = '';
  });
  const zone = $('room-view');
  const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes('Files');
  zone.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev) || !canAttach()) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
    zone.classList.add('dropping');
  });
  zone.addEventListener('dragleave', (ev) => {
    if (!ev.relatedTarget || !zone.contains(ev.relatedTarget)) zone.classList.remove('dropping');
  });
  zone.addEventListener('drop', (ev) => {
    zone.classList.remove('dropping');
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    add(ev.dataTransfer.files);
  });
  // a file dropped beside the drop zone must not make the browser open it
  for (const t of ['dragover', 'drop']) {
    window.addEventListener(t, (ev) => { if (hasFiles(ev)) ev.preventDefault(); });
  }
  $('composer-input').addEventListener('paste', (ev) => {
    const cd = ev.clipboardData;
    const files = [...(cd ? cd.files : [])];
    // text (even with a picture of it, as office programs copy) is pasted as text
    if (!files.length || [...cd.types].includes('text/plain')) return;
    ev.preventDefault();
    add(files);
  });
  $('attach-list').addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    const it = tray.find((x) => x.key === btn.closest('li').dataset.key);
    if (!it) return;
    if (btn.dataset.act === 'retry') queue(it);
    else remove(it);
    $('composer-input').focus();
  });
}

function canAttach() {
  return !!ctx.S.current && ctx.S.rooms.has(ctx.S.current) && !!ctx.S.token;
}

/** Adds files to the open room's attachments and starts uploading them. */
function add(list) {
  const files = [...(list || [])];
  if (!files.length || !canAttach()) return;
  const room = ctx.S.current;
  const have = tray.filter((x) => x.room === room).length;
  if (have + files.length > MAX_FILES) {
    ctx.setError(`A message can carry at most ${MAX_FILES} files.`);
    files.length = Math.max(0, MAX_FILES - have);
  }
  for (const f of files) {
    const name = f.name || 'pasted image.' + ((f.type.split('/')[1] || 'bin').replace(/[^a-z0-9]/g, '') || 'bin');
    const it = { key: 'u' + ++seq, room, blob: f, name, size: f.size, state: 'uploading', loaded: 0, xhr: null, error: '', meta: null };
    // over a limit chatd told us of: say so at once ("Retry" asks chatd again)
    if (maxUpload && f.size > maxUpload) fail(it, 413, { code: 'too_large', message: `at most ${maxUpload} bytes` });
    tray.push(it);
  }
  pump();
  renderTray();
  ctx.render();
}

/** Puts an attachment (back) in line for uploading. */
function queue(it) {
  it.state = 'uploading';
  it.loaded = 0;
  it.error = '';
  it.xhr = null;
  pump();
  renderTray();
  ctx.render();
}

/** Starts waiting uploads while fewer than PARALLEL run (a burst of files
 * would otherwise meet chatd's limit of uploads in progress per user). */
function pump() {
  let running = tray.filter((x) => x.xhr).length;
  for (const it of tray) {
    if (running >= PARALLEL) break;
    if (it.state === 'uploading' && !it.xhr) { upload(it); running++; }
  }
}

/** Sends one attachment's bytes (POST /api/files); state goes to done or failed. */
function upload(it) {
  const g = gen;
  const xhr = new XMLHttpRequest();
  it.xhr = xhr;
  xhr.open('POST', `/api/files?room=${encodeURIComponent(it.room)}&name=${encodeURIComponent(it.name)}`);
  xhr.setRequestHeader('Authorization', 'Bearer ' + ctx.S.token);
  xhr.responseType = 'json';
  xhr.upload.addEventListener('progress', (ev) => {
    if (g !== gen || it.xhr !== xhr) return;
    it.loaded = ev.loaded;
    const bar = document.querySelector(`#attach-list li[data-key="${it.key}"] progress`);
    if (bar) bar.value = ev.loaded;
  });
  const done = (fn) => () => {
    if (g !== gen || it.xhr !== xhr) return;
    it.xhr = null;
    fn();
    pump();
    renderTray();
    ctx.render();
  };
  xhr.addEventListener('load', done(() => {
    const res = xhr.response;
    if (xhr.status === 201 && res && res.file && res.file.id) {
      it.state = 'done';
      it.meta = { id: res.file.id, name: res.file.name, size: res.file.size, type: res.file.type };
    } else {
      fail(it, xhr.status, res && res.error);
    }
  }));
  xhr.addEventListener('error', done(() => fail(it, 0, null)));
  xhr.addEventListener('timeout', done(() => fail(it, 0, null)));
  xhr.send(it.blob);
  renderTray();
}

/** Why an upload failed, in words, with sizes in KB/MB. */
function fail(it, status, err) {
  it.state = 'failed';
  const code = err && err.code;
  let why;
  if (status === 0) why = 'the connection to the server was lost';
  else if (code === 'too_large') {
    const m = err.message && err.message.match(/(\d+) bytes/);
    if (m) maxUpload = Number(m[1]);
    why = m ? `too large (the limit is ${fmtSize(Number(m[1]))})` : 'too large';
  } else if (code === 'rate_limited') why = 'too many uploads — wait a moment';
  else if (code === 'insufficient_storage') why = 'the server is out of disk space';
  else if (code === 'busy') why = 'the server is busy';
  else if (code === 'forbidden') why = 'you are not a member of this room';
  else why = (err && err.message) || `the server answered ${status}`;
  it.error = 'Not uploaded: ' + why + '.';
}

/** Cancels (aborts) or removes an attachment. */
function remove(it) {
  const i = tray.indexOf(it);
  if (i >= 0) tray.splice(i, 1);
  if (it.xhr) { const x = it.xhr; it.xhr = null; x.abort(); }
  pump();
  renderTray();
  ctx.render();
}

/** A room left: its attachments go (uploads in progress are aborted). */
export function dropFiles(room) {
  for (const it of tray.filter((x) => x.room === room)) {
    tray.splice(tray.indexOf(it), 1);
    if (it.xhr) { const x = it.xhr; it.xhr = null; x.abort(); }
  }
  pump();
  renderTray();
}

/** The open room's attachments: {uploading, failed, ready} counts. */
export function attachState(room) {
  const mine = tray.filter((x) => x.room === room);
  return {
    uploading: mine.filter((x) => x.state === 'uploading').length,
    failed: mine.filter((x) => x.state === 'failed').length,
    ready: mine.filter((x) => x.state === 'done').length,
  };
}

/** Takes the room's finished attachments for a message: their file objects. */
export function takeFiles(room) {
  const out = [];
  for (let i = 0; i < tray.length;) {
    if (tray[i].room === room && tray[i].state === 'done') out.push(tray.splice(i, 1)[0].meta);
    else i++;
  }
  renderTray();
  return out;
}

/** The "Attachments" list above the composer, for the open room. */
export function renderTray() {
  const ul = $('attach-list');
  const room = ctx && ctx.S.current;
  const items = tray.filter((x) => x.room === room);
  ul.hidden = !items.length;
  $('attach-btn').disabled = !canAttach();
  const old = new Map([...ul.children].map((li) => [li.dataset.key, li]));
  const lis = items.map((it) => {
    const sig = it.state + '|' + it.error;
    const li = old.get(it.key);
    if (li && li.dataset.sig === sig) return li;
    return buildItem(it, sig);
  });
  // keep nodes that did not change (focus stays on their buttons)
  lis.forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null); });
  while (ul.children.length > lis.length) ul.lastElementChild.remove();
}

function buildItem(it, sig) {
  const name = h('span', { class: 'attach-name' }, it.name);
  const size = h('span', { class: 'muted small' }, ` (${fmtSize(it.size)})`);
  let rest;
  if (it.state === 'uploading') {
    rest = [h('progress', { max: String(Math.max(it.size, 1)), value: String(it.loaded), 'aria-label': it.name }),
      h('button', { type: 'button', class: 'link-btn', dataset: { act: 'cancel' } }, 'Cancel')];
  } else if (it.state === 'failed') {
    rest = [h('span', { class: 'form-error', role: 'alert' }, it.error),
      h('button', { type: 'button', class: 'link-btn', dataset: { act: 'retry' } }, 'Retry'),
      h('button', { type: 'button', class: 'link-btn', dataset: { act: 'remove' } }, 'Remove')];
  } else {
    rest = [h('span', { class: 'attach-ok' }, 'ready'),
      h('button', { type: 'button', class: 'link-btn', dataset: { act: 'remove' } }, 'Remove')];
  }
  return h('li', { class: 'attach ' + it.state, dataset: { key: it.key, sig } }, name, size, ' ', rest);
}

// ------------------------------------------------------ files in messages

/** The files of a message: images inline, others as download links. `pending`: names only. */
export function buildFiles(files, id, pending) {
  if (!Array.isArray(files) || !files.length) return null;
  return h('div', { class: 'files', id }, files.map((f) => {
    const label = `${f.name} (${fmtSize(f.size)})`;
    if (pending) return h('span', { class: 'file-chip' }, label);
    if (INLINE.has(f.type)) return buildImage(f, label);
    return h('a', { href: '#', class: 'file-link', dataset: { file: f.id }, onclick: (ev) => download(ev, f) }, label);
  }));
}

const lazy = typeof IntersectionObserver === 'function'
  ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      lazy.unobserve(e.target);
      waiting.delete(e.target);
      showImage(e.target);
    }
  }, { rootMargin: '300px' })
  : null;
const waiting = new Set(); // images observed by `lazy`, not shown yet
let sweeping = false;

/** Rebuilt message nodes leave their old images behind: stop watching those. */
function sweep() {
  sweeping = false;
  for (const img of waiting) if (!img.isConnected) { lazy.unobserve(img); waiting.delete(img); }
}

function buildImage(f, label) {
  const img = h('img', { alt: f.name, class: 'file-img', dataset: { file: f.id, type: f.type } });
  const cached = images.get(f.id);
  if (cached && cached.url) img.src = cached.url;
  else if (lazy) {
    lazy.observe(img);
    waiting.add(img);
    if (!sweeping) { sweeping = true; setTimeout(sweep, 1000); }
  } else showImage(img);
  return h('button', { type: 'button', class: 'file-thumb', title: label, onclick: () => openViewer(f) }, img);
}

/** Loads an inline image's blob: URL into img (once per file id). */
function showImage(img) {
  const id = img.dataset.file;
  imageUrl(id, img.dataset.type).then((url) => { if (url) img.src = url; }, () => {
    img.classList.add('broken');
    img.title = 'Could not load the image.';
  });
}

/** A promise of the blob: URL of an inline image, cached per file id. */
function imageUrl(id, type) {
  let c = images.get(id);
  if (!c) {
    const g = gen;
    c = { url: null, promise: null };
    c.promise = fetchBlob(id, type).then((blob) => {
      if (g !== gen) return null;
      c.url = track(URL.createObjectURL(blob));
      return c.url;
    }, (e) => { if (images.get(id) === c) images.delete(id); throw e; });
    images.set(id, c);
  }
  return c.promise;
}

/** GET /api/files/{id} with the token in the header; the Blob's type is
 * the file's only for the inline image types, else application/octet-stream,
 * so a blob: URL of HTML or SVG can never be shown as a page of our origin. */
async function fetchBlob(id, type) {
  const res = await fetch('/api/files/' + encodeURIComponent(id), {
    headers: { Authorization: 'Bearer ' + ctx.S.token }, cache: 'no-store', credentials: 'omit',
  });
  if (!res.ok) throw new Error(res.status === 404 ? 'the file is gone' : 'the server answered ' + res.status);
  const data = await res.blob();
  return new Blob([data], { type: INLINE.has(type) ? type : 'application/octet-stream' });
}

function track(url) { urls.add(url); return url; }

function revoke(url) {
  if (urls.delete(url)) URL.revokeObjectURL(url);
}

/** A click on a file link: fetch, then let the link download its blob: URL. */
async function download(ev, f) {
  const a = ev.currentTarget;
  if (a.dataset.ready) return; // the blob: URL is there: the default action saves it
  ev.preventDefault();
  if (a.getAttribute('aria-busy') === 'true') return;
  a.setAttribute('aria-busy', 'true');
  const g = gen;
  try {
    const blob = await fetchBlob(f.id, 'application/octet-stream');
    if (g !== gen) return;
    const url = track(URL.createObjectURL(blob));
    a.href = url;
    a.download = f.name;
    a.dataset.ready = '1';
    a.click();
    setTimeout(() => {
      revoke(url);
      if (a.href === url) { a.href = '#'; a.removeAttribute('download'); delete a.dataset.ready; }
    }, DOWNLOAD_KEEP_MS);
  } catch (e) {
    ctx.setError(`Could not download ${f.name}: ${e.message}.`);
  } finally {
    a.removeAttribute('aria-busy');
  }
}

/** The full-size image in a modal dialog named by the file (Escape or "Close"). */
async function openViewer(f) {
  closeViewer();
  const img = h('img', { alt: f.name, class: 'viewer-img' });
  const close = h('button', { type: 'button', onclick: closeViewer }, 'Close');
  const save = h('a', { href: '#', class: 'file-link', download: f.name, hidden: true }, 'Download');
  const dlg = h('dialog', { class: 'modal viewer', 'aria-label': f.name },
    h('div', { class: 'viewer-body' }, img),
    h('div', { class: 'dialog-buttons' }, save, close));
  dlg.addEventListener('close', () => { dlg.remove(); if (viewer === dlg) viewer = null; });
  dlg.addEventListener('click', (ev) => { if (ev.target === dlg) closeViewer(); });
  document.body.append(dlg);
  viewer = dlg;
  dlg.showModal();
  close.focus();
  try {
    const url = await imageUrl(f.id, f.type);
    if (url) { img.src = url; save.href = url; save.hidden = false; }
  } catch (e) {
    img.replaceWith(h('p', { class: 'form-error' }, `Could not load ${f.name}: ${e.message}.`));
  }
}

function closeViewer() {
  if (viewer && viewer.open) viewer.close();
}

/** Sign-out: abort uploads, forget attachments, revoke every blob: URL. */
export function resetFiles() {
  gen++;
  for (const it of tray) if (it.xhr) { const x = it.xhr; it.xhr = null; x.abort(); }
  tray.length = 0;
  images.clear();
  if (lazy) { lazy.disconnect(); waiting.clear(); }
  for (const u of urls) URL.revokeObjectURL(u);
  urls.clear();
  closeViewer();
  if (ctx) renderTray();
}
