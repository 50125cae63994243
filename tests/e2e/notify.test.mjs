// Notifications (issue 14): "Enable notifications" asks for the permission,
// a hidden tab gets a desktop notification for what the room's level allows
// (new rooms: mentions; DMs: everything; "All messages"; "Nothing"), a click
// opens the message, the level round-trips to the server, and the tab title
// and favicon show the unread count. The permission is granted to the test's
// browser context; an init script records every Notification and lets the
// test hide the tab (document.visibilityState).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq, wsAuth } from '../integration/lib/chatd.mjs';
import { launchBrowser, openPage, signUp, joinRoom, roomLink, messages, send, until, connected } from './lib.mjs';

let srv, browser, A, B;
const alice = uniq('alice');
const bob = uniq('bob');
const room1 = uniq('general');
const room2 = uniq('random');
const PW = 'correct horse battery';

function recordNotifications() {
  let vis = 'visible';
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get() { return vis; } });
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get() { return vis !== 'visible'; } });
  window.__setVisible = (v) => { vis = v ? 'visible' : 'hidden'; document.dispatchEvent(new Event('visibilitychange')); };
  window.__notes = [];
  window.__asked = 0;
  const N = window.Notification;
  class Recorded extends N {
    constructor(title, opts) {
      const rec = { title, body: opts && opts.body };
      window.__notes.push(rec);
      super(title, opts);
      rec.n = this;
    }
    static requestPermission(...a) { window.__asked++; return N.requestPermission(...a); }
  }
  window.Notification = Recorded;
}

const notes = (page) => page.evaluate(() => window.__notes.map(({ title, body }) => ({ title, body })));
const level = (page) => page.getByRole('combobox', { name: 'Notifications' });

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
  browser = await launchBrowser();
  A = await openPage(browser, srv);
  B = await openPage(browser, srv, { initScript: recordNotifications, permissions: ['notifications'] });
});

after(async () => {
  await browser?.close();
  await srv?.cleanup();
});

test('sign up, join two rooms; new rooms notify about mentions', async () => {
  await signUp(A.page, alice, PW);
  await signUp(B.page, bob, PW);
  for (const r of [room1, room2]) {
    await joinRoom(A.page, r);
    await joinRoom(B.page, r);
    assert.equal(await level(B.page).inputValue(), 'mentions');
  }
  // the page never asked for the permission on its own
  assert.equal(await B.page.evaluate(() => window.__asked), 0);
});

test('the level round-trips to the server', async () => {
  await level(B.page).selectOption({ label: 'All messages' });
  const token = await B.page.evaluate(() => localStorage.getItem('chatd.token'));
  await until(async () => {
    const c = await wsAuth(srv.wsUrl, token);
    const states = Object.fromEntries(c.hello.rooms.map((s) => [s.name, s.notify]));
    await c.close();
    return states[room2] === 'all' && states[room1] === 'mentions';
  }, { what: 'notify levels stored' });
  await B.page.reload();
  await connected(B.page);
  await roomLink(B.page, room2).and(B.page.locator('[aria-current="page"]')).waitFor();
  await until(async () => (await level(B.page).inputValue()) === 'all', { what: 'All messages after reload' });
  await roomLink(B.page, room1).click();
  await until(async () => (await level(B.page).inputValue()) === 'mentions', { what: 'Mentions in room1' });
});

test('"Enable notifications" asks for the permission', async () => {
  await B.page.getByRole('button', { name: 'Enable notifications' }).click();
  await B.page.getByRole('button', { name: 'Disable notifications' }).waitFor();
  assert.equal(await B.page.evaluate(() => window.__asked), 1);
});

