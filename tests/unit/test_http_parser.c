/* tests/unit/test_http_parser.c — sans-IO HTTP/1.1 request parser */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/http_parser.h"

#define S(lit) lit, sizeof(lit) - 1 /* a literal and its length */
#define INCOMPLETE (-100) /* feed_pieces: all fed, request not complete */
#define OK_ALL (-200)     /* expectation: done, every byte consumed */

typedef void (*check_fn)(const struct http_request *req, const void *arg);

/*
 * Feeds raw to p: a first piece of first bytes, then pieces of rest
 * bytes. Returns the bytes consumed when the request is complete, the
 * parser's error, or INCOMPLETE.
 */
static ssize_t
feed_pieces(struct http_parser *p, const char *raw, size_t len, size_t first,
            size_t rest)
{
	size_t off = 0, piece = first;
	ssize_t n;

	do {
		if (piece > len - off)
			piece = len - off;
		n = http_parser_feed(p, (const uint8_t *)raw + off, piece);
		if (n < 0) {
			assert_int_equal(p->state, HTTP_PARSER_ERROR);
			assert_null(http_parser_request(p));
			/* The error is sticky. */
			assert_int_equal(
			    http_parser_feed(p, (const uint8_t *)"x", 1), n);
			return n;
		}
		assert_true((size_t)n <= piece);
		off += (size_t)n;
		if (p->state == HTTP_PARSER_DONE) {
			/* Nothing more is taken until a reset. */
			assert_int_equal(
			    http_parser_feed(p, (const uint8_t *)"x", 1), 0);
			return (ssize_t)off;
		}
		assert_int_equal((size_t)n, piece);
		piece = rest;
	} while (off < len);
	return INCOMPLETE;
}

/* Runs one feeding schedule of raw and checks the outcome. */
static void
parse_once(const char *raw, size_t len, size_t max_head, size_t max_body,
           size_t first, size_t rest, ssize_t want, check_fn check,
           const void *arg)
{
	struct http_parser p;
	ssize_t n;

	http_parser_init(&p, max_head, max_body);
	n = feed_pieces(&p, raw, len, first, rest);
	if (n != (want == OK_ALL ? (ssize_t)len : want))
		fail_msg("feeding %zu then %zu bytes of \"%.*s\": got %zd, "
		         "want %zd",
		         first, rest, (int)len, raw, n, want);
	if (n >= 0 && check != NULL)
		check(http_parser_request(&p), arg);
	http_parser_free(&p);
}

/*
 * Parses raw whole, one byte at a time and split at every point; each
 * way must give want (OK_ALL, a byte count, an error or INCOMPLETE),
 * and a completed request must pass check.
 */
static void
parse_all_ways_limits(const char *raw, size_t len, size_t max_head,
                      size_t max_body, ssize_t want, check_fn check,
                      const void *arg)
{
	size_t k;

	parse_once(raw, len, max_head, max_body, len, len, want, check, arg);
	parse_once(raw, len, max_head, max_body, 1, 1, want, check, arg);
	for (k = 0; k <= len; k++)
		parse_once(raw, len, max_head, max_body, k, len, want, check,
		           arg);
}

/* parse_all_ways_limits with the default limits. */
static void
parse_all_ways(const char *raw, size_t len, ssize_t want, check_fn check,
               const void *arg)
{
	parse_all_ways_limits(raw, len, 0, 0, want, check, arg);
}

/* Checks that the request carries the body given as a string. */
static void
check_body(const struct http_request *req, const void *arg)
{
	const char *want = arg;

	assert_non_null(req);
	if (*want == '\0') {
		assert_null(req->body);
		assert_int_equal(req->body_len, 0);
		return;
	}
	assert_int_equal(req->body_len, strlen(want));
	assert_memory_equal(req->body, want, req->body_len);
}

/* Checks the simple GET of test_http_parser_parses_simple_get. */
static void
check_simple_get(const struct http_request *req, const void *arg)
{
	(void)arg;
	assert_non_null(req);
	assert_int_equal(req->method, HTTP_GET);
	assert_string_equal(req->method_name, "GET");
	assert_string_equal(req->target, "/api/rooms/a%20b/messages?limit=5");
	assert_string_equal(req->path, "/api/rooms/a%20b/messages");
	assert_string_equal(req->query, "limit=5");
	assert_int_equal(req->minor, 1);
	assert_int_equal(req->nheaders, 2);
	assert_string_equal(req->headers[0].name, "Host");
	assert_string_equal(req->headers[0].value, "example.com");
	assert_string_equal(req->headers[1].name, "authorization");
	assert_string_equal(req->headers[1].value, "Bearer abc");
	assert_int_equal(req->keep_alive, 1);
	assert_int_equal(req->expect_continue, 0);
	assert_int_equal(req->chunked, 0);
	assert_int_equal(req->content_length, -1);
	assert_null(req->body);
	assert_int_equal(req->body_len, 0);
}

static void
test_http_parser_parses_simple_get(void **state)
{
	(void)state;
	parse_all_ways(S("GET /api/rooms/a%20b/messages?limit=5 HTTP/1.1\r\n"
	                 "Host: example.com\r\n"
	                 "authorization: Bearer abc\r\n\r\n"),
	               OK_ALL, check_simple_get, NULL);
}

static void
test_http_parser_init_allocates_nothing(void **state)
{
	struct http_parser p;

	(void)state;
	http_parser_init(&p, 0, 0);
	assert_int_equal(p.state, HTTP_PARSER_HEAD);
	assert_int_equal(p.max_head, HTTP_MAX_HEAD);
	assert_int_equal(p.max_body, HTTP_MAX_BODY);
	assert_null(p.head);
	assert_null(p.body);
	assert_null(http_parser_request(&p));
	assert_int_equal(http_parser_feed(&p, NULL, 0), 0);
	assert_null(p.head);
	http_parser_free(&p);
}

