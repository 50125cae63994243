// Scrolling back through 200 messages of history: the newest page first,
// older pages as the reader scrolls up, no jumps, no gaps, no duplicates;
// the view stays pinned to the bottom unless the reader scrolled up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq, newUser, wsAuth, join, send as wsSend } from '../integration/lib/chatd.mjs';
import { launchBrowser, openPage, signUp, joinRoom, log, messages, until, shot } from './lib.mjs';

let srv, browser, P, writer, client;
const room = uniq('history');
const N = 200;

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
  writer = await newUser(srv, 'writer');
  client = await wsAuth(srv.wsUrl, writer.token);
  await join(client, room);
  for (let i = 1; i <= N; i++) await wsSend(client, room, `history message ${String(i).padStart(3, '0')}`);
  browser = await launchBrowser();
  P = await openPage(browser, srv);
});

after(async () => {
  await client?.close().catch(() => {});
  await browser?.close();
  await srv?.cleanup();
});

const texts = (page) => messages(page).locator('.text').allInnerTexts();

async function scrollTopState(page) {
  return log(page).evaluate((el) => ({ top: el.scrollTop, height: el.scrollHeight, client: el.clientHeight }));
}

test('the newest page shows first, pinned to the bottom', async () => {
  await signUp(P.page, uniq('reader'), 'a reader password');
  await joinRoom(P.page, room);
  await messages(P.page, 'history message 200').waitFor();
  const n = await messages(P.page).count();
  assert.ok(n >= 50 && n < N, `one or two pages loaded first, got ${n}`);
  const s = await scrollTopState(P.page);
  assert.ok(s.height - s.top - s.client < 5, 'scrolled to the bottom');
  assert.ok(await messages(P.page, 'history message 200').isVisible());
});

test('scrolling up loads older pages without jumping, without gaps or duplicates', async () => {
  const page = P.page;
  for (let round = 0; round < 12; round++) {
    if (await messages(page, 'history message 001').count()) break;
    const before = await messages(page).count();
    // the first message currently in the list, and where it is on screen
    const first = messages(page).first();
    const firstText = await first.locator('.text').innerText();
    await log(page).evaluate((el) => { el.scrollTop = 0; });
    await until(async () => (await messages(page).count()) > before, { what: `older page (round ${round})` });
    // the message that was first is still where the reader left it: the
    // view was kept in place while older messages were added above it
    const box = await messages(page, firstText).boundingBox();
    const logBox = await log(page).boundingBox();
    assert.ok(box && box.y >= logBox.y - 60 && box.y <= logBox.y + 120,
      `view kept in place: "${firstText}" at y=${box && box.y}, log top ${logBox.y}`);
  }
  await messages(page, 'history message 001').waitFor({ state: 'attached' });
  const all = await texts(page);
  assert.equal(all.length, N, 'every message exactly once');
  for (let i = 0; i < N; i++) assert.equal(all[i], `history message ${String(i + 1).padStart(3, '0')}`);
  await log(page).getByText(`This is the start of #${room}.`).waitFor({ state: 'attached' });
  await log(page).evaluate((el) => { el.scrollTop = 0; });
  await shot(page, 'history-top-desktop');
});

test('a search result deep in the history opens at that message', async () => {
  const page = P.page;
  await page.reload();
  await messages(page, 'history message 200').waitFor();
  assert.equal(await messages(page, 'history message 007').count(), 0, 'not loaded yet');
  const search = page.getByRole('searchbox', { name: 'Search' });
  await search.fill('message 007');
  await search.press('Enter');
  await page.getByRole('link', { name: /history message 007/ }).click();
  const target = messages(page, 'history message 007');
  await target.waitFor();
  await until(async () => {
    const b = await target.boundingBox();
    const l = await log(page).boundingBox();
    return b && l && b.y >= l.y && b.y + b.height <= l.y + l.height;
  }, { what: 'the found message scrolled into view' });
  await page.getByRole('button', { name: 'Close results' }).click();
  // the cache is still contiguous: no gaps between 007 and 200
  const all = await texts(page);
  const i = all.indexOf('history message 007');
  assert.ok(i >= 0);
  for (let k = i; k < all.length; k++) assert.equal(all[k], `history message ${String(k - i + 7).padStart(3, '0')}`);
});

test('new messages do not pull a reader who scrolled up; they do when pinned', async () => {
  const page = P.page;
  await log(page).evaluate((el) => { el.scrollTop = el.scrollHeight / 3; });
  const s1 = await scrollTopState(page);
  await wsSend(client, room, 'a new message while scrolled up');
  await messages(page, 'a new message while scrolled up').waitFor({ state: 'attached' });
  const s2 = await scrollTopState(page);
  assert.ok(Math.abs(s2.top - s1.top) < 5, `scroll position kept (${s1.top} → ${s2.top})`);
  await page.getByRole('button', { name: 'New messages below' }).click();
  await until(async () => { const s = await scrollTopState(page); return s.height - s.top - s.client < 5; }, { what: 'scrolled to the bottom' });
  await wsSend(client, room, 'a new message while pinned');
  await messages(page, 'a new message while pinned').waitFor();
  await until(async () => { const s = await scrollTopState(page); return s.height - s.top - s.client < 5; }, { what: 'still pinned' });
  assert.deepEqual(P.errors, []);
});
