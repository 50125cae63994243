/* chatd/utf8.h — incremental UTF-8 validation and code point counting */
#ifndef CHATD_UTF8_H
#define CHATD_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_ACCEPT 0 /* initial state; also "ends on a whole character" */
#define UTF8_REJECT 1 /* sticky state after an invalid byte */

/*
 * Validates s[0..n) continuing from *state (start with UTF8_ACCEPT).
 * Rejects overlong forms, surrogates (U+D800..U+DFFF), code points over
 * U+10FFFF and stray bytes, failing at the first byte that cannot start
 * or continue a valid sequence. Returns 0 while valid so far (the input
 * may still end mid-sequence: see utf8_complete), -1 once invalid.
 */
int utf8_validate(uint32_t *state, const uint8_t *s, size_t n);
/* 1 if state is between characters (valid so far and not mid-sequence). */
int utf8_complete(uint32_t state);
/* 1 if s[0..n) is complete, valid UTF-8. */
int utf8_valid(const uint8_t *s, size_t n);
/* Number of code points in s[0..n), which must be valid UTF-8. */
size_t utf8_codepoints(const uint8_t *s, size_t n);

#endif
