/* tests/unit/test_ws_handshake.c — the RFC 6455 opening handshake */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "chatd/ws_handshake.h"

#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Sets up a valid upgrade request for Host example.com. */
static void
req_init(struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = HTTP_GET;
	req->method_name = "GET";
	req->target = req->path = "/ws";
	req->minor = 1;
	req->content_length = -1;
	req->headers[0] = (struct http_header){"Host", "example.com"};
	req->headers[1] = (struct http_header){"Upgrade", "websocket"};
	req->headers[2] = (struct http_header){"Connection", "Upgrade"};
	req->headers[3] = (struct http_header){"Sec-WebSocket-Key", SAMPLE_KEY};
	req->headers[4] = (struct http_header){"Sec-WebSocket-Version", "13"};
	req->nheaders = 5;
}

/* Replaces header name's value, or adds it; NULL value removes it. */
static void
req_set(struct http_request *req, const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		if (strcasecmp(req->headers[i].name, name) != 0)
			continue;
		if (value != NULL) {
			req->headers[i].value = value;
		} else {
			req->headers[i] = req->headers[--req->nheaders];
		}
		return;
	}
	if (value != NULL)
		req->headers[req->nheaders++] =
		    (struct http_header){name, value};
}

/* Checks req (plain HTTP, no allowed list) and returns the status. */
static int
check(const struct http_request *req)
{
	char accept[WS_ACCEPT_LEN + 1];

	return ws_handshake_check(req, 0, NULL, accept);
}

/* RFC 6455 1.3: the sample key gives the sample accept value. */
static void
test_ws_handshake_accept_matches_rfc_sample(void **state)
{
	char accept[WS_ACCEPT_LEN + 1];

	(void)state;
	ws_handshake_accept(SAMPLE_KEY, accept);
	assert_string_equal(accept, SAMPLE_ACCEPT);
}

/* A valid request passes and fills the accept value. */
static void
test_ws_handshake_accepts_valid_request(void **state)
{
	struct http_request req;
	char accept[WS_ACCEPT_LEN + 1];

	(void)state;
	req_init(&req);
	memset(accept, 0, sizeof(accept));
	assert_int_equal(ws_handshake_check(&req, 0, NULL, accept), 0);
	assert_string_equal(accept, SAMPLE_ACCEPT);
}

/* Upgrade and Connection are token lists, matched in any case. */
static void
test_ws_handshake_token_lists_in_any_case(void **state)
{
	struct http_request req;

	(void)state;
	req_init(&req);
	req_set(&req, "Upgrade", "WebSocket");
	req_set(&req, "Connection", "keep-alive, UPGRADE");
	assert_int_equal(check(&req), 0);
	req_set(&req, "Upgrade", "h2c, websocket");
	req_set(&req, "connection", "upgrade,keep-alive");
	assert_int_equal(check(&req), 0);
	req_set(&req, "Connection", "keep-alive");
	assert_int_equal(check(&req), 400);
	req_set(&req, "Connection", "Upgrade");
	req_set(&req, "Upgrade", "websocketx");
	assert_int_equal(check(&req), 400);
	req_set(&req, "Upgrade", NULL);
	assert_int_equal(check(&req), 400);
}

/* Only GET over HTTP/1.1 with a Host upgrades. */
static void
test_ws_handshake_requires_get_http11_and_host(void **state)
{
	struct http_request req;

	(void)state;
	req_init(&req);
	req.method = HTTP_POST;
	assert_int_equal(check(&req), 400);
	req_init(&req);
	req.minor = 0;
	assert_int_equal(check(&req), 400);
	req_init(&req);
	req_set(&req, "Host", NULL);
	assert_int_equal(check(&req), 400);
}

/* The key must be base64 decoding to exactly 16 bytes. */
static void
test_ws_handshake_rejects_missing_or_bad_key(void **state)
{
	const char *bad[] = {
	    "",
	    "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
	    "dGhlIHNhbXBsZSBub25jZQ=",   /* short padding */
	    "dGhlIHNhbXBsZSBub25jZQ===", /* 25 chars */
	    "dGhlIHNhbXBsZSBub25jZSE=",  /* 17 bytes */
	    "dGhlIHNhbXBsZSBub25jZSEh",  /* 18 bytes */
	    "dGhlIHNhbXBsZSBub25j*Q==",  /* not base64 */
	    "dGhlIHNhbXBsZSBub25j ZQ==", /* space inside */
	    "AAAAAAAAAAAAAAAAAAAAAA=A",  /* padding in the middle */
	};
	struct http_request req;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req_init(&req);
		req_set(&req, "Sec-WebSocket-Key", bad[i]);
		if (check(&req) != 400)
			fail_msg("key \"%s\" accepted", bad[i]);
	}
	req_init(&req);
	req_set(&req, "Sec-WebSocket-Key", NULL);
	assert_int_equal(check(&req), 400);
	req_init(&req);
	req_set(&req, "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==");
	assert_int_equal(check(&req), 0);
}

