// Mentions, reactions and replies between two users in Chromium, found by
// role and name: the Mention listbox by keyboard, the mention highlight
// and the "N mentions" badge across a reload, a reaction toggled and seen
// by the other user (also after a resync), replies with their quotes,
// jumping to an original older than the loaded history, cancel reply.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq, login, wsAuth, join as wsJoin, send as wsSend } from '../integration/lib/chatd.mjs';
import {
  launchBrowser, openPage, signUp, joinRoom, roomLink, log, messages, send, until, count, shot, connected,
} from './lib.mjs';

let srv, browser, A, B;
const alice = uniq('alice');
const bob = uniq('bob');
const room = uniq('team');
const other = uniq('side');
const deep = uniq('deep');
const PW = 'correct horse battery';

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
  browser = await launchBrowser();
  A = await openPage(browser, srv);
  B = await openPage(browser, srv);
  await signUp(A.page, alice, PW);
  await signUp(B.page, bob, PW);
  await joinRoom(A.page, other);
  await joinRoom(A.page, room);
  await joinRoom(B.page, room);
});

after(async () => {
  for (const c of socks.values()) await c.close().catch(() => {});
  await browser?.close();
  await srv?.cleanup();
});

const socks = new Map(); // username -> WebSocket client (wsSendAs)
const composer = (page) => page.getByRole('textbox', { name: 'Message', exact: true });

test('typing @ opens the Mention listbox; arrows, Escape, Enter and Tab work', async () => {
  const page = B.page;
  const box = composer(page);
  const list = page.getByRole('listbox', { name: 'Mention' });
  // the member list arrives with `joined`: alice is offered
  await page.getByRole('list', { name: 'Members' }).getByText(alice).waitFor();
  await box.fill('');
  await box.pressSequentially('hi @');
  await list.waitFor();
  assert.equal(await box.getAttribute('aria-expanded'), 'true');
  assert.equal(await box.getAttribute('aria-controls'), await list.getAttribute('id'));
  const opt = list.getByRole('option', { name: alice, exact: true });
  await opt.waitFor();
  assert.equal(await list.getByRole('option', { name: bob }).count(), 0, 'not oneself');
  assert.equal(await opt.getAttribute('aria-selected'), 'true');
  assert.equal(await box.getAttribute('aria-activedescendant'), await opt.getAttribute('id'));
  // Escape closes the list and leaves the text
  await box.press('Escape');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  assert.equal(await box.inputValue(), 'hi @');
  // typing more filters; a prefix of nobody closes it
  await box.pressSequentially(alice.slice(0, 3));
  await opt.waitFor();
  await box.pressSequentially('zzz');
  await list.waitFor({ state: 'hidden' });
  for (let i = 0; i < 3; i++) await box.press('Backspace');
  await opt.waitFor();
  // ArrowDown wraps around the single option; Enter picks it
  await box.press('ArrowDown');
  assert.equal(await opt.getAttribute('aria-selected'), 'true');
  await box.press('Enter');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), `hi @${alice} `);
  // Tab picks too, in the middle of the text
  await box.pressSequentially('and @' + alice.slice(0, 2));
  await opt.waitFor();
  await box.press('Tab');
  assert.equal(await box.inputValue(), `hi @${alice} and @${alice} `);
  await expectFocused(page, box);
  // Enter now sends (the list is closed)
  await box.press('Enter');
  await messages(A.page, `hi @${alice} and`).waitFor();
  assert.deepEqual(B.errors, []);
});

async function expectFocused(page, locator) {
  await until(() => locator.evaluate((el) => el === document.activeElement), { what: 'focus' });
}

