// File attachments between two users in Chromium, found by role and name:
// attach by the "Attach file" button, by a drop on the message area and by
// pasting into the composer; the progress bar and Cancel of a throttled
// upload; a too-large upload's reason and Retry; the other user sees the
// image inline (a blob: URL, fetched with the token) and opens it full
// size, downloads a file through its link; an uploaded HTML file (with a
// script and a hostile name) is downloaded, never rendered or run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { startChatd, uniq } from '../integration/lib/chatd.mjs';
import { launchBrowser, openPage, signUp, joinRoom, roomLink, log, messages, until, shot } from './lib.mjs';

let srv, browser, A, B;
const alice = uniq('alice');
const bob = uniq('bob');
const room = uniq('files');
const PW = 'correct horse battery';
const LIMIT_MB = 1;

before(async () => {
  srv = await startChatd({ rateLimits: 'off', args: ['--max-upload-mb', String(LIMIT_MB)] });
  browser = await launchBrowser();
  A = await openPage(browser, srv);
  B = await openPage(browser, srv);
  await signUp(A.page, alice, PW);
  await signUp(B.page, bob, PW);
  await joinRoom(A.page, room);
  await joinRoom(B.page, room);
});

after(async () => {
  await browser?.close();
  await srv?.cleanup();
});

// ------------------------------------------------------------ helpers

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A w×h RGB PNG with a gradient. */
function png(w, h) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 255) / w; raw[o + 1] = (y * 255) / h; raw[o + 2] = 160;
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const composer = (page) => page.getByRole('textbox', { name: 'Message', exact: true });
const attachments = (page) => page.getByRole('list', { name: 'Attachments' });
const attachment = (page, name) => attachments(page).getByRole('listitem').filter({ hasText: name });

/** Attaches files through the "Attach file" button and its file chooser. */
async function attachByButton(page, files) {
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.getByRole('button', { name: 'Attach file' }).click(),
  ]);
  await chooser.setFiles(files);
}

/** Drops files on the message log as a drag and drop from the desktop would. */
async function drop(page, files) {
  await log(page).evaluate((el, fs) => {
    const dt = new DataTransfer();
    for (const f of fs) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
    for (const type of ['dragenter', 'dragover', 'drop']) {
      el.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, files.map((f) => ({ name: f.name, type: f.mimeType, bytes: [...f.buffer] })));
}

async function sendNow(page, text = '') {
  const send = page.getByRole('button', { name: 'Send', exact: true });
  await until(async () => !(await send.isDisabled()), { what: 'Send enabled' });
  await composer(page).fill(text);
  await composer(page).press('Enter');
  await until(async () => (await attachments(page).getByRole('listitem').count()) === 0, { what: 'attachments taken' });
}

async function token(page) {
  return page.evaluate(() => localStorage.getItem('chatd.token'));
}

// ------------------------------------------------------------ tests

test('the page allows blob: images, and scripts only from itself', async () => {
  const res = await fetch(srv.url + '/');
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /img-src 'self' data: blob:;/);
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /script-src[^;]*(blob:|unsafe)/);
});

test('attach by button: the other user sees the image inline and opens it full size', async () => {
  const image = png(320, 200);
  await attachByButton(A.page, { name: 'cat picture.png', mimeType: 'image/png', buffer: image });
  await attachment(A.page, 'cat picture.png').getByText('ready').waitFor();
  await sendNow(A.page, 'look at this');

  for (const { page } of [A, B]) {
    const msg = messages(page, 'look at this');
    const img = msg.getByRole('img', { name: 'cat picture.png', exact: true });
    await img.waitFor();
    await until(() => img.evaluate((e) => e.complete && e.naturalWidth === 320 && e.naturalHeight === 200), { what: 'image loaded' });
    assert.match(await img.getAttribute('src'), /^blob:/, 'a blob: URL, never a token in a URL');
    // scaled to fit: CSS limits
    const box = await img.boundingBox();
    assert.ok(box.width <= 360 && box.height <= 260, `scaled: ${box.width}x${box.height}`);
  }
  // click opens the full size in a dialog named by the file; Escape closes it
  const page = B.page;
  await messages(page, 'look at this').getByRole('button', { name: 'cat picture.png' }).click();
  const dlg = page.getByRole('dialog', { name: 'cat picture.png' });
  await dlg.waitFor();
  const big = dlg.getByRole('img', { name: 'cat picture.png' });
  await until(() => big.evaluate((e) => e.complete && e.naturalWidth === 320), { what: 'full-size image' });
  await shot(page, 'files-viewer');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  await shot(page, 'files-inline');
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});

