// Unit tests of the page's message formatter (web/js/format.js): parse()
// is pure, so Node runs it without a browser. The DOM side (render) is
// covered by tests/e2e/format.test.mjs in Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, snippet } from '../../web/js/format.js';

const T = (v) => ({ t: 'text', v });

test('plain text stays one text node', () => {
  assert.deepEqual(parse('hello world'), [T('hello world')]);
  assert.deepEqual(parse(''), []);
  assert.deepEqual(parse('a\nb'), [T('a\nb')]);
});

test('bold, italic, strike and code', () => {
  assert.deepEqual(parse('a **b** c'), [T('a '), { t: 'b', c: [T('b')] }, T(' c')]);
  assert.deepEqual(parse('*i*'), [{ t: 'i', c: [T('i')] }]);
  assert.deepEqual(parse('~~gone~~'), [{ t: 's', c: [T('gone')] }]);
  assert.deepEqual(parse('x `a *b* c` y'), [T('x '), { t: 'code', v: 'a *b* c' }, T(' y')]);
});

test('nesting: italic inside bold, bold inside italic', () => {
  assert.deepEqual(parse('**a *b* c**'), [{ t: 'b', c: [T('a '), { t: 'i', c: [T('b')] }, T(' c')] }]);
  assert.deepEqual(parse('*a **b** c*'), [{ t: 'i', c: [T('a '), { t: 'b', c: [T('b')] }, T(' c')] }]);
});

test('unmatched or spaced delimiters stay literal', () => {
  for (const s of ['2 * 3 * 4', '**open', 'a ** b ** c', '* x*', '~single~', '`', '``', 'a*', '~~ a~~', '**a\nb**']) {
    assert.deepEqual(parse(s), [T(s)], s);
  }
});

test('fenced code blocks keep their content literal', () => {
  assert.deepEqual(parse('before\n```\n**not bold** <b>\nline 2\n```\nafter'), [
    T('before'), { t: 'pre', v: '**not bold** <b>\nline 2', lang: '' }, T('after'),
  ]);
  assert.deepEqual(parse('```js\nx = 1\n```'), [{ t: 'pre', v: 'x = 1', lang: 'js' }]);
  // an unclosed fence is text
  assert.deepEqual(parse('```\ncode'), [T('```\ncode')]);
});

test('quotes group consecutive > lines and format inside', () => {
  assert.deepEqual(parse('> one\n> **two**\nreply'), [
    { t: 'quote', c: [T('one\n'), { t: 'b', c: [T('two')] }] }, T('reply'),
  ]);
  assert.deepEqual(parse('a > b'), [T('a > b')]);
  assert.deepEqual(parse('>no space'), [T('>no space')]);
});

test('links: http(s) and www., trailing punctuation outside, other schemes literal', () => {
  assert.deepEqual(parse('see https://example.com/a?b=1.'), [
    T('see '), { t: 'link', href: 'https://example.com/a?b=1', v: 'https://example.com/a?b=1' }, T('.'),
  ]);
  assert.deepEqual(parse('www.example.org'), [{ t: 'link', href: 'https://www.example.org', v: 'www.example.org' }]);
  assert.deepEqual(parse('**http://x.test/p**'), [{ t: 'b', c: [{ t: 'link', href: 'http://x.test/p', v: 'http://x.test/p' }] }]);
  for (const s of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'xhttps://a.b', 'https://', 'vbscript:x']) {
    assert.ok(!JSON.stringify(parse(s)).includes('"link"'), s);
  }
  assert.deepEqual(parse('`https://x.test`'), [{ t: 'code', v: 'https://x.test' }]);
});

test('mentions follow the protocol rule, only for listed users', () => {
  const o = { mentions: ['alice', 'bob.b'], me: 'alice' };
  assert.deepEqual(parse('@alice hi', o), [{ t: 'mention', name: 'alice', v: '@alice', me: true }, T(' hi')]);
  assert.deepEqual(parse('(@Alice.)', o), [T('('), { t: 'mention', name: 'alice', v: '@Alice', me: true }, T('.)')]);
  assert.deepEqual(parse('cc @bob.b', o), [T('cc '), { t: 'mention', name: 'bob.b', v: '@bob.b', me: false }]);
  // inside an e-mail address, or of someone not listed: text
  assert.deepEqual(parse('mail bob@alice', o), [T('mail bob@alice')]);
  assert.deepEqual(parse('@carol', o), [T('@carol')]);
  // @room only with mention_room
  assert.deepEqual(parse('@room', o), [T('@room')]);
  assert.deepEqual(parse('@ROOM!', { mentionRoom: true }), [{ t: 'mention', name: 'room', v: '@ROOM', me: true }, T('!')]);
});

test('markup-looking text is never interpreted', () => {
  const s = '<img src=x onerror=alert(1)> &amp; <script>alert(1)</script>';
  assert.deepEqual(parse(s), [T(s)]);
});

test('snippet: one line, cut to length', () => {
  assert.equal(snippet('a\n\nb  c'), 'a b c');
  assert.equal(snippet('x'.repeat(200), 10), 'xxxxxxxxx…');
});
