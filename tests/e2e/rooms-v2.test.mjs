// Team rooms on the page (issue 14): the "Create room" dialog, a private room
// invisible to a third user, the Members dialog with invitation (completion
// from GET /api/users), role changes, kick and ban seen from both sides,
// topic editing, keyboard use and XSS attempts in topics and room names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq } from '../integration/lib/chatd.mjs';
import { launchBrowser, openPage, signUp, joinRoom, roomLink, messages, send, until, shot, PHONE, DESKTOP } from './lib.mjs';

let srv, browser, A, B, C;
const alice = uniq('alice');
const bob = uniq('bob');
const carol = uniq('carol');
const secret = uniq('secret');
const open = uniq('lobby');
const PW = 'correct horse battery';

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
  browser = await launchBrowser();
  A = await openPage(browser, srv);
  B = await openPage(browser, srv);
  C = await openPage(browser, srv);
});

after(async () => {
  await browser?.close();
  await srv?.cleanup();
});

const dialog = (page, name) => page.getByRole('dialog', { name });
const members = (page) => dialog(page, 'Members').getByRole('list', { name: 'Members' });
const row = (page, user) => members(page).getByRole('listitem').filter({ hasText: user });

async function createRoom(page, name, { priv = false, topic = '' } = {}) {
  await page.getByRole('button', { name: 'Create room' }).click();
  const dlg = dialog(page, 'Create room');
  await dlg.getByRole('textbox', { name: 'Room name' }).fill(name);
  if (priv) await dlg.getByRole('checkbox', { name: 'Private' }).check();
  if (topic) await dlg.getByRole('textbox', { name: 'Topic' }).fill(topic);
  await dlg.getByRole('button', { name: 'Create', exact: true }).click();
  await dlg.waitFor({ state: 'detached' });
  await roomLink(page, name).and(page.locator('[aria-current="page"]')).waitFor();
}

async function openMembers(page) {
  await page.getByRole('button', { name: 'Members', exact: true }).click();
  await dialog(page, 'Members').waitFor();
}

async function closeMembers(page) {
  await dialog(page, 'Members').getByRole('button', { name: 'Close' }).click();
  await dialog(page, 'Members').waitFor({ state: 'hidden' });
}

test('sign up three users', async () => {
  await signUp(A.page, alice, PW);
  await signUp(B.page, bob, PW);
  await signUp(C.page, carol, PW);
});

test('create a private room with a topic: lock in the sidebar and the head', async () => {
  await createRoom(A.page, secret, { priv: true, topic: 'Plans for the launch' });
  const head = A.page.getByRole('main');
  await head.getByText('Plans for the launch').waitFor();
  await head.getByRole('img', { name: 'Private room' }).waitFor();
  await roomLink(A.page, secret).getByRole('img', { name: 'private' }).waitFor();
  // the sidebar's join form still works and is the only "Room name" now
  assert.equal(await A.page.getByLabel('Room name').count(), 1);
  // a name in use is refused in the dialog
  await A.page.getByRole('button', { name: 'Create room' }).click();
  const dlg = dialog(A.page, 'Create room');
  // while the modal dialog is open its names are the only ones in the page
  assert.equal(await A.page.getByLabel('Room name').count(), 1);
  assert.equal(await A.page.getByRole('button', { name: 'Create' }).count(), 1);
  await dlg.getByRole('textbox', { name: 'Room name' }).fill(secret);
  await dlg.getByRole('button', { name: 'Create', exact: true }).click();
  await dlg.getByRole('alert').filter({ hasText: 'already exists' }).waitFor();
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  await dlg.waitFor({ state: 'detached' });
});

test('a private room is invisible to a third user', async () => {
  assert.equal(await roomLink(C.page, secret).count(), 0);
  await C.page.getByRole('button', { name: 'Browse public rooms' }).click();
  await C.page.getByText(/Pick a room|No public rooms/).waitFor();
  assert.equal(await C.page.getByRole('button', { name: new RegExp(secret) }).count(), 0);
  await C.page.getByRole('button', { name: 'Browse public rooms' }).click();
  await C.page.getByLabel('Room name').fill(secret);
  await C.page.getByRole('button', { name: 'Join', exact: true }).click();
  await C.page.getByRole('alert').filter({ hasText: 'can’t join' }).waitFor();
  assert.equal(await roomLink(C.page, secret).count(), 0);
});

