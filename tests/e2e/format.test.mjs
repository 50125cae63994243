// Message formatting in Chromium: each construct becomes the right DOM
// node, everything else stays literal, and XSS attempts in message text,
// in usernames in mentions and in link URLs stay inert text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq, newUser, register, login, wsAuth, join, send as wsSend } from '../integration/lib/chatd.mjs';
import { launchBrowser, openPage, signUp, joinRoom, messages, shot } from './lib.mjs';

let srv, browser, P, writer, client;
const room = uniq('fmt');
const reader = uniq('reader');

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
  writer = await newUser(srv, 'writer');
  client = await wsAuth(srv.wsUrl, writer.token);
  await join(client, room);
  browser = await launchBrowser();
  P = await openPage(browser, srv);
  await signUp(P.page, reader, 'a reader password');
  await joinRoom(P.page, room);
});

after(async () => {
  await client?.close().catch(() => {});
  await browser?.close();
  await srv?.cleanup();
});

/** Sends text as the writer and returns the article that shows it. */
async function show(text, marker) {
  await wsSend(client, room, text);
  const art = messages(P.page, marker);
  await art.waitFor();
  return art;
}

test('bold, italic, strike and inline code become elements', async () => {
  const art = await show('fmt1 **bold** and *italic* and ~~gone~~ and `x <y> *z*`', 'fmt1');
  const t = art.locator('.text');
  assert.equal(await t.locator('strong').innerText(), 'bold');
  assert.equal(await t.locator('em').innerText(), 'italic');
  assert.equal(await t.locator('del').innerText(), 'gone');
  assert.equal(await t.locator('code').innerText(), 'x <y> *z*');
  assert.equal(await t.locator('code em').count(), 0, 'no formatting inside code');
  assert.equal(await t.innerText(), 'fmt1 bold and italic and gone and x <y> *z*');
});

test('nested spans and literal leftovers', async () => {
  const art = await show('fmt2 **a *b* c** 2 * 3 * 4 **open ~single~', 'fmt2');
  const t = art.locator('.text');
  assert.equal(await t.locator('strong em').innerText(), 'b');
  assert.equal(await t.innerText(), 'fmt2 a b c 2 * 3 * 4 **open ~single~');
});

test('fenced code blocks keep their content literal', async () => {
  const art = await show('fmt3 before\n```\n**not bold** <b>tag</b>\n  indented\n```\nafter', 'fmt3');
  const pre = art.locator('.text pre code');
  assert.equal(await pre.innerText(), '**not bold** <b>tag</b>\n  indented');
  assert.equal(await art.locator('.text strong, .text b').count(), 0);
});

test('quotes become blockquotes, formatted inside', async () => {
  const art = await show('> fmt4 quoted **line**\n> second\nmy answer', 'fmt4');
  const q = art.locator('.text blockquote');
  assert.equal(await q.innerText(), 'fmt4 quoted line\nsecond');
  assert.equal(await q.locator('strong').innerText(), 'line');
  assert.match(await art.locator('.text').innerText(), /my answer$/);
});

test('http(s) links open in a new tab without opener or referrer; other schemes stay text', async () => {
  const art = await show('fmt5 https://example.com/a?b=1. and www.example.org and javascript:alert(1) and data:text/html,x', 'fmt5');
  const links = art.locator('.text a');
  assert.equal(await links.count(), 2);
  assert.equal(await links.nth(0).getAttribute('href'), 'https://example.com/a?b=1');
  assert.equal(await links.nth(1).getAttribute('href'), 'https://www.example.org');
  for (let i = 0; i < 2; i++) {
    assert.equal(await links.nth(i).getAttribute('target'), '_blank');
    assert.equal(await links.nth(i).getAttribute('rel'), 'noopener noreferrer');
  }
  assert.match(await art.locator('.text').innerText(), /javascript:alert\(1\) and data:text\/html,x$/);
});

test('XSS in message text, with formatting around it, stays text', async () => {
  const payload = 'fmt6 **<img src=x onerror="window.__xss=1">** `<script>window.__xss=2</script>` [x](javascript:window.__xss=3) <a href="javascript:window.__xss=4">a</a>\n```\n<svg onload="window.__xss=5">\n```\n> <iframe src="javascript:window.__xss=6">';
  const art = await show(payload, 'fmt6');
  assert.equal(await art.locator('img, script, svg, iframe, a').count(), 0);
  assert.match(await art.locator('.text strong').innerText(), /^<img src=x onerror="window.__xss=1">$/);
  // a link that only looks like one in Markdown is not a link
  await art.locator('.text').click();
  assert.equal(await P.page.evaluate(() => window.__xss), undefined);
});

test('a username in a mention: only real members are mentions, and as text', async () => {
  // a member whose name looks like markup can't exist (names are [a-z0-9_.-]),
  // so the attempt is a text that mentions someone and carries markup
  const odd = uniq('x.y-');
  await register(srv, odd, 'odd user password');
  const oddTok = await login(srv, odd, 'odd user password');
  const c2 = await wsAuth(srv.wsUrl, oddTok);
  await join(c2, room);
  await c2.close();
  const art = await show(`fmt7 @${reader} @${odd}<img src=x onerror=window.__xss=7> @nobody<b>x</b> mail a@${reader}`, 'fmt7');
  const mentions = art.locator('.text .mention');
  assert.deepEqual(await mentions.allInnerTexts(), [`@${reader}`, `@${odd}`]);
  assert.equal(await art.locator('.text .mention.me').innerText(), `@${reader}`);
  assert.equal(await art.locator('img, b').count(), 0);
  assert.match(await art.locator('.text').innerText(), /@nobody<b>x<\/b> mail a@/);
  assert.equal(await P.page.evaluate(() => window.__xss), undefined);
  await shot(P.page, 'format-desktop');
  assert.deepEqual(P.errors, []);
});