/* Checks path and query against a "path|query" string ("|" = NULL). */
static void
check_target(const struct http_request *req, const void *arg)
{
	const char *want = arg, *bar = strchr(want, '|');

	assert_non_null(req);
	assert_int_equal(strlen(req->path), (size_t)(bar - want));
	assert_memory_equal(req->path, want, (size_t)(bar - want));
	if (bar[1] == '\0')
		assert_null(req->query);
	else
		assert_string_equal(req->query, bar[1] == '-' ? "" : bar + 1);
}

static void
test_http_parser_splits_path_and_query(void **state)
{
	(void)state;
	parse_all_ways(S("GET /a/b HTTP/1.0\r\n\r\n"), OK_ALL, check_target,
	               "/a/b|");
	parse_all_ways(S("GET /a?x=1&y=2 HTTP/1.0\r\n\r\n"), OK_ALL,
	               check_target, "/a|x=1&y=2");
	parse_all_ways(S("GET /a? HTTP/1.0\r\n\r\n"), OK_ALL, check_target,
	               "/a|-");
	parse_all_ways(S("GET /a?b?c HTTP/1.0\r\n\r\n"), OK_ALL, check_target,
	               "/a|b?c");
	parse_all_ways(S("OPTIONS * HTTP/1.0\r\n\r\n"), OK_ALL, check_target,
	               "*|");
	parse_all_ways(S("GET http://h/a?q HTTP/1.0\r\n\r\n"), OK_ALL,
	               check_target, "http://h/a|q");
}

static void
test_http_parser_maps_every_known_method(void **state)
{
	static const struct {
		const char *name;
		enum http_method method;
	} methods[] = {
	    {"GET", HTTP_GET},          {"HEAD", HTTP_HEAD},
	    {"POST", HTTP_POST},        {"PUT", HTTP_PUT},
	    {"DELETE", HTTP_DELETE},    {"OPTIONS", HTTP_OPTIONS},
	    {"PATCH", HTTP_PATCH},      {"CONNECT", HTTP_CONNECT},
	    {"TRACE", HTTP_TRACE},      {"FOO", HTTP_UNKNOWN},
	    {"get", HTTP_UNKNOWN},      {"GETS", HTTP_UNKNOWN},
	    {"M-SEARCH", HTTP_UNKNOWN}, {"!#$%&'*+-.^_`|~", HTTP_UNKNOWN},
	};
	struct http_parser p;
	char raw[128];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		n = snprintf(raw, sizeof(raw), "%s / HTTP/1.0\r\n\r\n",
		             methods[i].name);
		http_parser_init(&p, 0, 0);
		assert_int_equal(
		    feed_pieces(&p, raw, (size_t)n, (size_t)n, (size_t)n), n);
		assert_int_equal(p.req.method, methods[i].method);
		assert_string_equal(p.req.method_name, methods[i].name);
		http_parser_free(&p);
	}
}