test('invite with completion from the user list', async () => {
  await openMembers(A.page);
  await row(A.page, alice).getByText('owner', { exact: true }).waitFor();
  const box = dialog(A.page, 'Members').getByRole('textbox', { name: 'Invite user' });
  await box.pressSequentially(bob.slice(0, 5));
  const opt = dialog(A.page, 'Members').getByRole('option', { name: bob });
  await opt.waitFor();
  await box.press('ArrowDown');
  await box.press('Enter');
  assert.equal(await box.inputValue(), bob);
  await dialog(A.page, 'Members').getByRole('button', { name: 'Invite', exact: true }).click();
  await row(A.page, bob).waitFor();
  // bob sees the room appear, with its lock, and can open it
  await roomLink(B.page, secret).getByRole('img', { name: 'private' }).waitFor();
  await roomLink(B.page, secret).click();
  await B.page.getByText('Plans for the launch').waitFor();
  await shot(A.page, 'rooms-members', DESKTOP);
});

test('role changes are seen by both sides; moderators edit the topic', async () => {
  // bob, a plain member: no moderation buttons, no "Edit topic"
  await openMembers(B.page);
  await row(B.page, alice).getByText('owner', { exact: true }).waitFor();
  assert.equal(await dialog(B.page, 'Members').getByRole('button', { name: 'Kick' }).count(), 0);
  assert.equal(await B.page.getByRole('button', { name: 'Edit topic' }).count(), 0);
  // alice (owner) sees the buttons for bob, none against herself as owner
  await row(A.page, bob).getByRole('button', { name: 'Kick' }).waitFor();
  await row(A.page, bob).getByRole('button', { name: 'Ban' }).waitFor();
  assert.equal(await row(A.page, alice).getByRole('button', { name: 'Kick' }).count(), 0);

  await row(A.page, bob).getByRole('button', { name: 'Make moderator' }).click();
  await row(A.page, bob).getByText('moderator', { exact: true }).waitFor();
  await row(B.page, bob).getByText('moderator', { exact: true }).waitFor();
  // a moderator may kick members but not the owner, and sets no roles
  assert.equal(await row(B.page, alice).getByRole('button', { name: 'Kick' }).count(), 0);
  assert.equal(await dialog(B.page, 'Members').getByRole('button', { name: /^Make / }).count(), 0);
  await closeMembers(B.page);

  await B.page.getByRole('button', { name: 'Edit topic' }).click();
  const topic = B.page.getByRole('textbox', { name: 'Topic' });
  await topic.fill('Launch on Friday');
  await B.page.getByRole('button', { name: 'Save' }).click();
  await A.page.getByRole('main').getByText('Launch on Friday').waitFor();
  await B.page.getByRole('main').getByText('Launch on Friday').waitFor();
  assert.equal(await topic.count(), 0);

  await row(A.page, bob).getByRole('button', { name: 'Make owner' }).click();
  await row(A.page, bob).getByText('owner', { exact: true }).waitFor();
  await row(A.page, bob).getByRole('button', { name: 'Make member' }).click();
  await until(async () => (await row(A.page, bob).locator('.role-tag').count()) === 0, { what: 'bob a member again' });
  await B.page.getByRole('button', { name: 'Edit topic' }).waitFor({ state: 'hidden' });
});

test('kick: the member leaves the list, the kicked user sees who removed them', async () => {
  const box = dialog(A.page, 'Members').getByRole('textbox', { name: 'Invite user' });
  await box.fill(carol);
  await box.press('Enter');
  await row(A.page, carol).waitFor();
  await roomLink(C.page, secret).waitFor();
  await roomLink(C.page, secret).click();
  await C.page.getByText('Launch on Friday').waitFor();

  // the Members panel is not modal: the chat goes on beside it
  await send(A.page, 'carol, please behave');
  await messages(C.page, 'carol, please behave').waitFor();
  await row(A.page, carol).getByRole('button', { name: 'Kick' }).click();
  await row(A.page, carol).waitFor({ state: 'detached' });
  await C.page.getByRole('alert').filter({ hasText: `${alice} removed you from #${secret}` }).waitFor();
  await roomLink(C.page, secret).waitFor({ state: 'detached' });
  // bob's open list drops carol too
  await openMembers(B.page);
  await row(B.page, alice).waitFor();
  assert.equal(await row(B.page, carol).count(), 0);
  await closeMembers(B.page);
  await closeMembers(A.page);
});