test('drop on the message area: a files-only message; the other user downloads the file', async () => {
  const bytes = Buffer.alloc(12 * 1024, 'pdf bytes ');
  await drop(A.page, [{ name: 'report.pdf', mimeType: 'application/pdf', buffer: bytes }]);
  await attachment(A.page, 'report.pdf').getByText('ready').waitFor();
  await sendNow(A.page, '');

  const page = B.page;
  const link = log(page).getByRole('link', { name: 'report.pdf (12 KB)', exact: true });
  await link.waitFor();
  const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.equal(dl.suggestedFilename(), 'report.pdf');
  assert.match(dl.url(), /^blob:/);
  const got = await new Promise((resolve, reject) => {
    dl.createReadStream().then((s) => {
      const parts = [];
      s.on('data', (d) => parts.push(d));
      s.on('end', () => resolve(Buffer.concat(parts)));
      s.on('error', reject);
    }, reject);
  });
  assert.ok(got.equals(bytes), 'the downloaded bytes are the uploaded ones');
  assert.deepEqual(B.errors, []);
});

test('paste an image into the composer attaches it', async () => {
  const image = png(40, 30);
  await composer(A.page).evaluate((el, bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'image.png', { type: 'image/png' }));
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, [...image]);
  await attachment(A.page, 'image.png').getByText('ready').waitFor();
  // text with a picture of it (as office programs copy) stays a text paste
  const swallowed = await composer(A.page).evaluate((el, bytes) => {
    const dt = new DataTransfer();
    dt.setData('text/plain', 'some text');
    dt.items.add(new File([new Uint8Array(bytes)], 'text.png', { type: 'image/png' }));
    return !el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, [...image]);
  assert.equal(swallowed, false);
  assert.equal(await attachment(A.page, 'text.png').count(), 0);
  await sendNow(A.page, 'pasted');
  const img = messages(B.page, 'pasted').getByRole('img', { name: 'image.png' });
  await until(() => img.evaluate((e) => e.naturalWidth === 40), { what: 'pasted image shown' });
});

test('a slow upload shows its progress bar; Send waits; Cancel aborts it', async () => {
  const page = A.page;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 64 * 1024 });
  try {
    await attachByButton(page, { name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(900 * 1024, 7) });
    const bar = page.getByRole('progressbar', { name: 'big.bin', exact: true });
    await bar.waitFor();
    await until(() => bar.evaluate((e) => e.value > 0 && e.value < e.max), { what: 'progress under way' });
    assert.equal(await page.getByRole('button', { name: 'Send', exact: true }).isDisabled(), true, 'Send waits for uploads');
    await composer(page).fill('not yet');
    await composer(page).press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Wait for the uploads to finish' }).waitFor();
    await shot(page, 'files-progress');
    await attachment(page, 'big.bin').getByRole('button', { name: 'Cancel' }).click();
    await bar.waitFor({ state: 'detached' });
    assert.equal(await attachments(page).isHidden(), true);
    assert.equal(await page.getByRole('button', { name: 'Send', exact: true }).isDisabled(), false);
    await composer(page).fill('');
  } finally {
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();
  }
});

