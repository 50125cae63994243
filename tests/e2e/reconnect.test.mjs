// Surviving a chatd restart: both pages reconnect on their own and resync
// with `since` — nothing lost, nothing doubled; changes made while one side
// was cut off arrive when it comes back; a send that failed while chatd was
// down is marked and can be retried; a database restored from a backup
// (`truncated`) makes the page drop and reload the room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startChatd, uniq } from '../integration/lib/chatd.mjs';
import {
  launchBrowser, openPage, signUp, joinRoom, roomLink, messages, send, until, count, shot, connected,
} from './lib.mjs';

let srv, browser, A, B;
const alice = uniq('alice');
const bob = uniq('bob');
const room = uniq('restart');
const PW = 'reconnect password';

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
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

const status = (page) => page.getByRole('status');

/** Every message text in the log, in order. */
const texts = (page) => messages(page).locator('.text').allInnerTexts();

async function sameHistory(expected) {
  for (const { page } of [A, B]) {
    await until(async () => JSON.stringify(await texts(page)) === JSON.stringify(expected),
      { what: `history ${JSON.stringify(expected)}; got ${JSON.stringify(await texts(page))}` });
  }
}

test('reconnect after a chatd restart, without loss or duplicates', async () => {
  await send(A.page, 'before restart 1');
  await send(B.page, 'before restart 2');
  await sameHistory(['before restart 1', 'before restart 2']);
  // mark the documents: a reload would lose the marks
  for (const { page } of [A, B]) await page.evaluate(() => { window.__same = 1; });

  await srv.stop();
  await status(A.page).filter({ hasText: /Reconnecting…|Offline/ }).waitFor();
  await status(B.page).filter({ hasText: /Reconnecting…|Offline/ }).waitFor();
  await shot(A.page, 'reconnecting-desktop');
  await srv.restart();
  await connected(A.page);
  await connected(B.page);

  await send(A.page, 'after restart 1');
  await send(B.page, 'after restart 2');
  await sameHistory(['before restart 1', 'before restart 2', 'after restart 1', 'after restart 2']);
  for (const { page } of [A, B]) assert.equal(await page.evaluate(() => window.__same), 1, 'the page was not reloaded');
});

test('what happened while one side was cut off arrives when it is back', async () => {
  // edit and delete targets, sent while both are connected
  await send(A.page, 'to be edited later');
  await send(A.page, 'to be deleted later');
  await messages(B.page, 'to be deleted later').waitFor();

  // cut bob off: his browser goes offline and chatd restarts, so his socket
  // is gone and he can't reconnect until he is online again
  await B.context.setOffline(true);
  await status(B.page).filter({ hasText: /^Offline$/ }).waitFor();
  await srv.restart();
  await connected(A.page);

  await send(A.page, 'sent while bob was away');
  await messages(A.page, 'sent while bob was away').and(A.page.locator(':not(.pending)')).waitFor();
  const edit = messages(A.page, 'to be edited later');
  await edit.hover();
  await edit.getByRole('button', { name: 'Edit' }).click();
  const box = A.page.getByRole('textbox', { name: 'Message', exact: true });
  await until(async () => (await box.inputValue()) === 'to be edited later', { what: 'editing' });
  await box.fill('edited while bob was away');
  await box.press('Enter');
  await messages(A.page, 'edited while bob was away').waitFor();
  const del = messages(A.page, 'to be deleted later');
  await del.hover();
  await del.getByRole('button', { name: 'Delete' }).click();
  await count(messages(A.page, 'to be deleted later'), 0);
  assert.equal(await messages(B.page, 'sent while bob was away').count(), 0, 'bob is really cut off');

  await B.context.setOffline(false);
  await connected(B.page);
  const expected = ['before restart 1', 'before restart 2', 'after restart 1', 'after restart 2',
    'edited while bob was away (edited)', 'This message was deleted.', 'sent while bob was away'];
  await sameHistory(expected);
  assert.equal(await B.page.evaluate(() => window.__same), 1, 'bob resynced without a reload');
});

test('a room that was empty when the connection dropped gets what was sent meanwhile', async () => {
  const quiet = uniq('quiet');
  await joinRoom(A.page, quiet);
  await joinRoom(B.page, quiet);
  await B.page.getByText(`This is the start of #${quiet}.`).waitFor();
  await B.context.setOffline(true);
  await srv.restart();
  await connected(A.page);
  await send(A.page, 'first words in a quiet room');
  await messages(A.page, 'first words in a quiet room').and(A.page.locator(':not(.pending)')).waitFor();
  await B.context.setOffline(false);
  await connected(B.page);
  await messages(B.page, 'first words in a quiet room').waitFor();
  await count(messages(B.page), 1, 'exactly the one message');
  // back to the main room for the next tests
  await roomLink(A.page, room).click();
  await roomLink(B.page, room).click();
  await messages(B.page, 'sent while bob was away').waitFor();
});

