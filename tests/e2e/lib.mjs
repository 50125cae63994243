// Browser helpers for the e2e tests: Debian's Chromium driven by
// playwright-core (which never downloads a browser of its own).
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from '../integration/lib/chatd.mjs';

export const ARTIFACTS = path.join(REPO, 'tests', 'artifacts');
export const WAIT = Number(process.env.E2E_WAIT_MS || 10000);
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
    timeout: 30000,
  });
}

/**
 * A fresh browser context + page on the server, collecting every uncaught
 * script error and console error (CSP violations show up there too).
 * `permissions` are granted to the server's origin and `initScript` runs
 * before the page's scripts (e.g. to record notifications).
 */
export async function openPage(browser, srv, { viewport = DESKTOP, colorScheme = 'light', initScript, permissions } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, serviceWorkers: 'block' });
  context.setDefaultTimeout(WAIT);
  if (permissions) await context.grantPermissions(permissions, { origin: srv.url });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    // the browser logs failed WebSocket connects and fetches while chatd is
    // deliberately down; those are expected, script errors are not
    if (/WebSocket connection to .* failed|Failed to load resource|net::ERR_/.test(t)) return;
    errors.push(`console: ${t}`);
  });
  await page.goto(srv.url + '/');
  return { context, page, errors };
}

/** Sign up (or log in) through the form; waits until the chat is connected. */
export async function signUp(page, name, pw, { button = 'Sign up' } = {}) {
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(pw);
  await page.getByRole('button', { name: button, exact: true }).click();
  await connected(page);
}

export async function connected(page) {
  await page.getByRole('status').filter({ hasText: /^Connected$/ }).waitFor();
}

/** Join (or create) a room through the sidebar form; waits until it is open. */
export async function joinRoom(page, room) {
  await page.getByLabel('Room name').fill(room);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await roomLink(page, room).and(page.locator('[aria-current="page"]')).waitFor();
}

export function roomLink(page, label) {
  return page.getByRole('navigation', { name: 'Rooms' }).getByRole('link', { name: new RegExp(`^${escapeRe(label)}\\b`) });
}

export function log(page) {
  return page.getByRole('log', { name: 'Messages' });
}

/** The message articles whose text contains `text`. */
export function messages(page, text) {
  const all = log(page).getByRole('article');
  return text === undefined ? all : all.filter({ hasText: text });
}

export async function send(page, text) {
  const box = page.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill(text);
  await box.press('Enter');
}

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Polls fn until it returns a truthy value (no fixed sleeps). */
export async function until(fn, { timeout = WAIT, what = 'condition', interval = 50 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}` + (last instanceof Error ? `: ${last.message}` : `: last=${JSON.stringify(last)}`));
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits until the locator matches exactly n elements. */
export async function count(locator, n, what) {
  return until(async () => (await locator.count()) === n, { what: what || `${n} elements` });
}

export async function shot(page, name, viewport) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  if (viewport) await page.setViewportSize(viewport);
  await page.screenshot({ path: path.join(ARTIFACTS, name + '.png'), animations: 'disabled' });
}