test('a message mentioning me is highlighted, with the mention as a span', async () => {
  const art = messages(A.page, `hi @${alice} and`);
  await until(async () => /\bmentioned\b/.test(await art.getAttribute('class')), { what: 'highlight' });
  assert.equal(await art.evaluate((el) => document.getElementById(el.getAttribute('aria-describedby')).textContent), 'Mentions you');
  assert.deepEqual(await art.locator('.mention.me').allInnerTexts(), [`@${alice}`, `@${alice}`]);
  // bob's own copy mentions alice, not him: no highlight
  const mine = messages(B.page, `hi @${alice} and`);
  assert.doesNotMatch(await mine.getAttribute('class'), /\bmentioned\b/);
  await shot(A.page, 'mentions-desktop');
});

test('unread mentions show "N mentions" in the sidebar, live and after a reload', async () => {
  await roomLink(A.page, other).click();
  await roomLink(A.page, other).and(A.page.locator('[aria-current="page"]')).waitFor();
  await send(B.page, `ping @${alice}`);
  await send(B.page, 'no mention here');
  await send(B.page, '@room all hands');
  const link = roomLink(A.page, room);
  await link.getByLabel('3 unread').waitFor();
  await link.getByLabel('2 mentions').waitFor();
  await A.page.reload();
  await connected(A.page);
  await roomLink(A.page, room).getByLabel('2 mentions').waitFor();
  await roomLink(A.page, room).getByLabel('3 unread').waitFor();
  await shot(A.page, 'mentions-badge-desktop');
  // opening the room reads them: both badges go
  await roomLink(A.page, room).click();
  await messages(A.page, '@room all hands').waitFor();
  await until(async () => (await roomLink(A.page, room).getByLabel(/mentions|unread/).count()) === 0, { what: 'badges cleared' });
  assert.match(await messages(A.page, '@room all hands').getAttribute('class'), /\bmentioned\b/);
  // and stay gone after a reload
  await A.page.reload();
  await connected(A.page);
  await messages(A.page, '@room all hands').waitFor();
  assert.equal(await roomLink(A.page, room).getByLabel(/mentions/).count(), 0);
});

test('a reaction toggled by one user is seen by the other: aria-pressed, name, title', async () => {
  await send(A.page, 'react to this');
  const bobMsg = messages(B.page, 'react to this');
  await bobMsg.waitFor();
  await bobMsg.hover();
  await bobMsg.getByRole('button', { name: 'Add reaction' }).click();
  const picker = B.page.getByRole('dialog', { name: 'Reactions' });
  await picker.waitFor();
  await picker.getByRole('button', { name: '👍', exact: true }).click();
  await picker.waitFor({ state: 'detached' });
  const bobBtn = bobMsg.getByRole('button', { name: '👍 1', exact: true });
  await bobBtn.waitFor();
  assert.equal(await bobBtn.getAttribute('aria-pressed'), 'true');
  const aliceMsg = messages(A.page, 'react to this');
  const aliceBtn = aliceMsg.getByRole('button', { name: '👍 1', exact: true });
  await aliceBtn.waitFor();
  assert.equal(await aliceBtn.getAttribute('aria-pressed'), 'false');
  assert.equal(await aliceBtn.getAttribute('title'), `Reacted by ${bob}`);
  // alice joins in: 2 on both sides, pressed for each
  await aliceBtn.click();
  const a2 = aliceMsg.getByRole('button', { name: '👍 2', exact: true });
  const b2 = bobMsg.getByRole('button', { name: '👍 2', exact: true });
  await a2.waitFor();
  await b2.waitFor();
  assert.equal(await a2.getAttribute('aria-pressed'), 'true');
  assert.equal(await b2.getAttribute('aria-pressed'), 'true');
  assert.equal(await b2.getAttribute('title'), `Reacted by ${bob}, ${alice}`);
  await shot(B.page, 'reactions-desktop');
  // bob takes his back
  await b2.click();
  const b1 = bobMsg.getByRole('button', { name: '👍 1', exact: true });
  await b1.waitFor();
  assert.equal(await b1.getAttribute('aria-pressed'), 'false');
  await aliceMsg.getByRole('button', { name: '👍 1', exact: true }).waitFor();
  assert.equal(await aliceMsg.getByRole('button', { name: '👍 1', exact: true }).getAttribute('title'), `Reacted by ${alice}`);
});

