/* tests/unit/test_url.c — percent-decoding of paths and query strings */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/url.h"

/* Decodes path into a 64-byte buffer and checks the result. */
static void
check_path(const char *path, long want, const char *want_out)
{
	char out[64];

	assert_int_equal(url_path_decode(path, out, sizeof(out)), want);
	if (want >= 0)
		assert_memory_equal(out, want_out, (size_t)want + 1);
}

static void
test_url_path_decode_passes_plain_path(void **state)
{
	(void)state;
	check_path("/api/rooms/general/messages", 27,
	           "/api/rooms/general/messages");
	check_path("", 0, "");
	check_path("/a+b", 4, "/a+b"); /* '+' is literal in a path */
}

static void
test_url_path_decode_decodes_hex_in_any_case(void **state)
{
	(void)state;
	check_path("/a%20b", 4, "/a b");
	check_path("/%c3%a9%C3%A9", 5, "/\xc3\xa9\xc3\xa9");
	check_path("/%41%7a", 3, "/Az");
	check_path("%25", 1, "%");
}

static void
test_url_path_decode_rejects_malformed_escapes(void **state)
{
	(void)state;
	check_path("/a%", -1, NULL);
	check_path("/a%2", -1, NULL);
	check_path("/a%g0", -1, NULL);
	check_path("/a%0g", -1, NULL);
	check_path("/a% 20", -1, NULL);
	check_path("/a%%41", -1, NULL);
}

static void
test_url_path_decode_rejects_nul_and_encoded_slash(void **state)
{
	(void)state;
	check_path("/a%00b", -1, NULL);
	check_path("/rooms/a%2Fb", -1, NULL);
	check_path("/rooms/a%2fb", -1, NULL);
	check_path("/rooms/a/b", 10, "/rooms/a/b");
}

static void
test_url_path_decode_refuses_what_does_not_fit(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(url_path_decode("abc", out, sizeof(out)), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(url_path_decode("abcd", out, sizeof(out)), -1);
	assert_int_equal(url_path_decode("%41%42%43", out, sizeof(out)), 3);
	assert_int_equal(url_path_decode("%41%42%43%44", out, sizeof(out)), -1);
	assert_int_equal(url_path_decode("", out, 0), -1);
	assert_int_equal(url_path_decode(NULL, out, sizeof(out)), -1);
}

/* Looks name up in query with a 32-byte buffer and checks the result. */
static void
check_query(const char *query, const char *name, long want,
            const char *want_out)
{
	char out[32];

	assert_int_equal(url_query_get(query, name, out, sizeof(out)), want);
	if (want >= 0)
		assert_memory_equal(out, want_out, (size_t)want + 1);
}

static void
test_url_query_get_finds_parameters(void **state)
{
	(void)state;
	check_query("before=10&limit=5", "before", 2, "10");
	check_query("before=10&limit=5", "limit", 1, "5");
	check_query("a=1", "a", 1, "1");
	check_query("a=", "a", 0, "");
	check_query("a", "a", 0, ""); /* a key without '=' is empty */
	check_query("a=1=2", "a", 3, "1=2");
}

static void
test_url_query_get_reports_absent_names(void **state)
{
	(void)state;
	check_query("before=10", "limit", -1, NULL);
	check_query("", "a", -1, NULL);
	check_query("ab=1", "a", -1, NULL);
	check_query("a=1", "ab", -1, NULL);
	check_query("A=1", "a", -1, NULL); /* names are case-sensitive */
	check_query(NULL, "a", -1, NULL);
}

static void
test_url_query_get_decodes_plus_and_escapes(void **state)
{
	(void)state;
	check_query("q=hello+world", "q", 11, "hello world");
	check_query("q=a%2Bb%26c%3Dd", "q", 7, "a+b&c=d");
	check_query("q=%e4%BD%a0", "q", 3, "\xe4\xbd\xa0");
	check_query("q=a%2Fb", "q", 3, "a/b"); /* slashes are fine here */
	check_query("my+key=1", "my key", 1, "1");
	check_query("my%20key=1", "my key", 1, "1");
}

static void
test_url_query_get_first_match_wins(void **state)
{
	(void)state;
	check_query("a=1&a=2", "a", 1, "1");
	check_query("b=0&a=&a=2", "a", 0, "");
}

static void
test_url_query_get_skips_empty_pairs(void **state)
{
	(void)state;
	check_query("&&a=1&", "a", 1, "1");
	check_query("x=1&&y=2", "y", 1, "2");
	check_query("=5&a=1", "a", 1, "1");
}

static void
test_url_query_get_rejects_malformed_values(void **state)
{
	(void)state;
	check_query("q=%zz", "q", -2, NULL);
	check_query("q=abc%", "q", -2, NULL);
	check_query("q=abc%4", "q", -2, NULL);
	check_query("q=a%00b", "q", -2, NULL);
	/* A malformed other parameter does not matter. */
	check_query("x=%zz&q=1", "q", 1, "1");
	/* A key that does not decode matches no name. */
	check_query("%zz=1&q=2", "q", 1, "2");
}

static void
test_url_query_get_refuses_what_does_not_fit(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(url_query_get("q=abc", "q", out, sizeof(out)), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(url_query_get("q=abcd", "q", out, sizeof(out)), -2);
	assert_int_equal(url_query_get("q=", "q", out, 0), -2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_path_decode_passes_plain_path),
	    cmocka_unit_test(test_url_path_decode_decodes_hex_in_any_case),
	    cmocka_unit_test(test_url_path_decode_rejects_malformed_escapes),
	    cmocka_unit_test(
	        test_url_path_decode_rejects_nul_and_encoded_slash),
	    cmocka_unit_test(test_url_path_decode_refuses_what_does_not_fit),
	    cmocka_unit_test(test_url_query_get_finds_parameters),
	    cmocka_unit_test(test_url_query_get_reports_absent_names),
	    cmocka_unit_test(test_url_query_get_decodes_plus_and_escapes),
	    cmocka_unit_test(test_url_query_get_first_match_wins),
	    cmocka_unit_test(test_url_query_get_skips_empty_pairs),
	    cmocka_unit_test(test_url_query_get_rejects_malformed_values),
	    cmocka_unit_test(test_url_query_get_refuses_what_does_not_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