test('hidden tab: a mention notifies, a plain message in a mentions-level room does not', async () => {
  await B.page.evaluate(() => window.__setVisible(false));
  await roomLink(A.page, room1).click();
  await send(A.page, 'just chatting here');
  await send(A.page, `@${bob} look here please`);
  await until(async () => (await notes(B.page)).length === 1, { what: 'one notification' });
  assert.deepEqual(await notes(B.page), [{ title: `${alice} in #${room1}`, body: `@${bob} look here please` }]);
  // the sidebar counts it, besides the unread messages
  await roomLink(B.page, room1).filter({ hasText: '1 mentions' }).filter({ hasText: '2 unread' }).waitFor();
});

test('"All messages" notifies every message; "Nothing" none; DMs by default', async () => {
  await roomLink(A.page, room2).click();
  await send(A.page, 'anything at all');
  await until(async () => (await notes(B.page)).length === 2, { what: 'a notification from room2' });
  assert.deepEqual((await notes(B.page))[1], { title: `${alice} in #${room2}`, body: 'anything at all' });

  await B.page.evaluate(() => window.__setVisible(true));
  await level(B.page).selectOption({ label: 'Nothing' }); // room1 is open
  await B.page.evaluate(() => window.__setVisible(false));
  const token = await B.page.evaluate(() => localStorage.getItem('chatd.token'));
  await until(async () => {
    const c = await wsAuth(srv.wsUrl, token);
    const st = c.hello.rooms.find((s) => s.name === room1);
    await c.close();
    return st.notify === 'none';
  }, { what: 'level none stored' });
  await roomLink(A.page, room1).click();
  await send(A.page, `@${bob} you will not hear this`);
  await A.page.getByLabel('Start a DM with').fill(bob);
  await A.page.getByRole('button', { name: 'Start DM' }).click();
  await roomLink(A.page, bob).and(A.page.locator('[aria-current="page"]')).waitFor();
  await send(A.page, 'a direct message');
  await until(async () => (await notes(B.page)).length === 3, { what: 'the DM notification' });
  assert.deepEqual((await notes(B.page))[2], { title: alice, body: 'a direct message' });
});

test('the tab title and favicon show the unread count', async () => {
  await B.page.evaluate(() => window.__setVisible(true)); // room1 is open: read now
  // unread: room2's one message, the DM's one; room1 shows its 2 mentions until read
  await until(async () => (await B.page.title()).startsWith('(2) '), { what: 'title (2)' });
  assert.equal(await roomLink(B.page, room1).getByText(/mention/).count(), 0);
  await roomLink(B.page, room2).click();
  // unread: the DM's one message
  await until(async () => (await B.page.title()).startsWith('(1) '), { what: 'title (1)' });
  await roomLink(A.page, room1).click();
  await send(A.page, 'first unread');
  await send(A.page, 'second unread');
  await until(async () => (await B.page.title()).startsWith('(3) '), { what: 'title (3)' });
  const icon = B.page.locator('link[rel="icon"]');
  assert.match(await icon.getAttribute('href'), /^data:image\/svg\+xml,/);
  assert.equal(await icon.getAttribute('data-count'), '3');
  await roomLink(B.page, alice).click();
  await until(async () => (await B.page.title()).startsWith('(2) '), { what: 'title (2) after reading the DM' });
  assert.equal(await level(B.page).inputValue(), 'all'); // a DM keeps chatd's default
  await roomLink(B.page, room1).click();
  await until(async () => !(await B.page.title()).startsWith('('), { what: 'no count once everything is read' });
  assert.equal(await icon.getAttribute('href'), 'favicon.svg');
});

test('clicking a notification opens its message', async () => {
  await roomLink(B.page, room2).click();
  await B.page.evaluate(() => window.__notes[0].n.onclick());
  await roomLink(B.page, room1).and(B.page.locator('[aria-current="page"]')).waitFor();
  const art = messages(B.page, 'look here please');
  await until(async () => art.evaluate((el) => el === document.activeElement), { what: 'the message focused' });
});

test('no script errors', () => {
  for (const x of [A, B]) assert.deepEqual(x.errors, []);
});