test('a send that fails while chatd is down is marked and can be retried', async () => {
  await srv.stop();
  await status(A.page).filter({ hasText: /Reconnecting…|Offline/ }).waitFor();
  await send(A.page, 'sent while chatd was down');
  const failed = messages(A.page, 'sent while chatd was down');
  await failed.getByRole('button', { name: 'Retry' }).waitFor();
  await failed.getByText(/Not sent/).waitFor();
  await shot(A.page, 'failed-send-desktop');
  await srv.restart();
  await connected(A.page);
  await connected(B.page);
  await failed.getByRole('button', { name: 'Retry' }).click();
  await messages(B.page, 'sent while chatd was down').waitFor();
  await count(messages(A.page, 'sent while chatd was down'), 1, 'one copy for alice');
  await until(async () => (await messages(A.page, 'sent while chatd was down').getByRole('button', { name: 'Retry' }).count()) === 0, { what: 'retry gone' });
  await count(messages(B.page, 'sent while chatd was down'), 1, 'one copy for bob');
});

test('a message in flight when chatd dies is sent again after the reconnect, once', async () => {
  // freeze chatd so the send is written to the socket but never answered,
  // then kill it: the page must resend (same client_msg_id) on its own
  srv.proc.kill('SIGSTOP');
  await send(A.page, 'in flight when chatd died');
  await messages(A.page, 'in flight when chatd died').getByText('Sending…').waitFor();
  await srv.kill();
  await srv.restart();
  await connected(A.page);
  await messages(B.page, 'in flight when chatd died').waitFor();
  await until(async () => (await messages(A.page, 'in flight when chatd died').getByText('Sending…').count()) === 0, { what: 'no longer pending' });
  await count(messages(A.page, 'in flight when chatd died'), 1, 'one copy for alice');
  await count(messages(B.page, 'in flight when chatd died'), 1, 'one copy for bob');
});

test('a database restored from a backup: the page drops the room and reloads it', async () => {
  // take a "backup" while chatd is stopped, then add messages, then restore it
  await srv.stop();
  const files = ['', '-wal', '-shm'].map((s) => srv.dbPath + s);
  const saved = files.map((f) => (fs.existsSync(f) ? fs.readFileSync(f) : null));
  await srv.restart();
  await connected(A.page);
  await connected(B.page);
  await send(A.page, 'lost in the restore');
  await messages(B.page, 'lost in the restore').waitFor();
  await srv.stop();
  files.forEach((f, i) => { if (saved[i]) fs.writeFileSync(f, saved[i]); else fs.rmSync(f, { force: true }); });
  await srv.restart();
  await connected(A.page);
  await connected(B.page);
  // B's `since` is now above the room's last_seq: `truncated` (or a new
  // epoch, if the server treats it as a restore) — either way the page
  // reloads the room from the server and the lost message disappears
  await count(messages(B.page, 'lost in the restore'), 0, 'the restored history on bob’s page');
  await count(messages(A.page, 'lost in the restore'), 0, 'the restored history on alice’s page');
  await messages(B.page, 'sent while chatd was down').waitFor();
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});

// The sqlite3 command comes with the test dependencies (scripts/deps.sh).
test('a changed epoch drops every cached room', async () => {
  await send(A.page, 'gone after the epoch change');
  await messages(B.page, 'gone after the epoch change').waitFor();
  // what a restore does behind the pages' backs: history changes without
  // new seqs, and the epoch changes with it
  await srv.stop();
  execFileSync('sqlite3', [srv.dbPath,
    "DELETE FROM messages WHERE text = 'gone after the epoch change';" +
    "UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'epoch';"]);
  await srv.restart();
  await connected(A.page);
  await connected(B.page);
  await count(messages(B.page, 'gone after the epoch change'), 0, 'bob dropped his cache');
  await count(messages(A.page, 'gone after the epoch change'), 0, 'alice dropped her cache');
  await send(B.page, 'after the epoch change');
  await messages(A.page, 'after the epoch change').waitFor();
  await count(messages(A.page, 'after the epoch change'), 1, 'one copy');
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});