test('ban in a public room: seen from both sides; joining again is refused', async () => {
  await createRoom(A.page, open);
  await joinRoom(C.page, open);
  await openMembers(A.page);
  await row(A.page, carol).getByRole('button', { name: 'Ban' }).click();
  await row(A.page, carol).waitFor({ state: 'detached' });
  await C.page.getByRole('alert').filter({ hasText: `${alice} removed you from #${open} and banned you` }).waitFor();
  await roomLink(C.page, open).waitFor({ state: 'detached' });
  await C.page.getByLabel('Room name').fill(open);
  await C.page.getByRole('button', { name: 'Join', exact: true }).click();
  await C.page.getByRole('alert').filter({ hasText: 'can’t join' }).waitFor();
  assert.equal(await roomLink(C.page, open).count(), 0);
  await C.page.getByRole('button', { name: 'Dismiss' }).click();
  // the moderator can lift the ban; then carol may join again
  const bannedList = dialog(A.page, 'Members').getByRole('list', { name: 'Banned here' });
  await bannedList.getByRole('listitem').filter({ hasText: carol }).getByRole('button', { name: 'Unban' }).click();
  await bannedList.waitFor({ state: 'hidden' });
  await joinRoom(C.page, open);
  await row(A.page, carol).waitFor();
  await closeMembers(A.page);
});

test('XSS attempts in a topic and in a room name stay text', async () => {
  const payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
  await roomLink(A.page, open).click();
  await A.page.getByRole('button', { name: 'Edit topic' }).click();
  await A.page.getByRole('textbox', { name: 'Topic' }).fill(payload);
  await A.page.getByRole('textbox', { name: 'Topic' }).press('Enter');
  await A.page.getByRole('main').getByText(payload).waitFor();
  await joinRoom(B.page, open);
  await B.page.getByRole('main').getByText(payload).waitFor();
  for (const { page } of [A, B]) {
    assert.equal(await page.locator('.room-head img, .room-head script').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  }
  // a room name with markup is refused before it reaches the server
  await A.page.getByRole('button', { name: 'Create room' }).click();
  const dlg = dialog(A.page, 'Create room');
  await dlg.getByRole('textbox', { name: 'Room name' }).fill('<img src=x onerror="window.__xss=3">');
  await dlg.getByRole('button', { name: 'Create', exact: true }).click();
  await dlg.getByRole('alert').filter({ hasText: 'Room names are' }).waitFor();
  await A.page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.equal(await A.page.evaluate(() => window.__xss), undefined);
});

test('keyboard only: create a room, open Members, close with Escape', async () => {
  const page = B.page;
  const name = uniq('kbd');
  await page.getByRole('button', { name: 'Create room' }).focus();
  await page.keyboard.press('Enter');
  const dlg = dialog(page, 'Create room');
  await dlg.waitFor();
  await page.keyboard.type(name); // the name box has the focus
  await page.keyboard.press('Tab');
  await page.keyboard.press('Space'); // Private
  assert.equal(await dlg.getByRole('checkbox', { name: 'Private' }).isChecked(), true);
  await page.keyboard.press('Tab');
  await page.keyboard.type('typed topic');
  await page.keyboard.press('Enter');
  await dlg.waitFor({ state: 'detached' });
  await roomLink(page, name).and(page.locator('[aria-current="page"]')).waitFor();
  await page.getByRole('main').getByText('typed topic').waitFor();

  await page.getByRole('button', { name: 'Members', exact: true }).focus();
  await page.keyboard.press('Enter');
  await dialog(page, 'Members').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label') || document.activeElement.labels?.[0]?.textContent), 'Invite user');
  await page.keyboard.press('Escape');
  await dialog(page, 'Members').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Members');
  // the Notifications level is a select reached by Tab
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'notify-level');
  await shot(page, 'rooms-phone', PHONE);
  await page.setViewportSize(DESKTOP);
});

test('no script errors', () => {
  for (const x of [A, B, C]) assert.deepEqual(x.errors, []);
});
