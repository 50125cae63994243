/* tests/unit/test_utf8.c — the incremental UTF-8 validator */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chatd/utf8.h"

/* A vector: bytes, and whether the whole is valid UTF-8. */
struct vec {
	const char *name;
	const char *s;
	size_t n; /* 0: strlen(s) */
	int valid;
};

/*
 * Markus Kuhn's UTF-8 decoder capability and stress test, the source of
 * the Autobahn section 6 cases (6.2-6.23), plus a few of our own.
 */
static const struct vec vectors[] = {
    {"6.1.1 empty", "", 0, 1},
    {"6.2.1 hello",
     "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc"
     "\xc3\xa0\xc3\xa1-UTF-8!!",
     0, 1},
    {"6.5.1 kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 0, 1},
    {"6.6.x kosme cut", "\xce\xba\xe1\xbd", 0, 0},
    {"6.7.1 U+0000", "\x00", 1, 1},
    {"6.7.2 U+0080", "\xc2\x80", 0, 1},
    {"6.7.3 U+0800", "\xe0\xa0\x80", 0, 1},
    {"6.7.4 U+10000", "\xf0\x90\x80\x80", 0, 1},
    {"6.8.1 5-byte U+200000", "\xf8\x88\x80\x80\x80", 0, 0},
    {"6.8.2 6-byte U+4000000", "\xfc\x84\x80\x80\x80\x80", 0, 0},
    {"6.9.1 U+007F", "\x7f", 0, 1},
    {"6.9.2 U+07FF", "\xdf\xbf", 0, 1},
    {"6.9.3 U+FFFF", "\xef\xbf\xbf", 0, 1},
    {"6.9.4 U+1FFFFF", "\xf7\xbf\xbf\xbf", 0, 0},
    {"6.10.1 5-byte U+3FFFFFF", "\xfb\xbf\xbf\xbf\xbf", 0, 0},
    {"6.10.2 6-byte U+7FFFFFFF", "\xfd\xbf\xbf\xbf\xbf\xbf", 0, 0},
    {"6.11.1 U+D7FF", "\xed\x9f\xbf", 0, 1},
    {"6.11.2 U+E000", "\xee\x80\x80", 0, 1},
    {"6.11.3 U+FFFD", "\xef\xbf\xbd", 0, 1},
    {"6.11.4 U+10FFFF", "\xf4\x8f\xbf\xbf", 0, 1},
    {"6.11.5 U+110000", "\xf4\x90\x80\x80", 0, 0},
    {"6.12.1 lone 80", "\x80", 0, 0},
    {"6.12.2 lone BF", "\xbf", 0, 0},
    {"6.12.3 80 BF", "\x80\xbf", 0, 0},
    {"6.12.4 80 BF 80", "\x80\xbf\x80", 0, 0},
    {"6.12.8 all continuations",
     "\x80\x81\x82\x83\x84\x85\x86\x87\x88"
     "\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93"
     "\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e"
     "\x9f\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9"
     "\xaa\xab\xac\xad\xae\xaf\xb0\xb1\xb2\xb3\xb4"
     "\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf",
     0, 0},
    {"6.13.1 lonely C0 start", "\xc0 \xc1 ", 0, 0},
    {"6.13.2 lonely C2 start", "\xc2 ", 0, 0},
    {"6.13.3 lonely E0 start", "\xe0 ", 0, 0},
    {"6.13.4 lonely F0 start", "\xf0 ", 0, 0},
    {"6.13.5 lonely F8 start", "\xf8 ", 0, 0},
    {"6.14.1 2-byte cut", "\xc2", 0, 0},
    {"6.14.2 3-byte cut", "\xe0\x80", 0, 0},
    {"6.14.3 4-byte cut", "\xf0\x80\x80", 0, 0},
    {"6.14.4 3-byte cut valid", "\xe1\x80", 0, 0},
    {"6.14.5 4-byte cut valid", "\xf1\x80\x80", 0, 0},
    {"6.14.7 DF cut", "\xdf", 0, 0},
    {"6.14.8 EF BF cut", "\xef\xbf", 0, 0},
    {"6.14.9 F7 BF BF cut", "\xf7\xbf\xbf", 0, 0},
    {"6.15.1 cut sequences joined",
     "\xc0\xe0\x80\xf0\x80\x80\xf8\x80"
     "\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf"
     "\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf"
     "\xbf\xbf",
     0, 0},
    {"6.16.1 FE", "\xfe", 0, 0},
    {"6.16.2 FF", "\xff", 0, 0},
    {"6.16.3 FE FE FF FF", "\xfe\xfe\xff\xff", 0, 0},
    {"6.17.1 overlong slash 2", "\xc0\xaf", 0, 0},
    {"6.17.2 overlong slash 3", "\xe0\x80\xaf", 0, 0},
    {"6.17.3 overlong slash 4", "\xf0\x80\x80\xaf", 0, 0},
    {"6.17.4 overlong slash 5", "\xf8\x80\x80\x80\xaf", 0, 0},
    {"6.18.1 max overlong 2", "\xc1\xbf", 0, 0},
    {"6.18.2 max overlong 3", "\xe0\x9f\xbf", 0, 0},
    {"6.18.3 max overlong 4", "\xf0\x8f\xbf\xbf", 0, 0},
    {"6.19.1 overlong NUL 2", "\xc0\x80", 0, 0},
    {"6.19.2 overlong NUL 3", "\xe0\x80\x80", 0, 0},
    {"6.19.3 overlong NUL 4", "\xf0\x80\x80\x80", 0, 0},
    {"6.20.1 U+D800", "\xed\xa0\x80", 0, 0},
    {"6.20.4 U+DB80", "\xed\xae\x80", 0, 0},
    {"6.20.7 U+DFFF", "\xed\xbf\xbf", 0, 0},
    {"6.21.1 U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 0, 0},
    {"6.21.8 U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 0, 0},
    {"6.22.1 U+FFFE noncharacter", "\xef\xbf\xbe", 0, 1},
    {"6.22.3 U+1FFFE noncharacter", "\xf0\x9f\xbf\xbe", 0, 1},
    {"6.22.34 U+10FFFE noncharacter", "\xf4\x8f\xbf\xbe", 0, 1},
    {"6.23.1 U+FFFD", "\xef\xbf\xbd", 0, 1},
    {"6.23.7 U+FDD0", "\xef\xb7\x90", 0, 1},
    {"emoji", "\xf0\x9f\x98\x80 ok", 0, 1},
    {"long ascii then bad", "abcdefghijklmnopqrstuvwxyz0123456789\xff", 0, 0},
    {"long ascii then good", "abcdefghijklmnopqrstuvwxyz0123456789\xc3\xa9", 0,
     1},
};

/* Length of a vector. */
static size_t
vec_len(const struct vec *v)
{
	return v->n ? v->n : strlen(v->s);
}

/* Validates v fed in pieces of size step (0: whole). */
static int
validate_stepped(const struct vec *v, size_t step)
{
	uint32_t st = UTF8_ACCEPT;
	const uint8_t *s = (const uint8_t *)v->s;
	size_t n = vec_len(v), i, k;

	if (step == 0)
		step = n ? n : 1;
	for (i = 0; i < n; i += k) {
		k = n - i < step ? n - i : step;
		if (utf8_validate(&st, s + i, k) < 0)
			return 0;
	}
	return utf8_complete(st);
}

/* Every vector gives its expected verdict whole and in every step size. */
static void
test_utf8_autobahn_section6_vectors_in_every_chunking(void **state)
{
	size_t i, step;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vec *v = &vectors[i];

		for (step = 0; step <= vec_len(v); step++) {
			if (validate_stepped(v, step) != v->valid)
				fail_msg("%s: step %zu", v->name, step);
		}
		assert_int_equal(utf8_valid((const uint8_t *)v->s, vec_len(v)),
		                 v->valid);
	}
}

/* The validator fails at the offending byte, not at the end. */
static void
test_utf8_fails_fast_at_first_invalid_byte(void **state)
{
	uint32_t st = UTF8_ACCEPT;
	const uint8_t good[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
	const uint8_t bad[] = "\xed\xa0"; /* surrogate: fails at the 2nd */

	(void)state;
	assert_int_equal(utf8_validate(&st, good, sizeof(good) - 1), 0);
	assert_int_equal(utf8_validate(&st, bad, 1), 0);
	assert_false(utf8_complete(st));
	assert_int_equal(utf8_validate(&st, bad + 1, 1), -1);
	/* The reject state is sticky. */
	assert_int_equal(utf8_validate(&st, good, 1), -1);
	assert_false(utf8_complete(st));
}

/* A state that ends mid-sequence is not complete. */
static void
test_utf8_mid_sequence_is_not_complete(void **state)
{
	uint32_t st = UTF8_ACCEPT;

	(void)state;
	assert_true(utf8_complete(st));
	assert_int_equal(utf8_validate(&st, (const uint8_t *)"\xf0\x9f", 2), 0);
	assert_false(utf8_complete(st));
	assert_int_equal(utf8_validate(&st, (const uint8_t *)"\x98\x80", 2), 0);
	assert_true(utf8_complete(st));
}

/* Encodes code point c as UTF-8 into out; returns the length. */
static size_t
encode(uint32_t c, uint8_t *out)
{
	if (c < 0x80) {
		out[0] = c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = 0xc0 | c >> 6;
		out[1] = 0x80 | (c & 0x3f);
		return 2;
	}
	if (c < 0x10000) {
		out[0] = 0xe0 | c >> 12;
		out[1] = 0x80 | (c >> 6 & 0x3f);
		out[2] = 0x80 | (c & 0x3f);
		return 3;
	}
	out[0] = 0xf0 | c >> 18;
	out[1] = 0x80 | (c >> 12 & 0x3f);
	out[2] = 0x80 | (c >> 6 & 0x3f);
	out[3] = 0x80 | (c & 0x3f);
	return 4;
}

/* Every scalar value is accepted, every surrogate rejected. */
static void
test_utf8_accepts_every_scalar_value_rejects_surrogates(void **state)
{
	uint8_t buf[4];
	uint32_t c;
	size_t n;

	(void)state;
	for (c = 0; c <= 0x10ffff; c++) {
		n = encode(c, buf);
		if (utf8_valid(buf, n) != !(c >= 0xd800 && c <= 0xdfff))
			fail_msg("U+%04X", (unsigned)c);
		assert_int_equal(utf8_codepoints(buf, n), 1);
	}
}

/* A straightforward reference decoder: 1 if s[0..n) is valid UTF-8. */
static int
reference_valid(const uint8_t *s, size_t n)
{
	size_t i = 0, k, len;
	uint32_t c, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		} else if ((s[i] & 0xe0) == 0xc0) {
			len = 2, c = s[i] & 0x1f, min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			len = 3, c = s[i] & 0x0f, min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			len = 4, c = s[i] & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (s[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Every 1- to 3-byte string and random 4- to 8-byte strings agree with
 * the reference decoder. */
static void
test_utf8_agrees_with_reference_decoder(void **state)
{
	uint8_t b[8];
	uint32_t x, seed = 12345;
	size_t n, k;

	(void)state;
	for (x = 0; x < (1u << 24); x++) {
		b[0] = x >> 16, b[1] = x >> 8, b[2] = x;
		for (n = 1; n <= 3; n++) {
			if (n < 3 && (x & ((1u << (8 * (3 - n))) - 1)))
				continue;
			if (utf8_valid(b, n) != reference_valid(b, n))
				fail_msg("%02x %02x %02x n=%zu", b[0], b[1],
				         b[2], n);
		}
	}
	for (x = 0; x < 2000000; x++) {
		n = 4 + x % 5;
		for (k = 0; k < n; k++) {
			seed = seed * 1103515245 + 12345;
			/* Bias towards lead and continuation bytes. */
			b[k] = (seed >> 16) & 1 ? 0x80 | (seed >> 8 & 0x7f)
			                        : seed >> 24;
		}
		if (utf8_valid(b, n) != reference_valid(b, n))
			fail_msg("%02x %02x %02x %02x n=%zu", b[0], b[1], b[2],
			         b[3], n);
	}
}

/* Code points are counted, not bytes. */
static void
test_utf8_codepoints_counts_characters(void **state)
{
	(void)state;
	assert_int_equal(utf8_codepoints((const uint8_t *)"", 0), 0);
	assert_int_equal(utf8_codepoints((const uint8_t *)"abc", 3), 3);
	assert_int_equal(
	    utf8_codepoints((const uint8_t *)"\xc3\xa9t\xc3\xa9", 5), 3);
	assert_int_equal(
	    utf8_codepoints((const uint8_t *)"\xf0\x9f\x98\x80\xe2\x82\xac", 7),
	    2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
	        test_utf8_autobahn_section6_vectors_in_every_chunking),
	    cmocka_unit_test(test_utf8_fails_fast_at_first_invalid_byte),
	    cmocka_unit_test(test_utf8_mid_sequence_is_not_complete),
	    cmocka_unit_test(
	        test_utf8_accepts_every_scalar_value_rejects_surrogates),
	    cmocka_unit_test(test_utf8_agrees_with_reference_decoder),
	    cmocka_unit_test(test_utf8_codepoints_counts_characters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
