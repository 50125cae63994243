// Chromium offers permessage-deflate: the page's WebSocket negotiates it
// with chatd (the 101's Sec-WebSocket-Extensions, seen over CDP), long
// messages go both ways compressed (Chromium deflates what it sends, chatd
// what it fans out: /metrics counts the compressed frames) and arrive
// intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChatd, uniq, api } from '../integration/lib/chatd.mjs';
import { parseMetrics } from '../integration/lib/ops.mjs';
import { launchBrowser, openPage, signUp, joinRoom, messages, send, until } from './lib.mjs';

let srv, browser, A, B;
const PW = 'correct horse battery';

/** Records the Sec-WebSocket-Extensions of every WebSocket the page opens. */
async function watchHandshakes(ctx) {
  const seen = [];
  const cdp = await ctx.context.newCDPSession(ctx.page);
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    const h = e.response.headers || {};
    const k = Object.keys(h).find((x) => x.toLowerCase() === 'sec-websocket-extensions');
    seen.push({ status: e.response.status, ext: k ? h[k] : undefined });
  });
  return seen;
}

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

test('the page negotiates permessage-deflate and chat works over it', async () => {
  const seenA = await watchHandshakes(A);
  const seenB = await watchHandshakes(B);
  await signUp(A.page, uniq('zalice'), PW);
  await signUp(B.page, uniq('zbob'), PW);
  await until(() => seenA.length > 0 && seenB.length > 0, { what: 'WebSocket handshakes' });
  for (const s of [seenA[0], seenB[0]]) {
    assert.equal(s.status, 101);
    assert.match(s.ext || '', /^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
  }
  const room = uniq('zroom');
  await joinRoom(A.page, room);
  await joinRoom(B.page, room);
  const m0 = parseMetrics((await api(srv, 'GET', '/metrics')).text);
  const long = `compressed ${'lorem ipsum dolor sit amet '.repeat(20)}end`;
  await send(A.page, long);
  await messages(B.page, 'end').filter({ hasText: 'compressed lorem' }).waitFor();
  await send(B.page, `reply ${long}`);
  await messages(A.page, 'reply compressed').waitFor();
  const m1 = parseMetrics((await api(srv, 'GET', '/metrics')).text);
  assert.ok(m1.get('chatd_ws_deflate_frames_total') > m0.get('chatd_ws_deflate_frames_total'),
    'chatd sent compressed frames to the browsers');
  assert.deepEqual(A.errors, []);
  assert.deepEqual(B.errors, []);
});