/* Any version but 13 (or none) gets 426. */
static void
test_ws_handshake_wrong_version_is_426(void **state)
{
	const char *bad[] = {"8", "12", "14", "13, 8", "", "thirteen"};
	struct http_request req;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req_init(&req);
		req_set(&req, "Sec-WebSocket-Version", bad[i]);
		assert_int_equal(check(&req), 426);
	}
	req_init(&req);
	req_set(&req, "Sec-WebSocket-Version", NULL);
	assert_int_equal(check(&req), 426);
}

/* No Origin is allowed; a matching one too, default ports folded. */
static void
test_ws_handshake_origin_absent_or_matching_is_allowed(void **state)
{
	struct http_request req;
	char accept[WS_ACCEPT_LEN + 1];

	(void)state;
	req_init(&req);
	assert_int_equal(check(&req), 0);
	req_set(&req, "Origin", "http://example.com");
	assert_int_equal(check(&req), 0);
	req_set(&req, "Origin", "http://EXAMPLE.com:80");
	assert_int_equal(check(&req), 0);
	req_set(&req, "Host", "Example.COM:80");
	req_set(&req, "Origin", "HTTP://example.com");
	assert_int_equal(check(&req), 0);
	req_set(&req, "Host", "localhost:8080");
	req_set(&req, "Origin", "http://localhost:8080");
	assert_int_equal(check(&req), 0);
	req_set(&req, "Host", "[::1]:8080");
	req_set(&req, "Origin", "http://[::1]:8080");
	assert_int_equal(check(&req), 0);
	/* Over TLS the origin is https, port 443 by default. */
	req_set(&req, "Host", "example.com");
	req_set(&req, "Origin", "https://example.com:443");
	assert_int_equal(ws_handshake_check(&req, 1, NULL, accept), 0);
}

/* A different scheme, host or port, "null", or junk gets 403. */
static void
test_ws_handshake_origin_mismatch_is_403(void **state)
{
	const char *bad[] = {
	    "https://example.com",
	    "http://example.com:8080",
	    "http://evil.com",
	    "http://example.com.evil.com",
	    "null",
	    "example.com",
	    "http://example.com/path",
	    "http://user@example.com",
	    "http://example.com:0",
	    "http://example.com:99999",
	    "http://",
	    "",
	};
	struct http_request req;
	char accept[WS_ACCEPT_LEN + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req_init(&req);
		req_set(&req, "Origin", bad[i]);
		if (check(&req) != 403)
			fail_msg("origin \"%s\" allowed", bad[i]);
	}
	req_init(&req);
	req_set(&req, "Origin", "http://example.com");
	assert_int_equal(ws_handshake_check(&req, 1, NULL, accept), 403);
}

/* Configured origins are allowed too, but never "null". */
static void
test_ws_handshake_allowed_origins_list(void **state)
{
	const char *const allowed[] = {"https://chat.example.org",
	                               "http://localhost:3000", "null", NULL};
	struct http_request req;
	char accept[WS_ACCEPT_LEN + 1];

	(void)state;
	req_init(&req);
	req_set(&req, "Origin", "https://chat.example.org:443");
	assert_int_equal(ws_handshake_check(&req, 0, allowed, accept), 0);
	assert_string_equal(accept, SAMPLE_ACCEPT);
	req_set(&req, "Origin", "http://localhost:3000");
	assert_int_equal(ws_handshake_check(&req, 0, allowed, accept), 0);
	req_set(&req, "Origin", "http://localhost:3001");
	assert_int_equal(ws_handshake_check(&req, 0, allowed, accept), 403);
	req_set(&req, "Origin", "null");
	assert_int_equal(ws_handshake_check(&req, 0, allowed, accept), 403);
	/* The request's own origin still works with a list. */
	req_set(&req, "Origin", "http://example.com");
	assert_int_equal(ws_handshake_check(&req, 0, allowed, accept), 0);
}

