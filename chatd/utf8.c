/* chatd/utf8.c — incremental UTF-8 validation as a small DFA */
#include <string.h>

#include "chatd/utf8.h"

/*
 * Byte classes: 0 00-7F, 1 80-8F, 2 90-9F, 3 A0-BF, 4 C0-C1 F5-FF (never
 * valid), 5 C2-DF, 6 E0, 7 E1-EC EE-EF, 8 ED, 9 F0, 10 F1-F3, 11 F4.
 * States: 0 accept, 1 reject, 2 one continuation left, 3 two left,
 * 4 three left, 5 after E0 (A0-BF next: no overlong), 6 after ED (80-9F:
 * no surrogate), 7 after F0 (90-BF: no overlong), 8 after F4 (80-8F: not
 * over U+10FFFF).
 * The ranges use the GNU designated-range extension (gcc and clang).
 */
/* clang-format off */
static const uint8_t utf8_class[256] = {
	[0x00 ... 0x7f] = 0,
	[0x80 ... 0x8f] = 1,
	[0x90 ... 0x9f] = 2,
	[0xa0 ... 0xbf] = 3,
	[0xc0 ... 0xc1] = 4,
	[0xc2 ... 0xdf] = 5,
	[0xe0] = 6,
	[0xe1 ... 0xec] = 7,
	[0xed] = 8,
	[0xee ... 0xef] = 7,
	[0xf0] = 9,
	[0xf1 ... 0xf3] = 10,
	[0xf4] = 11,
	[0xf5 ... 0xff] = 4,
};

static const uint8_t utf8_next[9][12] = {
	/*        00 80 90 A0 bad C2 E0 E1 ED F0 F1 F4 */
	/* 0 */ {0, 1, 1, 1, 1, 2, 5, 3, 6, 7, 4, 8},
	/* 1 */ {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	/* 2 */ {1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
	/* 3 */ {1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
	/* 4 */ {1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
	/* 5 */ {1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1},
	/* 6 */ {1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	/* 7 */ {1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
	/* 8 */ {1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
};
/* clang-format on */

/* Length of the leading run of ASCII bytes, eight at a time. */
static size_t
utf8_ascii_prefix(const uint8_t *s, size_t n)
{
	size_t i = 0;
	uint64_t w;

	while (i + 8 <= n) {
		memcpy(&w, s + i, 8);
		if (w & 0x8080808080808080ULL)
			break;
		i += 8;
	}
	while (i < n && s[i] < 0x80)
		i++;
	return i;
}

int
utf8_validate(uint32_t *state, const uint8_t *s, size_t n)
{
	uint32_t st = *state;
	size_t i = 0;

	while (i < n && st != UTF8_REJECT) {
		if (st == UTF8_ACCEPT && s[i] < 0x80)
			i += utf8_ascii_prefix(s + i, n - i);
		else
			st = utf8_next[st][utf8_class[s[i++]]];
	}
	*state = st;
	return st == UTF8_REJECT ? -1 : 0;
}

int
utf8_complete(uint32_t state)
{
	return state == UTF8_ACCEPT;
}

int
utf8_valid(const uint8_t *s, size_t n)
{
	uint32_t st = UTF8_ACCEPT;

	return utf8_validate(&st, s, n) == 0 && utf8_complete(st);
}

size_t
utf8_codepoints(const uint8_t *s, size_t n)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		count += (s[i] & 0xc0) != 0x80;
	return count;
}
