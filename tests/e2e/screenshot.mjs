// Makes docs/screenshot.png: the page with a small, realistic conversation.
// Run from the repo root: node tests/e2e/screenshot.mjs [out.png]
// Emoji need a colour emoji font (Debian: fonts-noto-color-emoji); without one
// Chromium draws the reactions as boxes.
// (not a test; the e2e tests write their own screenshots to tests/artifacts/)
import path from 'node:path';
import { startChatd, register, login, wsAuth, join, send, REPO } from '../integration/lib/chatd.mjs';
import { launchBrowser, openPage, connected, messages, DESKTOP } from './lib.mjs';

const out = process.argv[2] || path.join(REPO, 'docs', 'screenshot.png');
const PW = 'screenshot password';
const srv = await startChatd({ rateLimits: 'off' });
let browser;
try {
  const users = {};
  for (const n of ['alice', 'bob', 'carol']) {
    await register(srv, n, PW);
    users[n] = await wsAuth(srv.wsUrl, await login(srv, n, PW));
  }
  for (const n of ['alice', 'bob', 'carol']) await join(users[n], 'general');
  await join(users.alice, 'random');
  await join(users.bob, 'random');
  const say = (u, text, room = 'general') => send(users[u], room, text);
  await say('bob', 'Morning! Is the deploy still planned for today?');
  await say('carol', 'Yes — after the 2 pm standup.');
  await say('carol', 'Release notes are here: https://example.com/releases/1.4');
  await say('alice', 'Great, I’ll keep an eye on the dashboards.');
  const fix = await say('bob', 'I pushed the fix for the reconnect bug, it resyncs with `since` now.');
  await say('bob', 'Nothing lost, **nothing doubled**.');
  for (const u of ['alice', 'carol']) await users[u].request({ type: 'react', room: 'general', id: fix.id, emoji: '🎉' });
  await users.carol.request({ type: 'react', room: 'general', id: fix.id, emoji: '👍' });
  const m = await say('carol', 'Nice work! Can you add a test for the restart case?');
  await users.carol.request({ type: 'edit', room: 'general', id: m.id, text: 'Nice work! Could you add an e2e test for the restart case?' });
  await users.bob.request({ type: 'send', room: 'general', text: '@alice could you pair on it after lunch?', reply_to: m.id });
  await users.alice.request({ type: 'create', room: 'design', kind: 'private', topic: 'The 1.5 redesign' });
  await users.alice.request({ type: 'invite', room: 'design', user: 'carol' });
  await say('carol', 'First mockups are up.', 'design');
  await say('bob', 'Lunch at noon?', 'random');
  await say('bob', 'The usual place.', 'random');
  const dm = await users.bob.request({ type: 'dm', user: 'alice' });
  await say('bob', 'Got a minute to review my PR?', dm.room);

  browser = await launchBrowser();
  const { page } = await openPage(browser, srv, { viewport: DESKTOP });
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Log in' }).click();
  await connected(page);
  await page.getByRole('navigation', { name: 'Rooms' }).getByRole('link', { name: /^general/ }).click();
  await messages(page, 'pair on it').waitFor();
  await page.getByRole('textbox', { name: 'Message', exact: true }).pressSequentially('Sure, on it');
  users.bob.send({ type: 'typing', room: 'general' });
  await page.getByText('bob is typing…').waitFor();
  await page.screenshot({ path: out });
  console.log('wrote', out);
  for (const c of Object.values(users)) await c.close().catch(() => {});
} finally {
  await browser?.close();
  await srv.cleanup();
}
