// Two users in two browser contexts: sign up, join a room, talk both ways,
// typing, presence, unread counts, edit/delete, XSS, DMs with read receipts,
// search, leave; screenshots at desktop and phone width.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq } from '../integration/lib/chatd.mjs';
import {
  launchBrowser, openPage, signUp, joinRoom, roomLink, log, messages, send, until, count, shot,
  DESKTOP, PHONE,
} from './lib.mjs';

let srv, browser, A, B;
const alice = uniq('alice');
const bob = uniq('bob');
const room = uniq('general');
const other = uniq('random');
const PW = 'correct horse battery';

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
  browser = await launchBrowser();
  A = await openPage(browser, srv);
  B = await openPage(browser, srv);
});

after(async () => {
  await browser?.close();
  await srv?.cleanup();
});

test('sign up both users and join a room', async () => {
  await signUp(A.page, alice, PW);
  await signUp(B.page, bob, PW);
  await joinRoom(A.page, room);
  await joinRoom(B.page, room);
  // both see the room highlighted in the sidebar
  for (const { page } of [A, B]) {
    await roomLink(page, room).waitFor();
    assert.equal(await roomLink(page, room).getAttribute('aria-current'), 'page');
  }
});

test('messages go both ways, with author, time and grouping', async () => {
  await send(A.page, 'hello from alice');
  await messages(B.page, 'hello from alice').waitFor();
  await send(B.page, 'hi alice, bob here');
  await messages(A.page, 'hi alice, bob here').waitFor();
  await send(B.page, 'second line from bob');
  await messages(A.page, 'second line from bob').waitFor();

  const art = messages(B.page, 'hello from alice');
  assert.match(await art.textContent(), new RegExp(alice));
  assert.equal(await art.locator('time').count(), 1);
  // exactly one copy on each side (the sender's pending copy was reconciled)
  for (const { page } of [A, B]) {
    await count(messages(page, 'hello from alice'), 1, 'one copy of the message');
    await count(messages(page, 'second line from bob'), 1, 'one copy');
  }
  // Shift+Enter adds a line instead of sending
  const box = A.page.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill('line one');
  await box.press('Shift+Enter');
  await box.pressSequentially('line two');
  await box.press('Enter');
  await messages(B.page, 'line two').waitFor();
  assert.match(await messages(B.page, 'line two').locator('.text').innerText(), /line one\nline two/);
  // a day separator is shown
  await log(A.page).getByRole('heading', { name: 'Today' }).waitFor();
});

test('typing indicator and presence', async () => {
  const box = A.page.getByRole('textbox', { name: 'Message', exact: true });
  await box.pressSequentially('typing something');
  await B.page.getByText(`${alice} is typing…`).waitFor();
  await box.fill('');
  // presence: the member list shows who is online
  const members = B.page.getByRole('list', { name: 'Members' });
  await members.getByRole('listitem').filter({ hasText: alice }).filter({ hasText: 'online' }).waitFor();
  // when alice's page goes away, bob sees her offline; then she comes back
  const aliceUrl = A.page.url();
  await A.page.goto('about:blank');
  await members.getByRole('listitem').filter({ hasText: alice }).filter({ hasText: 'offline' }).waitFor();
  await A.page.goto(aliceUrl);
  await A.page.getByRole('status').filter({ hasText: /^Connected$/ }).waitFor();
  await members.getByRole('listitem').filter({ hasText: alice }).filter({ hasText: ', online' }).waitFor();
  // the token survived the reload: alice is still signed in, in the same room
  await A.page.getByRole('button', { name: 'Log out' }).waitFor();
  await roomLink(A.page, room).and(A.page.locator('[aria-current="page"]')).waitFor();
});

test('unread counts rise in another room and clear when it is opened', async () => {
  await joinRoom(B.page, other);
  for (let i = 1; i <= 3; i++) await send(A.page, `unread ${i}`);
  await roomLink(B.page, room).getByLabel('3 unread').waitFor();
  await shot(B.page, 'chat-unread-desktop');
  await roomLink(B.page, room).click();
  await messages(B.page, 'unread 3').waitFor();
  await until(async () => (await roomLink(B.page, room).getByLabel(/unread/).count()) === 0, { what: 'unread badge cleared' });
  // the read position was stored by the server: a reload shows no unread
  await B.page.reload();
  await B.page.getByRole('status').filter({ hasText: /^Connected$/ }).waitFor();
  await roomLink(B.page, room).waitFor();
  assert.equal(await roomLink(B.page, room).getByLabel(/unread/).count(), 0);
});