test('the picker works by keyboard and gives the focus back', async () => {
  const page = B.page;
  const msg = messages(page, 'react to this');
  const add = msg.getByRole('button', { name: 'Add reaction' });
  await add.focus();
  assert.ok(await add.isVisible(), 'message buttons show on focus');
  await page.keyboard.press('Enter');
  const picker = page.getByRole('dialog', { name: 'Reactions' });
  await picker.waitFor();
  await expectFocused(page, picker.getByRole('button').first());
  await page.keyboard.press('Escape');
  await picker.waitFor({ state: 'detached' });
  await expectFocused(page, add);
  await page.keyboard.press('Enter');
  await picker.waitFor();
  await page.keyboard.press('ArrowRight'); // the second emoji: ❤️
  await page.keyboard.press('Enter');
  await msg.getByRole('button', { name: '❤️ 1', exact: true }).waitFor();
  await expectFocused(page, msg.getByRole('button', { name: 'Add reaction' }));
  await messages(A.page, 'react to this').getByRole('button', { name: '❤️ 1', exact: true }).waitFor();
});

test('reactions made while a user was offline arrive with the resync', async () => {
  const aliceMsg = messages(A.page, 'react to this');
  await A.context.setOffline(true);
  await A.page.getByRole('status').filter({ hasText: /^(Offline|Reconnecting…)$/ }).waitFor();
  const bobMsg = messages(B.page, 'react to this');
  await bobMsg.getByRole('button', { name: '👍 1', exact: true }).click(); // bob adds his back
  await bobMsg.getByRole('button', { name: '👍 2', exact: true }).waitFor();
  await bobMsg.getByRole('button', { name: '❤️ 1', exact: true }).click(); // and removes the heart
  await count(bobMsg.getByRole('button', { name: /^❤️/ }), 0, 'heart gone for bob');
  await A.context.setOffline(false);
  await connected(A.page);
  await aliceMsg.getByRole('button', { name: '👍 2', exact: true }).waitFor();
  await count(aliceMsg.getByRole('button', { name: /^❤️/ }), 0, 'heart gone for alice');
  // and after a reload, from history
  await A.page.reload();
  await connected(A.page);
  const again = messages(A.page, 'react to this').getByRole('button', { name: '👍 2', exact: true });
  await again.waitFor();
  assert.equal(await again.getAttribute('aria-pressed'), 'true');
});

test('Reply shows "Replying to USER"; Cancel reply and Escape cancel it', async () => {
  const page = B.page;
  await send(A.page, 'the question');
  const q = messages(page, 'the question');
  await q.waitFor();
  await q.hover();
  await q.getByRole('button', { name: 'Reply' }).click();
  await page.getByText(`Replying to ${alice}`, { exact: true }).waitFor();
  await expectFocused(page, composer(page));
  await page.getByRole('button', { name: 'Cancel reply' }).click();
  await page.getByText(`Replying to ${alice}`).waitFor({ state: 'hidden' });
  assert.equal(await page.getByRole('button', { name: 'Cancel reply' }).isVisible(), false);
  await q.getByRole('button', { name: 'Reply' }).focus();
  await page.keyboard.press('Enter');
  await page.getByText(`Replying to ${alice}`, { exact: true }).waitFor();
  await composer(page).press('Escape');
  await page.getByText(`Replying to ${alice}`).waitFor({ state: 'hidden' });
  // a message sent now is not a reply
  await send(page, 'not a reply');
  await messages(A.page, 'not a reply').waitFor();
  assert.equal(await messages(A.page, 'not a reply').getByRole('button', { name: /the question/ }).count(), 0);
});