/* The 101 response head, and a too-small buffer. */
static void
test_ws_handshake_response_head(void **state)
{
	const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
	                   "Upgrade: websocket\r\n"
	                   "Connection: Upgrade\r\n"
	                   "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
	                   "\r\n";
	char out[256];

	(void)state;
	assert_int_equal(ws_handshake_response(out, sizeof(out), SAMPLE_ACCEPT),
	                 strlen(want));
	assert_string_equal(out, want);
	assert_int_equal(
	    ws_handshake_response(out, strlen(want), SAMPLE_ACCEPT), 0);
}

/* The answer to a request whose Sec-WebSocket-Extensions headers are
 * values[0..n) (in order); returns the window bits, answer in ext. */
static int
deflate_n(const char *const *values, size_t n, char ext[WS_EXT_LEN])
{
	struct http_request req;
	size_t i;

	req_init(&req);
	for (i = 0; i < n; i++)
		req.headers[req.nheaders++] =
		    (struct http_header){"Sec-WebSocket-Extensions", values[i]};
	memset(ext, 'x', WS_EXT_LEN);
	return ws_handshake_deflate(&req, ext);
}

/* Checks that the single header value gets answer want (NULL: declined)
 * with window bits wbits. */
static void
check_offer(const char *value, const char *want, int wbits)
{
	char ext[WS_EXT_LEN];
	int r = deflate_n(&value, 1, ext);

	if (want == NULL) {
		if (r != 0 || ext[0] != '\0')
			fail_msg("%s: accepted as \"%s\"", value, ext);
		return;
	}
	if (strcmp(ext, want) != 0)
		fail_msg("%s:\n got \"%s\"\nwant \"%s\"", value, ext, want);
	assert_int_equal(r, wbits);
}

#define ANSWER                                                                 \
	"permessage-deflate; server_no_context_takeover; "                     \
	"client_no_context_takeover"

/* No header, or no permessage-deflate in it: nothing is negotiated. */
static void
test_ws_deflate_no_offer_declines(void **state)
{
	char ext[WS_EXT_LEN];

	(void)state;
	assert_int_equal(deflate_n(NULL, 0, ext), 0);
	assert_string_equal(ext, "");
	check_offer("", NULL, 0);
	check_offer("x-webkit-deflate-frame", NULL, 0);
	check_offer("deflate-frame; max_window_bits=10", NULL, 0);
	check_offer("permessage-deflate2", NULL, 0);
}

/* The browsers' offer; the answer asks for no context takeover both ways
 * (RFC 7692 7.1.1: the server may add both unasked). */
static void
test_ws_deflate_browser_offer(void **state)
{
	(void)state;
	check_offer("permessage-deflate", ANSWER, 15);
	check_offer("permessage-deflate; client_max_window_bits", ANSWER, 15);
	check_offer("PerMessage-Deflate; Client_Max_Window_Bits", ANSWER, 15);
	check_offer("  permessage-deflate ;client_max_window_bits  ", ANSWER,
	            15);
}

/* Each parameter alone, and all four at once. */
static void
test_ws_deflate_each_parameter(void **state)
{
	(void)state;
	check_offer("permessage-deflate; server_no_context_takeover", ANSWER,
	            15);
	check_offer("permessage-deflate; client_no_context_takeover", ANSWER,
	            15);
	check_offer("permessage-deflate; server_max_window_bits=15",
	            ANSWER "; server_max_window_bits=15", 15);
	check_offer("permessage-deflate; client_max_window_bits=10",
	            ANSWER "; client_max_window_bits=10", 10);
	check_offer("permessage-deflate; client_max_window_bits=8",
	            ANSWER "; client_max_window_bits=8", 8);
	check_offer("permessage-deflate; client_max_window_bits=15",
	            ANSWER "; client_max_window_bits=15", 15);
	check_offer("permessage-deflate; server_no_context_takeover; "
	            "client_no_context_takeover; server_max_window_bits=15; "
	            "client_max_window_bits=9",
	            ANSWER "; server_max_window_bits=15; "
	                   "client_max_window_bits=9",
	            9);
}

/* The server deflates with a 2^15 window for everyone: an offer asking
 * for less is declined (RFC 7692 7.1.2.1 lets it), the next one taken. */