test('a too-large upload says why and offers Retry', async () => {
  const page = A.page;
  await attachByButton(page, { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(LIMIT_MB * 1048576 + 1, 1) });
  const item = attachment(page, 'huge.bin');
  await item.getByRole('alert').filter({ hasText: 'Not uploaded: too large (the limit is 1.0 MB).' }).waitFor();
  await item.getByRole('button', { name: 'Retry' }).waitFor();
  assert.equal(await page.getByRole('progressbar', { name: 'huge.bin' }).count(), 0);
  // Send refuses while it is there
  await composer(page).fill('with the failed one');
  await composer(page).press('Enter');
  await page.getByRole('alert').filter({ hasText: 'Retry or remove the attachment that failed.' }).waitFor();
  // Retry uploads again (and fails again, for the same reason)
  await item.getByRole('button', { name: 'Retry' }).click();
  await item.getByRole('alert').filter({ hasText: 'too large' }).waitFor();
  await item.getByRole('button', { name: 'Remove' }).click();
  await item.waitFor({ state: 'detached' });
  // the limit is known now: a file over it is refused without a request
  let posts = 0;
  const count = (req) => { if (req.method() === 'POST' && req.url().includes('/api/files')) posts++; };
  page.on('request', count);
  await attachByButton(page, { name: 'huge2.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(LIMIT_MB * 1048576 + 1, 2) });
  const item2 = attachment(page, 'huge2.bin');
  await item2.getByRole('alert').filter({ hasText: 'Not uploaded: too large (the limit is 1.0 MB).' }).waitFor();
  assert.equal(posts, 0);
  // Retry still asks chatd
  await item2.getByRole('button', { name: 'Retry' }).click();
  await until(() => posts === 1, { what: 'the retry went to chatd' });
  await item2.getByRole('alert').filter({ hasText: 'too large' }).waitFor();
  page.off('request', count);
  await item2.getByRole('button', { name: 'Remove' }).click();
  await item2.waitFor({ state: 'detached' });
  await composer(page).fill('');
});

test('an HTML file with a script and a hostile name is downloaded, never rendered', async () => {
  const name = '<img src=x onerror=alert(1)>.html';
  const html = Buffer.from('<!doctype html><script>alert(document.domain)</script><h1>pwned</h1>');
  let dialogs = 0;
  for (const { page } of [A, B]) page.on('dialog', (d) => { dialogs++; d.dismiss().catch(() => {}); });
  const pagesBefore = B.context.pages().length;

  await attachByButton(A.page, { name, mimeType: 'text/html', buffer: html });
  await attachment(A.page, name).getByText('ready').waitFor();
  await sendNow(A.page, 'an html file');

  const page = B.page;
  const url = page.url();
  const link = messages(page, 'an html file').getByRole('link', { name: `${name} (${html.length} B)`, exact: true });
  await link.waitFor();
  // the name is text: no element was made from it
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.equal(dl.suggestedFilename().endsWith('.html'), true);
  assert.equal(await dl.failure(), null);
  assert.equal(page.url(), url, 'no navigation');
  assert.equal(B.context.pages().length, pagesBefore, 'no new tab');
  assert.equal(await link.evaluate((a) => a.getAttribute('download')), name);
  assert.equal(dialogs, 0, 'no script ran');
  // the blob handed out is not HTML: even opened in a tab of the page's
  // origin, it is saved, not shown
  const href = await link.evaluate((a) => a.href);
  assert.match(href, /^blob:/);
  const tab = await B.context.newPage();
  tab.on('dialog', (d) => { dialogs++; d.dismiss().catch(() => {}); });
  const [tabDl, how] = await Promise.all([
    tab.waitForEvent('download'),
    tab.goto(href).then(() => 'rendered', (e) => (/Download is starting/.test(e.message) ? 'downloaded' : e.message)),
  ]);
  assert.equal(how, 'downloaded');
  assert.equal(await tabDl.failure(), null);
  await tab.close();
  assert.equal(dialogs, 0, 'no script ran');

  // the server's own answer: attachment, sandboxed, not sniffed
  const id = await link.getAttribute('data-file');
  const res = await fetch(`${srv.url}/api/files/${id}`, { headers: { Authorization: 'Bearer ' + await token(page) } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-disposition'), /^attachment;/);
  assert.equal(res.headers.get('content-security-policy'), 'sandbox');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('content-type'), 'text/html');
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(html));
  // and no token in a URL works
  const bad = await fetch(`${srv.url}/api/files/${id}?token=${await token(page)}`);
  assert.equal(bad.status, 401);
  assert.equal(dialogs, 0);
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});

test('an edit keeps the files; a reply quotes a files-only message by its file names', async () => {
  // alice edits the text of her image message: bob still sees the image
  const mine = messages(A.page, 'look at this');
  await mine.getByRole('button', { name: 'Edit' }).click();
  await composer(A.page).fill('look at this cat');
  await composer(A.page).press('Enter');
  const theirs = messages(B.page, 'look at this cat');
  await theirs.getByText('(edited)').waitFor();
  const img = theirs.getByRole('img', { name: 'cat picture.png' });
  await until(() => img.evaluate((e) => e.naturalWidth === 320), { what: 'image after the edit' });
  // bob replies to the files-only message
  const link = B.page.getByRole('link', { name: 'report.pdf (12 KB)', exact: true });
  const filesOnly = log(B.page).getByRole('article').filter({ has: link });
  await filesOnly.getByRole('button', { name: 'Reply' }).click();
  await composer(B.page).fill('got the report');
  await composer(B.page).press('Enter');
  const quote = messages(A.page, 'got the report').getByRole('button', { name: new RegExp(`${alice} report\\.pdf`) });
  await quote.waitFor();
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});

test('six files dropped at once all upload, though chatd allows 4 uploads at once per user', async () => {
  const limited = await startChatd({ rateLimits: 'on' });
  const C = await openPage(browser, limited);
  const cdp = await C.page.context().newCDPSession(C.page);
  try {
    await signUp(C.page, uniq('carol'), PW);
    await joinRoom(C.page, uniq('burst'));
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 512 * 1024 });
    const files = Array.from({ length: 6 }, (_, i) => ({ name: `part${i}.bin`, mimeType: 'application/octet-stream', buffer: Buffer.alloc(100 * 1024, i) }));
    await drop(C.page, files);
    await C.page.getByRole('progressbar', { name: 'part5.bin' }).waitFor();
    for (const f of files) await attachment(C.page, f.name).getByText('ready').waitFor();
    assert.equal(await attachments(C.page).getByRole('alert').count(), 0, 'no upload refused');
    await sendNow(C.page, 'six parts');
    for (const f of files) await messages(C.page, 'six parts').getByRole('link', { name: `${f.name} (100 KB)` }).waitFor();
    assert.deepEqual(C.errors, []);
  } finally {
    await cdp.detach().catch(() => {});
    await C.context.close();
    await limited.cleanup();
  }
});