test('edit and delete show on the other side', async () => {
  await send(A.page, 'a message to edit');
  await messages(B.page, 'a message to edit').waitFor();
  const mine = messages(A.page, 'a message to edit');
  await mine.hover();
  await mine.getByRole('button', { name: 'Edit' }).click();
  const box = A.page.getByRole('textbox', { name: 'Message', exact: true });
  await until(async () => (await box.inputValue()) === 'a message to edit', { what: 'composer holds the text' });
  await box.fill('an edited message');
  await box.press('Enter');
  const edited = messages(B.page, 'an edited message');
  await edited.waitFor();
  await edited.getByText('(edited)').waitFor();
  await count(messages(B.page, 'a message to edit'), 0);

  await send(A.page, 'a message to delete');
  await messages(B.page, 'a message to delete').waitFor();
  const del = messages(A.page, 'a message to delete');
  await del.hover();
  await del.getByRole('button', { name: 'Delete' }).click();
  await count(messages(B.page, 'a message to delete'), 0, 'deleted text gone');
  await count(messages(A.page, 'a message to delete'), 0, 'deleted text gone for the author');
  await log(B.page).getByText('This message was deleted.').waitFor();
  // only own messages have Edit/Delete
  const theirs = messages(B.page, 'an edited message');
  assert.equal(await theirs.getByRole('button', { name: 'Edit' }).count(), 0);
});

test('an XSS payload renders as text and URLs become safe links', async () => {
  const payload = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b>`;
  await send(A.page, payload);
  const art = messages(B.page, '<img src=x');
  await art.waitFor();
  assert.equal(await art.locator('.text').innerText(), payload);
  assert.equal(await art.locator('img, script, b').count(), 0);
  assert.equal(await B.page.evaluate(() => window.__xss), undefined);
  assert.equal(await A.page.evaluate(() => window.__xss), undefined);

  await send(A.page, 'see https://example.com/a?b=1&c=2. and javascript:alert(1)');
  const link = messages(B.page, 'example.com').getByRole('link');
  await link.waitFor();
  assert.equal(await link.count(), 1);
  assert.equal(await link.getAttribute('href'), 'https://example.com/a?b=1&c=2');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
});

test('direct messages with read receipts', async () => {
  await A.page.getByLabel('Start a DM with').fill(bob);
  await A.page.getByRole('button', { name: 'Start DM' }).click();
  await roomLink(A.page, bob).and(A.page.locator('[aria-current="page"]')).waitFor();
  await send(A.page, 'a private hello');
  // bob gets the DM in his sidebar with an unread count
  await roomLink(B.page, alice).getByLabel('1 unread').waitFor();
  await roomLink(B.page, alice).click();
  await messages(B.page, 'a private hello').waitFor();
  // alice sees that bob read it
  await messages(A.page, 'a private hello').getByText(`Seen by ${bob}`).waitFor();
  // DMs can't be left
  assert.equal(await A.page.getByRole('button', { name: 'Leave' }).count(), 0);
});

test('search finds a message and links to it in its room', async () => {
  await roomLink(A.page, room).click();
  await roomLink(B.page, room).click();
  await roomLink(B.page, room).and(B.page.locator('[aria-current="page"]')).waitFor();
  await send(B.page, 'needle in the haystack');
  await messages(A.page, 'needle in the haystack').waitFor();
  await roomLink(A.page, bob).click();
  const search = A.page.getByRole('searchbox', { name: 'Search' });
  await search.fill('haystack');
  await search.press('Enter');
  const result = A.page.getByRole('link', { name: /needle in the haystack/ });
  await result.waitFor();
  await result.click();
  await roomLink(A.page, room).and(A.page.locator('[aria-current="page"]')).waitFor();
  await messages(A.page, 'needle in the haystack').waitFor();
  await A.page.getByRole('button', { name: 'Close results' }).click();
});

test('screenshots at desktop and phone width', async () => {
  await roomLink(A.page, room).click();
  await messages(A.page, 'needle in the haystack').waitFor();
  await shot(A.page, 'chat-desktop', DESKTOP);
  await shot(A.page, 'chat-phone', PHONE);
  // on a phone the rooms are behind a button, and the composer still works
  await A.page.getByRole('button', { name: 'Show rooms' }).click();
  await A.page.getByRole('navigation', { name: 'Rooms' }).getByLabel('Room name').waitFor();
  await shot(A.page, 'chat-phone-rooms');
  await A.page.keyboard.press('Escape');
  await send(A.page, 'sent from a phone');
  await messages(B.page, 'sent from a phone').waitFor();
  await A.page.setViewportSize(DESKTOP);
  // dark theme
  await A.page.emulateMedia({ colorScheme: 'dark' });
  await shot(A.page, 'chat-desktop-dark');
  await A.page.emulateMedia({ colorScheme: 'light' });
});

test('leave a room', async () => {
  await joinRoom(A.page, other);
  await A.page.getByRole('button', { name: 'Leave' }).click();
  await count(roomLink(A.page, other), 0, 'room gone from the sidebar');
});

test('log out and no script errors', async () => {
  await A.page.getByRole('button', { name: 'Log out' }).click();
  await A.page.getByRole('button', { name: 'Log in' }).waitFor();
  await A.page.reload();
  await A.page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});