static void
test_ws_deflate_small_server_window_is_declined(void **state)
{
	int w;
	char v[64];

	(void)state;
	for (w = 8; w < 15; w++) {
		snprintf(v, sizeof(v),
		         "permessage-deflate; server_max_window_bits=%d", w);
		check_offer(v, NULL, 0);
	}
	/* Autobahn 13.7's list: (True, 8), (True, 0), (False, 0). */
	check_offer("permessage-deflate; client_no_context_takeover; "
	            "server_max_window_bits=8; client_max_window_bits=8, "
	            "permessage-deflate; client_no_context_takeover; "
	            "client_max_window_bits, permessage-deflate; "
	            "client_max_window_bits",
	            ANSWER, 15);
}

/* Unknown parameters, duplicates, missing, extra and bad values: that
 * offer is declined, never the handshake. */
static void
test_ws_deflate_bad_parameters_decline(void **state)
{
	static const char *const bad[] = {
	    "permessage-deflate; foo",
	    "permessage-deflate; foo=1",
	    "permessage-deflate; max_window_bits=10",
	    "permessage-deflate; server_no_context_takeover; "
	    "server_no_context_takeover",
	    "permessage-deflate; client_no_context_takeover; "
	    "client_no_context_takeover",
	    "permessage-deflate; client_max_window_bits; "
	    "client_max_window_bits=10",
	    "permessage-deflate; client_max_window_bits=10; "
	    "client_max_window_bits=10",
	    "permessage-deflate; server_max_window_bits=15; "
	    "server_max_window_bits=15",
	    "permessage-deflate; server_max_window_bits",
	    "permessage-deflate; server_no_context_takeover=1",
	    "permessage-deflate; client_no_context_takeover=true",
	    "permessage-deflate; client_max_window_bits=7",
	    "permessage-deflate; client_max_window_bits=16",
	    "permessage-deflate; client_max_window_bits=0",
	    "permessage-deflate; client_max_window_bits=-1",
	    "permessage-deflate; client_max_window_bits=08",
	    "permessage-deflate; client_max_window_bits=010",
	    "permessage-deflate; client_max_window_bits=1.5",
	    "permessage-deflate; client_max_window_bits=abc",
	    "permessage-deflate; client_max_window_bits=99999999999999999999",
	    "permessage-deflate; server_max_window_bits=16",
	    "permessage-deflate; server_max_window_bits=\"\"",
	    "permessage-deflate; client_max_window_bits=\"1 0\"",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_offer(bad[i], NULL, 0);
}

/* A quoted value counts as its token (RFC 6455 9.1), escapes too. */
static void
test_ws_deflate_quoted_values(void **state)
{
	(void)state;
	check_offer("permessage-deflate; client_max_window_bits=\"10\"",
	            ANSWER "; client_max_window_bits=10", 10);
	check_offer("permessage-deflate; client_max_window_bits=\"\\1\\2\"",
	            ANSWER "; client_max_window_bits=12", 12);
	check_offer("permessage-deflate; server_max_window_bits=\"15\"",
	            ANSWER "; server_max_window_bits=15", 15);
	check_offer("permessage-deflate; client_max_window_bits = \"11\" ",
	            ANSWER "; client_max_window_bits=11", 11);
	/* A quoted comma or semicolon does not end anything. */
	check_offer("foo; a=\"x, permessage-deflate\", permessage-deflate; "
	            "client_max_window_bits=13",
	            ANSWER "; client_max_window_bits=13", 13);
	check_offer("foo; a=\"x;b\\\"c,\"; permessage-deflate", NULL, 0);
}

/* Malformed syntax declines the malformed offer; a later well-formed one
 * is still taken. */
static void
test_ws_deflate_malformed_offers(void **state)
{
	static const char *const bad[] = {
	    "permessage-deflate;",
	    "permessage-deflate; ;",
	    "permessage-deflate; =10",
	    "permessage-deflate; client_max_window_bits=",
	    "permessage-deflate client_max_window_bits",
	    "permessage-deflate; client_max_window_bits 10",
	    "permessage-deflate; client_max_window_bits=10 11",
	    "; permessage-deflate",
	    "=permessage-deflate",
	    "\"permessage-deflate\"",
	    "permessage-deflate; client_max_window_bits=\"10\"x",
	    "permessage-deflate; client_max_window_bits=(10)",
	};
	char v[160];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		check_offer(bad[i], NULL, 0);
		snprintf(v, sizeof(v), "%s, permessage-deflate", bad[i]);
		check_offer(v, ANSWER, 15);
	}
	/* An unclosed quote runs to the end: nothing after it counts. */
	check_offer("permessage-deflate; client_max_window_bits=\"10, "
	            "permessage-deflate",
	            NULL, 0);
}