static void
test_http_parser_rejects_bad_method_tokens(void **state)
{
	(void)state;
	parse_all_ways(S("G(ET / HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S(" GET / HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("G\xc3\xa9T / HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GE T / HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET\t/ HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
}

static void
test_http_parser_rejects_bad_request_targets(void **state)
{
	(void)state;
	parse_all_ways(S("GET  HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET  / HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET /a\x01 HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET /a\x7f HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET /a\tb HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET /\xc3\xa9 HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET /a\0b HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET /a b HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL, NULL);
}

static void
test_http_parser_rejects_unsupported_versions_with_505(void **state)
{
	(void)state;
	parse_all_ways(S("GET / HTTP/2.0\r\n\r\n"), HTTP_E_VERSION, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.2\r\n\r\n"), HTTP_E_VERSION, NULL, NULL);
	parse_all_ways(S("GET / HTTP/0.9\r\n\r\n"), HTTP_E_VERSION, NULL, NULL);
	parse_all_ways(S("GET / HTTP/3.1\r\n\r\n"), HTTP_E_VERSION, NULL, NULL);
}

static void
test_http_parser_rejects_malformed_versions_with_400(void **state)
{
	(void)state;
	parse_all_ways(S("GET / HTTP/1\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET / HTTP/2\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET / HTTP/1.10\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET / HTTP/11.1\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET / http/1.1\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET / HTTP/1,1\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
	parse_all_ways(S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / \r\n\r\n"), HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/a.b\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
}

/* Checks that the request is HTTP/1.<minor> as given in arg. */
static void
check_minor(const struct http_request *req, const void *arg)
{
	assert_non_null(req);
	assert_int_equal(req->minor, *(const int *)arg);
}

static void
test_http_parser_requires_exactly_one_host_in_http11(void **state)
{
	static const int zero = 0, one = 1;

	(void)state;
	parse_all_ways(S("GET / HTTP/1.0\r\n\r\n"), OK_ALL, check_minor, &zero);
	parse_all_ways(S("GET / HTTP/1.1\r\nhOsT: \r\n\r\n"), OK_ALL,
	               check_minor, &one);
	parse_all_ways(S("GET / HTTP/1.1\r\nX: y\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

/* Checks the headers of the bare-LF test. */
static void
check_bare_lf(const struct http_request *req, const void *arg)
{
	(void)arg;
	assert_non_null(req);
	assert_string_equal(req->target, "/x");
	assert_int_equal(req->nheaders, 2);
	assert_string_equal(http_request_header(req, "host"), "a");
	assert_string_equal(http_request_header(req, "x-y"), "z");
}

static void
test_http_parser_accepts_bare_lf_line_endings(void **state)
{
	(void)state;
	parse_all_ways(S("GET /x HTTP/1.1\nHost: a\nX-Y: z\n\n"), OK_ALL,
	               check_bare_lf, NULL);
	parse_all_ways(S("GET /x HTTP/1.1\r\nHost: a\nX-Y: z\r\n\n"), OK_ALL,
	               check_bare_lf, NULL);
	parse_all_ways(S("GET /x HTTP/1.1\nHost: a\r\nX-Y: z\n\r\n"), OK_ALL,
	               check_bare_lf, NULL);
}

static void
test_http_parser_rejects_bare_cr(void **state)
{
	(void)state;
	parse_all_ways(S("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.1\rHost: a\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("\rGET / HTTP/1.0\r\n\r\n"), HTTP_E_BAD_REQUEST, NULL,
	               NULL);
}

static void
test_http_parser_skips_empty_lines_before_request_line(void **state)
{
	(void)state;
	parse_all_ways(S("\r\n\n\r\nGET /a?b HTTP/1.0\r\n\r\n"), OK_ALL,
	               check_target, "/a|b");
	/* Only empty lines so far: still waiting for a request. */
	parse_all_ways(S("\r\n\r\n\r\n"), INCOMPLETE, NULL, NULL);
}

static void
test_http_parser_rejects_malformed_header_names(void **state)
{
	(void)state;
	parse_all_ways(S("GET / HTTP/1.0\r\nHost : a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nHost\t: a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\n: a\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nNoColon\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nX(y): a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nX y: a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nX\0: a\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

static void
test_http_parser_rejects_obs_fold(void **state)
{
	(void)state;
	parse_all_ways(S("GET / HTTP/1.0\r\nX: a\r\n b\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nX: a\r\n\tb\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\n X: a\r\n\r\n"), HTTP_E_BAD_REQUEST,
	               NULL, NULL);
}

static void
test_http_parser_rejects_control_chars_in_values(void **state)
{
	(void)state;
	parse_all_ways(S("GET / HTTP/1.0\r\nX: a\x01 b\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nX: a\x7f\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nX: a\0b\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("GET / HTTP/1.0\r\nX: \x1b[0m\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

/* Checks the trimmed values of test_http_parser_trims_header_values. */
static void
check_values(const struct http_request *req, const void *arg)
{
	(void)arg;
	assert_non_null(req);
	assert_int_equal(req->nheaders, 4);
	assert_string_equal(req->headers[0].value, "a \t b");
	assert_string_equal(req->headers[1].value, "");
	assert_string_equal(req->headers[2].value, "\xc3\xa9t\xc3\xa9");
	assert_string_equal(req->headers[3].value, "x:y");
}

static void
test_http_parser_trims_header_values(void **state)
{
	(void)state;
	parse_all_ways(S("GET / HTTP/1.0\r\n"
	                 "A: \t a \t b \t\r\n"
	                 "B:\r\n"
	                 "C:\xc3\xa9t\xc3\xa9\r\n"
	                 "D:x:y\r\n\r\n"),
	               OK_ALL, check_values, NULL);
}

/* Builds a request with nheaders headers (Host first) into buf. */
static size_t
build_headers(char *buf, size_t size, int nheaders)
{
	size_t len;
	int i;

	len = (size_t)snprintf(buf, size, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 1; i < nheaders; i++)
		len += (size_t)snprintf(buf + len, size - len, "X-%d: %d\r\n",
		                        i, i);
	len += (size_t)snprintf(buf + len, size - len, "\r\n");
	return len;
}

/* Checks that the request has HTTP_MAX_HEADERS headers. */
static void
check_max_headers(const struct http_request *req, const void *arg)
{
	(void)arg;
	assert_non_null(req);
	assert_int_equal(req->nheaders, HTTP_MAX_HEADERS);
	assert_string_equal(req->headers[HTTP_MAX_HEADERS - 1].name, "X-63");
}

static void
test_http_parser_limits_header_count(void **state)
{
	char buf[4096];
	size_t len;

	(void)state;
	len = build_headers(buf, sizeof(buf), HTTP_MAX_HEADERS);
	parse_all_ways(buf, len, OK_ALL, check_max_headers, NULL);
	len = build_headers(buf, sizeof(buf), HTTP_MAX_HEADERS + 1);
	parse_all_ways(buf, len, HTTP_E_HEAD_TOO_LARGE, NULL, NULL);
}

static void
test_http_parser_accepts_head_at_exact_limit(void **state)
{
	static const char raw[] = "\r\nGET /abc HTTP/1.1\r\nHost: h\r\n\r\n";

	(void)state;
	parse_all_ways_limits(raw, sizeof(raw) - 1, sizeof(raw) - 1, 0, OK_ALL,
	                      check_target, "/abc|");
	parse_all_ways_limits(raw, sizeof(raw) - 1, sizeof(raw) - 2, 0,
	                      HTTP_E_HEAD_TOO_LARGE, NULL, NULL);
}

static void
test_http_parser_accepts_default_head_limit_exactly(void **state)
{
	char *raw = malloc(HTTP_MAX_HEAD + 1);
	size_t fill;

	(void)state;
	fill = HTTP_MAX_HEAD - strlen("GET / HTTP/1.0\r\nX: \r\n\r\n");
	memcpy(raw, "GET / HTTP/1.0\r\nX: ", 19);
	memset(raw + 19, 'a', fill);
	memcpy(raw + 19 + fill, "\r\n\r\n", 4);
	parse_once(raw, HTTP_MAX_HEAD, 0, 0, HTTP_MAX_HEAD, HTTP_MAX_HEAD,
	           OK_ALL, NULL, NULL);
	parse_once(raw, HTTP_MAX_HEAD, 0, 0, 1, 1, OK_ALL, NULL, NULL);
	/* One more byte of value: 431. */
	memset(raw + 19, 'a', fill + 1);
	memcpy(raw + 20 + fill, "\r\n\r\n", 4);
	parse_once(raw, HTTP_MAX_HEAD + 1, 0, 0, HTTP_MAX_HEAD + 1,
	           HTTP_MAX_HEAD + 1, HTTP_E_HEAD_TOO_LARGE, NULL, NULL);
	parse_once(raw, HTTP_MAX_HEAD + 1, 0, 0, 7, 7, HTTP_E_HEAD_TOO_LARGE,
	           NULL, NULL);
	free(raw);
}

static void
test_http_parser_rejects_long_head_before_it_ends(void **state)
{
	struct http_parser p;
	uint8_t byte = 'a';
	size_t i;

	(void)state;
	http_parser_init(&p, 64, 0);
	assert_int_equal(http_parser_feed(&p, (const uint8_t *)"GET /", 5), 5);
	for (i = 5; i < 64; i++)
		assert_int_equal(http_parser_feed(&p, &byte, 1), 1);
	/* The 65th byte is one too many, and no CRLFCRLF was needed. */
	assert_int_equal(http_parser_feed(&p, &byte, 1), HTTP_E_HEAD_TOO_LARGE);
	assert_int_equal(p.state, HTTP_PARSER_ERROR);
	http_parser_free(&p);
	/* Same with the request-line done and one endless header. */
	parse_all_ways_limits(S("GET / HTTP/1.0\r\nX: aaaaaaaaaaaaaaaaaaaaa"),
	                      30, 0, HTTP_E_HEAD_TOO_LARGE, NULL, NULL);
	/* And with endless empty lines. */
	parse_all_ways_limits(S("\r\n\r\n\r\n\r\n\r\n\r\n"), 11, 0,
	                      HTTP_E_HEAD_TOO_LARGE, NULL, NULL);
}

static void
test_http_parser_reads_content_length_body(void **state)
{
	(void)state;
	parse_all_ways(S("POST /api/login HTTP/1.1\r\nHost: h\r\n"
	                 "Content-Length: 5\r\n\r\nhello"),
	               OK_ALL, check_body, "hello");
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Content-Length: 0\r\n\r\n"),
	               OK_ALL, check_body, "");
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Content-Length: 007\r\n\r\nabcdefg"),
	               OK_ALL, check_body, "abcdefg");
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Content-Length: 5\r\n\r\nhel"),
	               INCOMPLETE, NULL, NULL);
}

static void
test_http_parser_limits_content_length_body(void **state)
{
	struct http_parser p;
	static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\n"
	                           "Content-Length: 6\r\n\r\n";

	(void)state;
	parse_all_ways_limits(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                        "Content-Length: 5\r\n\r\nhello"),
	                      0, 5, OK_ALL, check_body, "hello");
	parse_all_ways_limits(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                        "Content-Length: 6\r\n\r\nhello!"),
	                      0, 5, HTTP_E_BODY_TOO_LARGE, NULL, NULL);
	/* 413 is known right after the head, without any body byte. */
	http_parser_init(&p, 0, 5);
	assert_int_equal(
	    http_parser_feed(&p, (const uint8_t *)head, sizeof(head) - 1),
	    HTTP_E_BODY_TOO_LARGE);
	http_parser_free(&p);
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Content-Length: 65537\r\n\r\n"),
	               HTTP_E_BODY_TOO_LARGE, NULL, NULL);
}

static void
test_http_parser_accepts_body_at_default_limit(void **state)
{
	static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\n"
	                           "Content-Length: 65536\r\n\r\n";
	size_t len = sizeof(head) - 1 + HTTP_MAX_BODY;
	char *raw = malloc(len);
	struct http_parser p;

	(void)state;
	memcpy(raw, head, sizeof(head) - 1);
	memset(raw + sizeof(head) - 1, 'b', HTTP_MAX_BODY);
	http_parser_init(&p, 0, 0);
	assert_int_equal(feed_pieces(&p, raw, len, 1000, 1000), len);
	assert_int_equal(p.req.body_len, HTTP_MAX_BODY);
	assert_int_equal(p.req.body[HTTP_MAX_BODY - 1], 'b');
	http_parser_free(&p);
	free(raw);
}

static void
test_http_parser_rejects_malformed_content_length(void **state)
{
	static const char *bad[] = {
	    "", "+5", "-1", "5a", "0x5", "5, 5", "1 2", "5.0", "\xd9\xa5",
	};
	struct http_parser p;
	char raw[128];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = snprintf(raw, sizeof(raw),
		             "POST / HTTP/1.0\r\nContent-Length: %s\r\n\r\n",
		             bad[i]);
		http_parser_init(&p, 0, 0);
		assert_int_equal(feed_pieces(&p, raw, (size_t)n, 1, 1),
		                 HTTP_E_BAD_REQUEST);
		http_parser_free(&p);
	}
}

static void
test_http_parser_requires_duplicate_content_lengths_to_agree(void **state)
{
	(void)state;
	parse_all_ways(S("POST / HTTP/1.0\r\nContent-Length: 2\r\n"
	                 "content-length: 02\r\n\r\nok"),
	               OK_ALL, check_body, "ok");
	parse_all_ways(S("POST / HTTP/1.0\r\nContent-Length: 2\r\n"
	                 "Content-Length: 3\r\n\r\nok!"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

static void
test_http_parser_rejects_content_length_overflow(void **state)
{
	(void)state;
	/* INT64_MAX fits: it is merely too large. */
	parse_all_ways(S("POST / HTTP/1.0\r\n"
	                 "Content-Length: 9223372036854775807\r\n\r\n"),
	               HTTP_E_BODY_TOO_LARGE, NULL, NULL);
	parse_all_ways(S("POST / HTTP/1.0\r\n"
	                 "Content-Length: 9223372036854775808\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("POST / HTTP/1.0\r\n"
	                 "Content-Length: 99999999999999999999999\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

static void
test_http_parser_rejects_content_length_with_transfer_encoding(void **state)
{
	(void)state;
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n"
	                 "Content-Length: 3\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: gzip\r\n"
	                 "Content-Length: 3\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

/* Checks a chunked request decoded to "hello world". */
static void
check_chunked(const struct http_request *req, const void *arg)
{
	check_body(req, arg);
	assert_int_equal(req->chunked, 1);
	assert_int_equal(req->content_length, -1);
}

static void
test_http_parser_decodes_chunked_body(void **state)
{
	(void)state;
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"
	                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
	               OK_ALL, check_chunked, "hello world");
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: ChUnKeD\r\n\r\n"
	                 "0000B\r\nhello world\r\n0\r\n\r\n"),
	               OK_ALL, check_chunked, "hello world");
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"
	                 "a\r\n0123456789\r\n000\r\n\r\n"),
	               OK_ALL, check_chunked, "0123456789");
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
	               OK_ALL, check_chunked, "");
}

static void
test_http_parser_ignores_chunk_extensions_and_trailers(void **state)
{
	(void)state;
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"
	                 "5;name=value\r\nhello\r\n"
	                 "6 ; a=\"q;x\" ;b\r\n world\r\n"
	                 "0;last\r\nTrailer-One: 1\r\nTrailer-Two:\t2\r\n\r\n"),
	               OK_ALL, check_chunked, "hello world");
}

static void
test_http_parser_limits_chunked_body(void **state)
{
	(void)state;
	parse_all_ways_limits(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                        "Transfer-Encoding: chunked\r\n\r\n"
	                        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
	                      0, 11, OK_ALL, check_chunked, "hello world");
	parse_all_ways_limits(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                        "Transfer-Encoding: chunked\r\n\r\n"
	                        "5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n"),
	                      0, 11, HTTP_E_BODY_TOO_LARGE, NULL, NULL);
	/* A single huge chunk is refused at its size line. */
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"
	                 "FFFFFFFFFFFFFFFF\r\n"),
	               HTTP_E_BODY_TOO_LARGE, NULL, NULL);
	/* Trailers count against max_head: 431. */
	parse_all_ways_limits(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                        "Transfer-Encoding: chunked\r\n\r\n"
	                        "0\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	                        "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"),
	                      64, 0, HTTP_E_HEAD_TOO_LARGE, NULL, NULL);
}

static void
test_http_parser_rejects_chunk_size_overflow(void **state)
{
	(void)state;
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"
	                 "10000000000000000\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n"
	                 "FFFFFFFFFFFFFFFFF\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

static void
test_http_parser_rejects_malformed_chunks(void **state)
{
	static const char *bad[] = {
	    "\r\n",                  /* no size */
	    "x\r\n",                 /* not hex */
	    "-5\r\nhello\r\n",       /* sign */
	    "0x5\r\nhello\r\n",      /* 0x prefix */
	    "5 x\r\nhello\r\n",      /* junk after the size */
	    "5 \r\nhello\r\n",       /* blanks without extension */
	    "5\nhello\r\n",          /* bare LF after the size */
	    "5\rhello\r\n",          /* bare CR after the size */
	    "5;a\x01\r\nhello\r\n",  /* control in an extension */
	    "5\r\nhelloX\r\n",       /* data longer than its size */
	    "5\r\nhello\n0\r\n\r\n", /* bare LF after data */
	    "5\r\nhello\r0\r\n\r\n", /* bare CR after data */
	    "0\r\nX: a\rb\r\n\r\n",  /* bare CR in a trailer */
	    "0\r\nX: a\x01\r\n\r\n", /* control in a trailer */
	    "0\r\nX: a\n\r\n",       /* bare LF after a trailer */
	    "0\r\n\n",               /* bare LF at the end */
	    "0\r\n\rx",              /* CR without LF at the end */
	};
	struct http_parser p;
	char raw[256];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = snprintf(raw, sizeof(raw),
		             "POST / HTTP/1.1\r\nHost: h\r\n"
		             "Transfer-Encoding: chunked\r\n\r\n%s",
		             bad[i]);
		http_parser_init(&p, 0, 0);
		if (feed_pieces(&p, raw, (size_t)n, 1, 1) != HTTP_E_BAD_REQUEST)
			fail_msg("chunked body \"%s\" not refused", bad[i]);
		http_parser_free(&p);
	}
}

static void
test_http_parser_rejects_other_transfer_codings_with_501(void **state)
{
	static const char *codings[] = {
	    "gzip",          "identity",    "gzip, chunked",
	    "chunked, gzip", "chunked;q=1", "chunked,",
	};
	struct http_parser p;
	char raw[128];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
		n = snprintf(raw, sizeof(raw),
		             "POST / HTTP/1.1\r\nHost: h\r\n"
		             "Transfer-Encoding: %s\r\n\r\n",
		             codings[i]);
		http_parser_init(&p, 0, 0);
		assert_int_equal(feed_pieces(&p, raw, (size_t)n, (size_t)n, 1),
		                 HTTP_E_NOT_IMPLEMENTED);
		http_parser_free(&p);
	}
}

static void
test_http_parser_rejects_repeated_or_empty_transfer_encoding(void **state)
{
	(void)state;
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding: chunked\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
	parse_all_ways(S("POST / HTTP/1.1\r\nHost: h\r\n"
	                 "Transfer-Encoding:\r\n\r\n"),
	               HTTP_E_BAD_REQUEST, NULL, NULL);
}

static void
test_http_parser_applies_keep_alive_rules(void **state)
{
	static const struct {
		const char *raw;
		int keep_alive;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", 0},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\n"
	     "\r\n",
	     0},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n"
	     "Connection: close\r\n\r\n",
	     0},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 1},
	    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n", 1},
	    {"GET / HTTP/1.0\r\n\r\n", 0},
	    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
	    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
	    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0},
	    {"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", 0},
	    /* Chunked in HTTP/1.0 is faulty framing: close after it. */
	    {"POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
	     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	     0},
	};
	struct http_parser p;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].raw);
		http_parser_init(&p, 0, 0);
		assert_int_equal(feed_pieces(&p, cases[i].raw, len, len, len),
		                 len);
		if (p.req.keep_alive != cases[i].keep_alive)
			fail_msg("keep_alive %d for \"%s\"", p.req.keep_alive,
			         cases[i].raw);
		http_parser_free(&p);
	}
}

static void
test_http_parser_exposes_head_while_reading_body(void **state)
{
	static const char head[] = "POST /api/login HTTP/1.1\r\nHost: h\r\n"
	                           "Expect: 100-Continue\r\n"
	                           "Content-Length: 4\r\n\r\n";
	struct http_parser p;

	(void)state;
	http_parser_init(&p, 0, 0);
	assert_int_equal(
	    http_parser_feed(&p, (const uint8_t *)head, sizeof(head) - 1),
	    sizeof(head) - 1);
	assert_int_equal(p.state, HTTP_PARSER_BODY);
	assert_null(http_parser_request(&p));
	assert_int_equal(p.req.expect_continue, 1);
	assert_int_equal(p.req.content_length, 4);
	assert_int_equal(p.req.method, HTTP_POST);
	assert_string_equal(p.req.path, "/api/login");
	assert_int_equal(http_parser_feed(&p, (const uint8_t *)"{}{}", 4), 4);
	assert_non_null(http_parser_request(&p));
	assert_int_equal(http_parser_request(&p)->expect_continue, 1);
	http_parser_free(&p);
}

static void
test_http_parser_ignores_expect_in_http10_and_other_values(void **state)
{
	struct http_parser p;
	static const char *raws[] = {
	    "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: h\r\n\r\n",
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		len = strlen(raws[i]);
		http_parser_init(&p, 0, 0);
		assert_int_equal(feed_pieces(&p, raws[i], len, len, len), len);
		assert_int_equal(p.req.expect_continue, 0);
		http_parser_free(&p);
	}
}

/*
 * Parses the pipelined requests in raw with the given schedule,
 * resetting after each, and checks their targets against want (a
 * NULL-terminated list).
 */
static void
parse_pipeline(const char *raw, size_t len, size_t first, size_t rest,
               const char *const *want)
{
	struct http_parser p;
	size_t off = 0, start = 0, piece = first;
	ssize_t n;

	http_parser_init(&p, 0, 0);
	while (off < len) {
		if (piece > len - off)
			piece = len - off;
		n = http_parser_feed(&p, (const uint8_t *)raw + off, piece);
		assert_true(n >= 0 && (size_t)n <= piece);
		off += (size_t)n;
		piece -= (size_t)n;
		if (p.state == HTTP_PARSER_DONE) {
			assert_non_null(*want);
			assert_string_equal(http_parser_request(&p)->target,
			                    *want);
			/* What was consumed is exactly this request. */
			assert_memory_equal(
			    raw + start,
			    http_parser_request(&p)->body ? "POST" : "GET", 3);
			start = off;
			want++;
			http_parser_reset(&p);
		} else {
			assert_int_equal(piece, 0);
		}
		if (piece == 0)
			piece = rest;
	}
	assert_null(*want);
	assert_int_equal(p.state, HTTP_PARSER_HEAD);
	http_parser_free(&p);
}

static void
test_http_parser_stops_after_each_pipelined_request(void **state)
{
	static const char raw[] =
	    "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
	    "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
	    "POST /three HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
	    "GET /four HTTP/1.0\n\n";
	static const char *const want[] = {"/one", "/two", "/three", "/four",
	                                   NULL};
	struct http_parser p;
	size_t k, len = sizeof(raw) - 1;

	(void)state;
	parse_pipeline(raw, len, len, len, want);
	parse_pipeline(raw, len, 1, 1, want);
	for (k = 1; k < len; k++)
		parse_pipeline(raw, len, k, len, want);
	/* Fed whole, the first feed takes exactly the first request. */
	http_parser_init(&p, 0, 0);
	assert_int_equal(http_parser_feed(&p, (const uint8_t *)raw, len),
	                 strlen("GET /one HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_int_equal(p.state, HTTP_PARSER_DONE);
	http_parser_free(&p);
}

static void
test_http_parser_reset_keeps_only_small_buffers(void **state)
{
	static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\n"
	                           "Content-Length: 10000\r\n\r\n";
	static const char small[] = "POST / HTTP/1.1\r\nHost: h\r\n"
	                            "Content-Length: 2\r\n\r\nhi";
	struct http_parser p;
	char body[10000];

	(void)state;
	memset(body, 'z', sizeof(body));
	http_parser_init(&p, 0, 0);
	assert_int_equal(
	    http_parser_feed(&p, (const uint8_t *)head, sizeof(head) - 1),
	    sizeof(head) - 1);
	assert_int_equal(
	    http_parser_feed(&p, (const uint8_t *)body, sizeof(body)),
	    sizeof(body));
	assert_int_equal(http_parser_request(&p)->body_len, sizeof(body));
	http_parser_reset(&p);
	assert_null(p.body);
	assert_int_equal(p.state, HTTP_PARSER_HEAD);
	assert_null(http_parser_request(&p));
	assert_int_equal(
	    http_parser_feed(&p, (const uint8_t *)small, sizeof(small) - 1),
	    sizeof(small) - 1);
	http_parser_reset(&p);
	assert_non_null(p.head); /* small buffers are reused */
	assert_true(p.head_cap <= 1024);
	assert_non_null(p.body);
	assert_true(p.body_cap <= 4096);
	assert_int_equal(
	    http_parser_feed(&p, (const uint8_t *)small, sizeof(small) - 1),
	    sizeof(small) - 1);
	assert_memory_equal(http_parser_request(&p)->body, "hi", 2);
	assert_int_equal(p.req.content_length, 2);
	http_parser_free(&p);
	assert_null(p.head);
	assert_null(p.body);
}

static void
test_http_parser_can_be_reset_after_an_error(void **state)
{
	struct http_parser p;

	(void)state;
	http_parser_init(&p, 0, 0);
	assert_int_equal(
	    http_parser_feed(&p, (const uint8_t *)"BAD(\r\n\r\n", 8),
	    HTTP_E_BAD_REQUEST);
	assert_int_equal(http_parser_feed(&p, (const uint8_t *)"x", 1),
	                 HTTP_E_BAD_REQUEST);
	http_parser_reset(&p);
	assert_int_equal(feed_pieces(&p, S("GET / HTTP/1.0\r\n\r\n"), 3, 3),
	                 18);
	assert_int_equal(p.req.keep_alive, 0);
	http_parser_free(&p);
}

static void
test_http_error_status_maps_errors(void **state)
{
	(void)state;
	assert_int_equal(http_error_status(HTTP_E_BAD_REQUEST), 400);
	assert_int_equal(http_error_status(HTTP_E_HEAD_TOO_LARGE), 431);
	assert_int_equal(http_error_status(HTTP_E_BODY_TOO_LARGE), 413);
	assert_int_equal(http_error_status(HTTP_E_NOT_IMPLEMENTED), 501);
	assert_int_equal(http_error_status(HTTP_E_VERSION), 505);
	assert_int_equal(http_error_status(-42), 400);
}

/* Checks header lookups on the request of the next test. */
static void
check_lookup(const struct http_request *req, const void *arg)
{
	(void)arg;
	assert_non_null(req);
	assert_string_equal(http_request_header(req, "x-dup"), "first");
	assert_string_equal(http_request_header(req, "HOST"), "h");
	assert_null(http_request_header(req, "X-Missing"));
	assert_null(http_request_header(req, "X-Du"));
}

static void
test_http_request_header_finds_first_match_in_any_case(void **state)
{
	(void)state;
	parse_all_ways(S("GET / HTTP/1.1\r\nHost: h\r\nX-Dup: first\r\n"
	                 "x-dup: second\r\n\r\n"),
	               OK_ALL, check_lookup, NULL);
}

static void
test_http_header_has_token_matches_list_elements(void **state)
{
	(void)state;
	assert_int_equal(http_header_has_token("Upgrade", "upgrade"), 1);
	assert_int_equal(
	    http_header_has_token("keep-alive, Upgrade", "upgrade"), 1);
	assert_int_equal(http_header_has_token(" ,\tclose\t, ", "close"), 1);
	assert_int_equal(http_header_has_token("a,,b", "b"), 1);
	assert_int_equal(http_header_has_token("closed", "close"), 0);
	assert_int_equal(http_header_has_token("clos", "close"), 0);
	assert_int_equal(http_header_has_token("x close", "close"), 0);
	assert_int_equal(http_header_has_token("", "close"), 0);
	assert_int_equal(http_header_has_token(NULL, "close"), 0);
}

/*
 * Feeds raw to a deferring parser in pieces of size piece, reading the
 * body streamed with limit max: collects the body bytes into out.
 * Returns the bytes consumed when done, or the parser's error.
 */
static ssize_t
stream_pieces(const char *raw, size_t len, size_t piece, uint64_t max,
              char *out, size_t *outlen)
{
	struct http_parser p;
	size_t off = 0, n, clen;
	const uint8_t *chunk;
	ssize_t r;

	http_parser_init(&p, 0, 0);
	http_parser_defer_body(&p, 1);
	*outlen = 0;
	while (off < len && p.state != HTTP_PARSER_DONE) {
		n = piece < len - off ? piece : len - off;
		r = http_parser_feed(&p, (const uint8_t *)raw + off, n);
		if (r < 0) {
			http_parser_free(&p);
			return r;
		}
		chunk = http_parser_chunk(&p, &clen);
		if (clen > 0) {
			/* The chunk lies inside the bytes just consumed. */
			assert_true(chunk >= (const uint8_t *)raw + off);
			assert_true(chunk + clen <=
			            (const uint8_t *)raw + off + (size_t)r);
			memcpy(out + *outlen, chunk, clen);
			*outlen += clen;
		}
		off += (size_t)r;
		if (p.state == HTTP_PARSER_HEAD_DONE) {
			assert_non_null(p.req.path);
			assert_int_equal(http_parser_feed(&p,
			                     (const uint8_t *)"x", 1), 0);
			if ((r = http_parser_body(&p, max, 1)) < 0) {
				http_parser_free(&p);
				return r;
			}
		}
	}
	r = p.state == HTTP_PARSER_DONE ? (ssize_t)off : INCOMPLETE;
	if (r >= 0)
		assert_null(http_parser_request(&p)->body);
	http_parser_free(&p);
	return r;
}

static void
test_http_parser_streams_a_content_length_body_in_any_chunking(void **state)
{
	static const char raw[] = "POST /api/files HTTP/1.1\r\nHost: x\r\n"
	                          "Content-Length: 100000\r\n\r\n";
	size_t hl = sizeof raw - 1, total = hl + 100000 + 5, outlen;
	char *buf = malloc(total), *out = malloc(100000);
	size_t pieces[] = {1, 2, 7, 100, 4096, 70000, total};

	(void)state;
	memcpy(buf, raw, hl);
	for (size_t i = 0; i < 100000; i++)
		buf[hl + i] = (char)(i * 7);
	memcpy(buf + hl + 100000, "GET /", 5); /* a pipelined request */
	for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
		/* 100000 bytes: over the 64 KiB default, under the limit. */
		assert_int_equal(stream_pieces(buf, total, pieces[i], 200000,
		                               out, &outlen),
		                 (ssize_t)(hl + 100000));
		assert_int_equal(outlen, 100000);
		assert_memory_equal(out, buf + hl, 100000);
	}
	free(buf);
	free(out);
}

static void
test_http_parser_streams_a_chunked_body_in_any_chunking(void **state)
{
	static const char raw[] = "POST /u HTTP/1.1\r\nHost: x\r\n"
	                          "Transfer-Encoding: chunked\r\n\r\n"
	                          "5\r\nhello\r\n1;ext=1\r\n \r\n"
	                          "6\r\nworld!\r\n0\r\nTrailer: t\r\n\r\n";
	char out[64];
	size_t outlen;

	(void)state;
	for (size_t piece = 1; piece <= sizeof raw; piece++) {
		assert_int_equal(stream_pieces(raw, sizeof raw - 1, piece,
		                               1000, out, &outlen),
		                 (ssize_t)(sizeof raw - 1));
		assert_int_equal(outlen, 12);
		assert_memory_equal(out, "hello world!", 12);
	}
}

static void
test_http_parser_stream_limit_decides_413(void **state)
{
	static const char cl[] = "POST /u HTTP/1.1\r\nHost: x\r\n"
	                         "Content-Length: 11\r\n\r\nhello world";
	static const char ch[] = "POST /u HTTP/1.1\r\nHost: x\r\n"
	                         "Transfer-Encoding: chunked\r\n\r\n"
	                         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	char out[64];
	size_t outlen;

	(void)state;
	/* Exactly at the limit: accepted; one byte over: 413, decided from
	 * Content-Length before any body byte, or as chunks arrive. */
	assert_int_equal(stream_pieces(cl, sizeof cl - 1, 3, 11, out, &outlen),
	                 (ssize_t)(sizeof cl - 1));
	assert_int_equal(stream_pieces(cl, sizeof cl - 1, 3, 10, out, &outlen),
	                 HTTP_E_BODY_TOO_LARGE);
	assert_int_equal(outlen, 0);
	assert_int_equal(stream_pieces(ch, sizeof ch - 1, 2, 11, out, &outlen),
	                 (ssize_t)(sizeof ch - 1));
	assert_int_equal(stream_pieces(ch, sizeof ch - 1, 2, 10, out, &outlen),
	                 HTTP_E_BODY_TOO_LARGE);
	assert_int_equal(outlen, 5);
}

static void
test_http_parser_defer_leaves_bodiless_requests_and_resets(void **state)
{
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char post[] = "POST / HTTP/1.1\r\nHost: x\r\n"
	                           "Content-Length: 70000\r\n\r\n";
	struct http_parser p;

	(void)state;
	http_parser_init(&p, 0, 0);
	http_parser_defer_body(&p, 1);
	assert_int_equal(http_parser_feed(&p, (const uint8_t *)get,
	                                  sizeof get - 1),
	                 (ssize_t)(sizeof get - 1));
	assert_int_equal(p.state, HTTP_PARSER_DONE);
	http_parser_reset(&p);
	/* Over the default limit: only http_parser_body decides. */
	assert_int_equal(http_parser_feed(&p, (const uint8_t *)post,
	                                  sizeof post - 1),
	                 (ssize_t)(sizeof post - 1));
	assert_int_equal(p.state, HTTP_PARSER_HEAD_DONE);
	assert_int_equal(http_parser_body(&p, 0, 0), HTTP_E_BODY_TOO_LARGE);
	http_parser_reset(&p);
	assert_int_equal(http_parser_feed(&p, (const uint8_t *)post,
	                                  sizeof post - 1),
	                 (ssize_t)(sizeof post - 1));
	assert_int_equal(http_parser_body(&p, 100000, 1), 0);
	assert_int_equal(p.state, HTTP_PARSER_BODY);
	/* A reset restores the default limit and buffering. */
	http_parser_reset(&p);
	assert_int_equal(p.max_body, HTTP_MAX_BODY);
	assert_int_equal(p.stream, 0);
	/* http_parser_body outside HEAD_DONE is a caller's error. */
	assert_true(http_parser_body(&p, 0, 0) < 0);
	http_parser_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_parser_parses_simple_get),
	    cmocka_unit_test(test_http_parser_init_allocates_nothing),
	    cmocka_unit_test(test_http_parser_splits_path_and_query),
	    cmocka_unit_test(test_http_parser_maps_every_known_method),
	    cmocka_unit_test(test_http_parser_rejects_bad_method_tokens),
	    cmocka_unit_test(test_http_parser_rejects_bad_request_targets),
	    cmocka_unit_test(
	        test_http_parser_rejects_unsupported_versions_with_505),
	    cmocka_unit_test(
	        test_http_parser_rejects_malformed_versions_with_400),
	    cmocka_unit_test(
	        test_http_parser_requires_exactly_one_host_in_http11),
	    cmocka_unit_test(test_http_parser_accepts_bare_lf_line_endings),
	    cmocka_unit_test(test_http_parser_rejects_bare_cr),
	    cmocka_unit_test(
	        test_http_parser_skips_empty_lines_before_request_line),
	    cmocka_unit_test(test_http_parser_rejects_malformed_header_names),
	    cmocka_unit_test(test_http_parser_rejects_obs_fold),
	    cmocka_unit_test(test_http_parser_rejects_control_chars_in_values),
	    cmocka_unit_test(test_http_parser_trims_header_values),
	    cmocka_unit_test(test_http_parser_limits_header_count),
	    cmocka_unit_test(test_http_parser_accepts_head_at_exact_limit),
	    cmocka_unit_test(
	        test_http_parser_accepts_default_head_limit_exactly),
	    cmocka_unit_test(test_http_parser_rejects_long_head_before_it_ends),
	    cmocka_unit_test(test_http_parser_reads_content_length_body),
	    cmocka_unit_test(test_http_parser_limits_content_length_body),
	    cmocka_unit_test(test_http_parser_accepts_body_at_default_limit),
	    cmocka_unit_test(test_http_parser_rejects_malformed_content_length),
	    cmocka_unit_test(
	        test_http_parser_requires_duplicate_content_lengths_to_agree),
	    cmocka_unit_test(test_http_parser_rejects_content_length_overflow),
	    cmocka_unit_test(
	        test_http_parser_rejects_content_length_with_transfer_encoding),
	    cmocka_unit_test(test_http_parser_decodes_chunked_body),
	    cmocka_unit_test(
	        test_http_parser_ignores_chunk_extensions_and_trailers),
	    cmocka_unit_test(test_http_parser_limits_chunked_body),
	    cmocka_unit_test(test_http_parser_rejects_chunk_size_overflow),
	    cmocka_unit_test(test_http_parser_rejects_malformed_chunks),
	    cmocka_unit_test(
	        test_http_parser_rejects_other_transfer_codings_with_501),
	    cmocka_unit_test(
	        test_http_parser_rejects_repeated_or_empty_transfer_encoding),
	    cmocka_unit_test(test_http_parser_applies_keep_alive_rules),
	    cmocka_unit_test(test_http_parser_exposes_head_while_reading_body),
	    cmocka_unit_test(
	        test_http_parser_ignores_expect_in_http10_and_other_values),
	    cmocka_unit_test(
	        test_http_parser_stops_after_each_pipelined_request),
	    cmocka_unit_test(test_http_parser_reset_keeps_only_small_buffers),
	    cmocka_unit_test(test_http_parser_can_be_reset_after_an_error),
	    cmocka_unit_test(test_http_error_status_maps_errors),
	    cmocka_unit_test(
	        test_http_request_header_finds_first_match_in_any_case),
	    cmocka_unit_test(test_http_header_has_token_matches_list_elements),
	    cmocka_unit_test(
	        test_http_parser_streams_a_content_length_body_in_any_chunking),
	    cmocka_unit_test(
	        test_http_parser_streams_a_chunked_body_in_any_chunking),
	    cmocka_unit_test(test_http_parser_stream_limit_decides_413),
	    cmocka_unit_test(
	        test_http_parser_defer_leaves_bodiless_requests_and_resets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