test('a reply quotes its original; the quote jumps to it', async () => {
  const page = B.page;
  const q = messages(page, 'the question');
  await q.hover();
  await q.getByRole('button', { name: 'Reply' }).click();
  await send(page, 'the answer');
  await page.getByText(`Replying to ${alice}`).waitFor({ state: 'hidden' });
  const ans = messages(A.page, 'the answer');
  await ans.waitFor();
  const quote = ans.getByRole('button', { name: new RegExp(`${alice} the question`) });
  await quote.waitFor();
  // push the original out of view, then jump back with the quote
  for (let i = 0; i < 30; i++) await wsSendAs(alice, room, `filler ${i}`);
  await messages(A.page, 'filler 29').waitFor();
  await messages(A.page, 'the answer').scrollIntoViewIfNeeded();
  await ans.getByRole('button', { name: new RegExp(`${alice} the question`) }).click();
  const orig = log(A.page).getByRole('article', { name: /the question$/ });
  await expectFocused(A.page, orig);
  await inView(A.page, orig);
  assert.match(await orig.getAttribute('class'), /\bfocus\b/);
});

/** A WebSocket client signed in as name (one per user, closed at the end). */
async function sockOf(name) {
  let c = socks.get(name);
  if (!c) {
    c = await wsAuth(srv.wsUrl, await login(srv, name, PW));
    socks.set(name, c);
  }
  return c;
}

async function wsSendAs(name, r, text, extra) {
  return wsSend(await sockOf(name), r, text, extra);
}

async function inView(page, locator) {
  await until(async () => {
    const b = await locator.boundingBox();
    const l = await log(page).boundingBox();
    return b && l && b.y >= l.y && b.y + b.height <= l.y + l.height;
  }, { what: 'message scrolled into view' });
}

test('a deleted original shows "Deleted message"', async () => {
  const orig = await wsSendAs(alice, room, 'soon gone');
  await wsSendAs(bob, room, 'answer to a gone message', { reply_to: orig.id });
  const ans = messages(A.page, 'answer to a gone message');
  await ans.getByRole('button', { name: new RegExp(`${alice} soon gone`) }).waitFor();
  const c = socks.get(alice);
  const del = await c.request({ type: 'delete', room, id: orig.id });
  assert.equal(del.type, 'deleted');
  await ans.getByRole('button', { name: 'Deleted message' }).waitFor();
});

