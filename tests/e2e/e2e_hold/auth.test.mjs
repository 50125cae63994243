// Accounts in the browser: sign-up and log-in errors in plain words, the
// token kept across reloads, log out; the page's security headers; keyboard
// use; browse public rooms; the page at phone width.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq, api } from '../integration/lib/chatd.mjs';
import {
  launchBrowser, openPage, signUp, connected, joinRoom, roomLink, messages, shot, until, PHONE,
} from './lib.mjs';

let srv, browser, P;
const name = uniq('carol');
const PW = 'carol password';

before(async () => {
  srv = await startChatd({ rateLimits: 'off' });
  browser = await launchBrowser();
  P = await openPage(browser, srv);
});

after(async () => {
  await browser?.close();
  await srv?.cleanup();
});

const authError = (page) => page.getByRole('alert').filter({ hasText: /\S/ });

test('the page is served with strict security headers', async () => {
  const r = await api(srv, 'GET', '/');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/html/);
  const csp = r.headers['content-security-policy'] || '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.ok(r.headers['referrer-policy'], 'a Referrer-Policy');
  // no inline scripts or styles in the page for the CSP to block
  assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i);
  assert.doesNotMatch(r.text, /\sstyle=|<style/i);
  for (const [p, type] of [['/js/app.js', /javascript/], ['/app.css', /text\/css/], ['/favicon.svg', /image\/svg\+xml/]]) {
    const f = await api(srv, 'GET', p);
    assert.equal(f.status, 200, p);
    assert.match(f.headers['content-type'], type, p);
  }
});

test('sign-up and log-in errors are shown in plain words', async () => {
  const { page } = P;
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  // wrong password for an unknown user
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await authError(page).filter({ hasText: /wrong username or password/i }).waitFor();
  // a name that is taken
  await api(srv, 'POST', '/api/register', { body: { username: name, password: PW } });
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await authError(page).filter({ hasText: /taken/i }).waitFor();
  // a bad username and a short password
  await page.getByLabel('Username').fill('-bad name-');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await authError(page).filter({ hasText: /usernames are/i }).waitFor();
  await page.getByLabel('Username').fill(uniq('dave'));
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await authError(page).filter({ hasText: /8 to 256/ }).waitFor();
  // the server unreachable
  await srv.stop();
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PW);
  await page.getByRole('button', { name: 'Log in' }).click();
  await authError(page).filter({ hasText: /unreachable/i }).waitFor();
  await shot(page, 'login-error-desktop');
  await srv.restart();
});

test('log in with the keyboard; the token survives a reload', async () => {
  const { page } = P;
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PW);
  await page.getByLabel('Password').press('Enter');
  await connected(page);
  await joinRoom(page, 'lobby');
  await page.reload();
  await connected(page);
  await roomLink(page, 'lobby').and(page.locator('[aria-current="page"]')).waitFor();
  // keyboard: the composer is reachable and Enter sends
  const box = page.getByRole('textbox', { name: 'Message', exact: true });
  await box.focus();
  await page.keyboard.type('typed with the keyboard');
  await page.keyboard.press('Enter');
  await messages(page, 'typed with the keyboard').waitFor();
  // the message list can take focus, so it can be scrolled by keyboard
  await page.getByRole('log', { name: 'Messages' }).focus();
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'log');
});

test('browse public rooms and join one', async () => {
  const { page } = P;
  const other = await api(srv, 'POST', '/api/register', { body: { username: uniq('erin'), password: PW } });
  assert.equal(other.status, 201);
  const login = await api(srv, 'POST', '/api/login', { body: { username: other.json.user.username, password: PW } });
  // erin creates a room over the WebSocket API
  const { wsAuth, join } = await import('../integration/lib/chatd.mjs');
  const c = await wsAuth(srv.wsUrl, login.json.token);
  const pub = uniq('public');
  await join(c, pub);
  await page.getByRole('button', { name: 'Browse public rooms' }).click();
  await page.getByRole('button', { name: new RegExp(pub) }).click();
  await roomLink(page, pub).and(page.locator('[aria-current="page"]')).waitFor();
  await c.close();
});

test('phone width: rooms behind a button, chat usable', async () => {
  const { page } = P;
  await page.setViewportSize(PHONE);
  await page.getByRole('button', { name: 'Show rooms' }).click();
  await roomLink(page, 'lobby').click();
  await until(async () => !(await page.getByRole('navigation', { name: 'Rooms' }).isVisible()), { what: 'drawer closed' });
  await messages(page, 'typed with the keyboard').waitFor();
  await shot(page, 'room-phone');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await shot(page, 'login-phone');
  await page.reload();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  // the revoked token is gone: a fresh page is signed out too
  assert.equal(await page.evaluate(() => localStorage.getItem('chatd.token')), null);
  assert.deepEqual(P.errors, []);
});