test('attachments are per room, and leaving a room drops its attachments', async () => {
  const page = A.page;
  const side = uniq('side');
  await joinRoom(page, side);
  await attachByButton(page, { name: 'side.txt', mimeType: 'text/plain', buffer: Buffer.from('side note') });
  await attachment(page, 'side.txt').getByText('ready').waitFor();
  // another room shows its own (none)
  await joinRoom(page, room);
  assert.equal(await attachments(page).isHidden(), true);
  await joinRoom(page, side);
  await attachment(page, 'side.txt').waitFor();
  await page.getByRole('button', { name: 'Leave', exact: true }).click();
  await roomLink(page, side).waitFor({ state: 'detached' });
  await joinRoom(page, side);
  assert.equal(await attachments(page).isHidden(), true);
  assert.equal(await attachment(page, 'side.txt').count(), 0);
  await joinRoom(page, room);
});

test('signing out revokes the blob: URLs', async () => {
  const page = B.page;
  const img = messages(page, 'look at this').getByRole('img', { name: 'cat picture.png' });
  const src = await img.getAttribute('src');
  assert.match(src, /^blob:/);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Username').waitFor();
  const status = await page.evaluate(async (u) => {
    try { await fetch(u); return 'fetched'; } catch { return 'revoked'; }
  }, src);
  assert.equal(status, 'revoked');
});