test('a reply to a message far older than the loaded history opens it with around', async () => {
  await wsJoin(await sockOf(alice), deep);
  await wsJoin(await sockOf(bob), deep);
  await wsSendAs(alice, deep, 'setup');
  const first = await wsSendAs(alice, deep, 'the deep original');
  // more than the page's jump window: the original stays out of the cache
  for (let i = 0; i < 320; i++) await wsSendAs(alice, deep, `deep filler ${String(i).padStart(3, '0')}`);
  await wsSendAs(bob, deep, 'a late reply', { reply_to: first.id });
  const page = B.page;
  await joinRoom(page, deep);
  const reply = messages(page, 'a late reply');
  await reply.waitFor();
  assert.equal(await log(page).getByRole('article', { name: /the deep original$/ }).count(), 0, 'not loaded yet');
  // the quote knows the original (fetched on its own)
  const quote = reply.getByRole('button', { name: new RegExp(`${alice} the deep original`) });
  await quote.waitFor();
  await quote.click();
  const orig = log(page).getByRole('article', { name: /the deep original$/ });
  await orig.waitFor();
  await expectFocused(page, orig);
  await inView(page, orig);
  assert.match(await orig.getAttribute('class'), /\bfocus\b/);
  assert.match(page.url(), new RegExp(`#/room/${deep}/${first.id}$`));
  // the view around it is contiguous: setup, the original, fillers in order
  const texts = await messages(page).locator('.text').allInnerTexts();
  assert.equal(texts[0], 'setup');
  assert.equal(texts[1], 'the deep original');
  for (let k = 2; k < texts.length; k++) assert.equal(texts[k], `deep filler ${String(k - 2).padStart(3, '0')}`);
  await shot(page, 'reply-jump-desktop');
  // reacting in the view works too, and "Jump to latest messages" goes back
  await orig.hover();
  await orig.getByRole('button', { name: 'Add reaction' }).click();
  await page.getByRole('dialog', { name: 'Reactions' }).getByRole('button', { name: '🎉' }).click();
  await orig.getByRole('button', { name: '🎉 1', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Jump to latest messages' }).click();
  await messages(page, 'a late reply').waitFor();
  await inView(page, messages(page, 'a late reply'));
  await count(log(page).getByRole('article', { name: /the deep original$/ }), 0, 'the old view is gone');
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});

test('scrolling down from a jump view joins it to the newest messages', async () => {
  const page = B.page;
  const first = messages(page, 'a late reply').getByRole('button', { name: /the deep original/ });
  await first.click();
  await log(page).getByRole('article', { name: /the deep original$/ }).waitFor();
  for (let round = 0; round < 20 && !(await messages(page, 'a late reply').count()); round++) {
    const n = await messages(page).count();
    await log(page).evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await until(async () => (await messages(page).count()) !== n, { what: `a newer page (round ${round})` });
  }
  await messages(page, 'a late reply').waitFor();
  const texts = await messages(page).locator('.text').allInnerTexts();
  const i = texts.indexOf('the deep original');
  assert.equal(texts.lastIndexOf('the deep original'), i);
  assert.ok(i >= 0);
  for (let k = i + 1; k < texts.length - 1; k++) assert.equal(texts[k], `deep filler ${String(k - i - 1).padStart(3, '0')}`);
  assert.equal(texts[texts.length - 1], 'a late reply');
  await until(async () => !(await page.getByRole('button', { name: 'Jump to latest messages' }).isVisible()), { what: 'view joined' });
  assert.deepEqual(B.errors, []);
});

test('a search result opens its room at the message with an around page', async () => {
  const page = A.page;
  const far = uniq('far');
  const c = await sockOf(alice);
  await wsJoin(c, far);
  for (let i = 0; i < 400; i++) await wsSend(c, far, i === 100 ? 'the needle in the haystack' : `hay ${String(i).padStart(3, '0')}`);
  await roomLink(page, far).waitFor(); // the room event reached the page
  const search = page.getByRole('searchbox', { name: 'Search' });
  await search.fill('needle');
  await search.press('Enter');
  await page.getByRole('link', { name: /the needle in the haystack/ }).click();
  const hit = log(page).getByRole('article', { name: /the needle in the haystack$/ });
  await expectFocused(page, hit);
  await inView(page, hit);
  // only the page around it was loaded, not the 300 messages after it
  const texts = await messages(page).locator('.text').allInnerTexts();
  assert.ok(texts.length <= 50 * 4, `an around page and a few more, got ${texts.length}`);
  assert.equal(await messages(page, 'hay 399').count(), 0);
  const i = texts.indexOf('the needle in the haystack');
  for (let k = 0; k < texts.length; k++) {
    if (k !== i) assert.equal(texts[k], `hay ${String(k + 100 - i).padStart(3, '0')}`);
  }
  await page.getByRole('button', { name: 'Close results' }).click();
  await page.getByRole('button', { name: 'Jump to latest messages' }).click();
  await messages(page, 'hay 399').waitFor();
  assert.deepEqual(A.errors, []);
});

test('a message deleted by a moderator names who deleted it', async () => {
  // alice created the room by joining it first: she is its owner
  for (const { page } of [A, B]) await roomLink(page, room).click();
  const m = await wsSendAs(bob, room, 'a message the owner removes');
  await messages(A.page, 'a message the owner removes').waitFor();
  await messages(B.page, 'a message the owner removes').waitFor();
  const del = await (await sockOf(alice)).request({ type: 'delete', room, id: m.id });
  assert.equal(del.deleted_by, alice);
  for (const { page } of [A, B]) {
    await log(page).getByText(`This message was deleted by ${alice}.`).waitFor();
    await count(messages(page, 'a message the owner removes'), 0, 'text gone');
  }
});