/* Several offers in one header: the first acceptable one wins. */
static void
test_ws_deflate_first_acceptable_offer_wins(void **state)
{
	(void)state;
	check_offer("permessage-deflate; client_max_window_bits=9, "
	            "permessage-deflate; client_max_window_bits=12",
	            ANSWER "; client_max_window_bits=9", 9);
	check_offer("permessage-deflate; foo, "
	            "permessage-deflate; client_max_window_bits=12",
	            ANSWER "; client_max_window_bits=12", 12);
	check_offer("x-webkit-deflate-frame, , permessage-deflate; "
	            "server_max_window_bits=10, permessage-deflate; "
	            "client_max_window_bits=11",
	            ANSWER "; client_max_window_bits=11", 11);
	check_offer(",,permessage-deflate,", ANSWER, 15);
}

/* Offers may come in several headers, taken in order. */
static void
test_ws_deflate_offers_across_headers(void **state)
{
	static const char *const two[] = {
	    "x-foo, permessage-deflate; bogus",
	    "permessage-deflate; client_max_window_bits=14"};
	static const char *const first[] = {
	    "permessage-deflate; client_max_window_bits=10",
	    "permessage-deflate; client_max_window_bits=14"};
	char ext[WS_EXT_LEN];

	(void)state;
	assert_int_equal(deflate_n(two, 2, ext), 14);
	assert_string_equal(ext, ANSWER "; client_max_window_bits=14");
	assert_int_equal(deflate_n(first, 2, ext), 10);
	assert_string_equal(ext, ANSWER "; client_max_window_bits=10");
}

/* The answer goes into the 101 as Sec-WebSocket-Extensions. */
static void
test_ws_handshake_response_with_extensions(void **state)
{
	const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
	                   "Upgrade: websocket\r\n"
	                   "Connection: Upgrade\r\n"
	                   "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"
	                   "Sec-WebSocket-Extensions: " ANSWER "\r\n"
	                   "\r\n";
	char out[512];

	(void)state;
	assert_int_equal(
	    ws_handshake_response_ext(out, sizeof(out), SAMPLE_ACCEPT, ANSWER),
	    strlen(want));
	assert_string_equal(out, want);
	assert_int_equal(
	    ws_handshake_response_ext(out, strlen(want), SAMPLE_ACCEPT, ANSWER),
	    0);
	assert_int_equal(
	    ws_handshake_response_ext(out, sizeof(out), SAMPLE_ACCEPT, ""),
	    ws_handshake_response(out, sizeof(out), SAMPLE_ACCEPT));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ws_handshake_accept_matches_rfc_sample),
	    cmocka_unit_test(test_ws_handshake_accepts_valid_request),
	    cmocka_unit_test(test_ws_handshake_token_lists_in_any_case),
	    cmocka_unit_test(test_ws_handshake_requires_get_http11_and_host),
	    cmocka_unit_test(test_ws_handshake_rejects_missing_or_bad_key),
	    cmocka_unit_test(test_ws_handshake_wrong_version_is_426),
	    cmocka_unit_test(
	        test_ws_handshake_origin_absent_or_matching_is_allowed),
	    cmocka_unit_test(test_ws_handshake_origin_mismatch_is_403),
	    cmocka_unit_test(test_ws_handshake_allowed_origins_list),
	    cmocka_unit_test(test_ws_handshake_response_head),
	    cmocka_unit_test(test_ws_deflate_no_offer_declines),
	    cmocka_unit_test(test_ws_deflate_browser_offer),
	    cmocka_unit_test(test_ws_deflate_each_parameter),
	    cmocka_unit_test(test_ws_deflate_small_server_window_is_declined),
	    cmocka_unit_test(test_ws_deflate_bad_parameters_decline),
	    cmocka_unit_test(test_ws_deflate_quoted_values),
	    cmocka_unit_test(test_ws_deflate_malformed_offers),
	    cmocka_unit_test(test_ws_deflate_first_acceptable_offer_wins),
	    cmocka_unit_test(test_ws_deflate_offers_across_headers),
	    cmocka_unit_test(test_ws_handshake_response_with_extensions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
