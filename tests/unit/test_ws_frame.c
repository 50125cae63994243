/* tests/unit/test_ws_frame.c — frame header parser and encoders */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "chatd/ws_frame.h"

static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Parses a header fed in pieces of step bytes (0: whole); returns the
 * last parse result, with *used the total consumed. */
static ssize_t
parse_stepped(struct ws_frame_parser *fp, const uint8_t *b, size_t n,
              size_t step, size_t *used)
{
	ssize_t r = 0;
	size_t k;

	*used = 0;
	if (step == 0)
		step = n;
	while (*used < n && fp->state == WS_FRAME_HEAD) {
		k = n - *used < step ? n - *used : step;
		r = ws_frame_parse(fp, b + *used, k);
		if (r < 0)
			return r;
		*used += r;
	}
	return r;
}

/* Parses b as a server, whole and in every step; every run must agree:
 * returns the result, and the header length in *used. */
static ssize_t
parse_all_ways(const uint8_t *b, size_t n, struct ws_frame_parser *out,
               size_t *used)
{
	struct ws_frame_parser fp;
	ssize_t first = 0, r;
	size_t step, u, first_used = 0;

	for (step = 0; step <= n; step++) {
		ws_frame_parser_init(&fp, 0);
		r = parse_stepped(&fp, b, n, step, &u);
		if (step == 0) {
			first = r < 0 ? r : 0;
			first_used = u;
			*out = fp;
		} else {
			assert_int_equal(r < 0 ? r : 0, first);
			if (first == 0) {
				assert_int_equal(u, first_used);
				assert_int_equal(fp.len, out->len);
			}
		}
	}
	*used = first_used;
	return first;
}

/* RFC 6455 5.7: a single-frame masked text message "Hello". */
static void
test_ws_frame_parses_rfc_masked_hello(void **state)
{
	const uint8_t b[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
	                     0x7f, 0x9f, 0x4d, 0x51, 0x58};
	struct ws_frame_parser fp;
	uint8_t payload[5];
	size_t used;

	(void)state;
	assert_int_equal(parse_all_ways(b, sizeof(b), &fp, &used), 0);
	assert_int_equal(used, 6);
	assert_int_equal(fp.state, WS_FRAME_BODY);
	assert_int_equal(fp.fin, 1);
	assert_int_equal(fp.opcode, WS_OP_TEXT);
	assert_int_equal(fp.len, 5);
	memcpy(payload, b + 6, 5);
	ws_frame_unmask(payload, 5, fp.mask, 0);
	assert_memory_equal(payload, "Hello", 5);
}

/* The parser stops at the end of the header, never eating payload. */
static void
test_ws_frame_parse_never_consumes_payload(void **state)
{
	uint8_t b[64];
	struct ws_frame_parser fp;
	size_t n = ws_frame_client_encode(b, sizeof(b), 1, WS_OP_BINARY,
	                                  (const uint8_t *)"abc", 3, mask);

	(void)state;
	ws_frame_parser_init(&fp, 0);
	assert_int_equal(ws_frame_parse(&fp, b, n), 6);
	/* Once in the body state, further bytes are not taken. */
	assert_int_equal(ws_frame_parse(&fp, b + 6, 3), 0);
	ws_frame_next(&fp);
	assert_int_equal(fp.state, WS_FRAME_HEAD);
}

/* 16-bit and 64-bit lengths decode, at their boundaries. */
static void
test_ws_frame_parses_extended_lengths(void **state)
{
	const uint64_t lens[] = {0,
	                         125,
	                         126,
	                         127,
	                         128,
	                         65535,
	                         65536,
	                         (1ULL << 32) + 5,
	                         (1ULL << 63) - 1};
	const size_t heads[] = {6, 6, 8, 8, 8, 8, 14, 14, 14};
	uint8_t b[WS_MAX_HEADER];
	struct ws_frame_parser fp;
	size_t i, n, used;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		n = ws_frame_client_header(b, 1, WS_OP_BINARY, lens[i], mask);
		assert_int_equal(n, heads[i]);
		assert_int_equal(parse_all_ways(b, n, &fp, &used), 0);
		assert_int_equal(used, n);
		assert_true(fp.len == lens[i]);
		assert_memory_equal(fp.mask, mask, 4);
	}
}

/* RFC 6455 5.2: the most significant bit of a 64-bit length is 0. */
static void
test_ws_frame_rejects_64bit_length_with_top_bit(void **state)
{
	uint8_t b[WS_MAX_HEADER];
	struct ws_frame_parser fp;
	size_t n, used;

	(void)state;
	n = ws_frame_client_header(b, 1, WS_OP_BINARY, 1ULL << 63, mask);
	assert_int_equal(n, 14);
	assert_int_equal(parse_all_ways(b, n, &fp, &used), WS_FRAME_E_PROTOCOL);
}

/* Non-minimal length encodings are accepted (documented decision). */
static void
test_ws_frame_accepts_non_minimal_lengths(void **state)
{
	const uint8_t b16[] = {0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4};
	const uint8_t b64[] = {0x82, 0xff, 0,    0, 0, 0, 0,
	                       0,    0,    0x05, 1, 2, 3, 4};
	struct ws_frame_parser fp;
	size_t used;

	(void)state;
	assert_int_equal(parse_all_ways(b16, sizeof(b16), &fp, &used), 0);
	assert_int_equal(fp.len, 5);
	assert_int_equal(parse_all_ways(b64, sizeof(b64), &fp, &used), 0);
	assert_int_equal(fp.len, 5);
}

/* RFC 6455 5.1: a server fails a frame from the client that is not
 * masked; a client fails a masked frame from the server. */
static void
test_ws_frame_rejects_unmasked_client_frame(void **state)
{
	const uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
	const uint8_t masked[] = {0x81, 0x82, 1, 2, 3, 4};
	struct ws_frame_parser fp;

	(void)state;
	ws_frame_parser_init(&fp, 0);
	assert_int_equal(ws_frame_parse(&fp, unmasked, sizeof(unmasked)),
	                 WS_FRAME_E_PROTOCOL);
	ws_frame_parser_init(&fp, 1);
	assert_int_equal(ws_frame_parse(&fp, unmasked, sizeof(unmasked)), 2);
	assert_int_equal(fp.len, 2);
	ws_frame_parser_init(&fp, 1);
	assert_int_equal(ws_frame_parse(&fp, masked, sizeof(masked)),
	                 WS_FRAME_E_PROTOCOL);
}

/* RSV1-3 must be 0 when no extension is negotiated (Autobahn 3.x). */
static void
test_ws_frame_rejects_reserved_bits(void **state)
{
	uint8_t b[WS_MAX_HEADER];
	struct ws_frame_parser fp;
	size_t n, used;
	int rsv;

	(void)state;
	for (rsv = 1; rsv <= 7; rsv++) {
		n = ws_frame_client_header(b, 1, WS_OP_TEXT, 3, mask);
		b[0] |= rsv << 4;
		assert_int_equal(parse_all_ways(b, n, &fp, &used),
		                 WS_FRAME_E_PROTOCOL);
	}
}

/* Opcodes 3-7 and 11-15 are reserved (Autobahn 4.x). */
static void
test_ws_frame_rejects_reserved_opcodes(void **state)
{
	uint8_t b[WS_MAX_HEADER];
	struct ws_frame_parser fp;
	size_t n, used;
	int op;

	(void)state;
	for (op = 0; op < 16; op++) {
		n = ws_frame_client_header(b, 1, op, 0, mask);
		ssize_t r = parse_all_ways(b, n, &fp, &used);
		int known = op <= 2 || (op >= 8 && op <= 10);

		assert_int_equal(r, known ? 0 : WS_FRAME_E_PROTOCOL);
	}
}

/* Control frames: at most 125 bytes, never fragmented (RFC 6455 5.5). */
static void
test_ws_frame_rejects_long_or_fragmented_control_frames(void **state)
{
	uint8_t b[WS_MAX_HEADER];
	struct ws_frame_parser fp;
	size_t n, used;
	int op;

	(void)state;
	for (op = WS_OP_CLOSE; op <= WS_OP_PONG; op++) {
		n = ws_frame_client_header(b, 1, op, 125, mask);
		assert_int_equal(parse_all_ways(b, n, &fp, &used), 0);
		n = ws_frame_client_header(b, 1, op, 126, mask);
		assert_int_equal(parse_all_ways(b, n, &fp, &used),
		                 WS_FRAME_E_PROTOCOL);
		n = ws_frame_client_header(b, 1, op, 65536, mask);
		assert_int_equal(parse_all_ways(b, n, &fp, &used),
		                 WS_FRAME_E_PROTOCOL);
		n = ws_frame_client_header(b, 0, op, 0, mask);
		assert_int_equal(parse_all_ways(b, n, &fp, &used),
		                 WS_FRAME_E_PROTOCOL);
	}
}

/* The server encoder writes minimal, unmasked headers. */
static void
test_ws_frame_header_encodes_minimal_lengths(void **state)
{
	uint8_t b[WS_MAX_HEADER];

	(void)state;
	assert_int_equal(ws_frame_header(b, 1, WS_OP_TEXT, 5), 2);
	assert_memory_equal(b, "\x81\x05", 2);
	assert_int_equal(ws_frame_header(b, 0, WS_OP_BINARY, 125), 2);
	assert_memory_equal(b, "\x02\x7d", 2);
	assert_int_equal(ws_frame_header(b, 1, WS_OP_TEXT, 126), 4);
	assert_memory_equal(b, "\x81\x7e\x00\x7e", 4);
	assert_int_equal(ws_frame_header(b, 1, WS_OP_TEXT, 65535), 4);
	assert_memory_equal(b, "\x81\x7e\xff\xff", 4);
	assert_int_equal(ws_frame_header(b, 1, WS_OP_TEXT, 65536), 10);
	assert_memory_equal(b, "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	assert_int_equal(ws_frame_header(b, 1, WS_OP_CLOSE, 0), 2);
	assert_memory_equal(b, "\x88\x00", 2);
}

/* A server header parses back with a client-side parser. */
static void
test_ws_frame_header_round_trips_through_client_parser(void **state)
{
	const uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, 1ULL << 40};
	uint8_t b[WS_MAX_HEADER];
	struct ws_frame_parser fp;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		n = ws_frame_header(b, 1, WS_OP_BINARY, lens[i]);
		ws_frame_parser_init(&fp, 1);
		assert_int_equal(ws_frame_parse(&fp, b, n), (ssize_t)n);
		assert_int_equal(fp.state, WS_FRAME_BODY);
		assert_true(fp.len == lens[i]);
		assert_int_equal(fp.opcode, WS_OP_BINARY);
	}
}

/* Unmasking in pieces at any offset equals unmasking at once. */
static void
test_ws_frame_unmask_at_any_offset(void **state)
{
	uint8_t ref[100], b[100];
	size_t i, split;

	(void)state;
	for (i = 0; i < sizeof(ref); i++)
		ref[i] = (uint8_t)(i * 7 + 1);
	for (split = 0; split <= sizeof(b); split++) {
		memcpy(b, ref, sizeof(b));
		ws_frame_unmask(b, split, mask, 0);
		ws_frame_unmask(b + split, sizeof(b) - split, mask, split);
		for (i = 0; i < sizeof(b); i++)
			assert_int_equal(b[i], ref[i] ^ mask[i & 3]);
	}
}

/* The client encoder masks the payload and refuses a short buffer. */
static void
test_ws_frame_client_encode_masks_payload(void **state)
{
	const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
	                        0x7f, 0x9f, 0x4d, 0x51, 0x58};
	uint8_t b[32];

	(void)state;
	assert_int_equal(ws_frame_client_encode(b, sizeof(b), 1, WS_OP_TEXT,
	                                        (const uint8_t *)"Hello", 5,
	                                        mask),
	                 sizeof(want));
	assert_memory_equal(b, want, sizeof(want));
	assert_int_equal(ws_frame_client_encode(b, 10, 1, WS_OP_TEXT,
	                                        (const uint8_t *)"Hello", 5,
	                                        mask),
	                 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ws_frame_parses_rfc_masked_hello),
	    cmocka_unit_test(test_ws_frame_parse_never_consumes_payload),
	    cmocka_unit_test(test_ws_frame_parses_extended_lengths),
	    cmocka_unit_test(test_ws_frame_rejects_64bit_length_with_top_bit),
	    cmocka_unit_test(test_ws_frame_accepts_non_minimal_lengths),
	    cmocka_unit_test(test_ws_frame_rejects_unmasked_client_frame),
	    cmocka_unit_test(test_ws_frame_rejects_reserved_bits),
	    cmocka_unit_test(test_ws_frame_rejects_reserved_opcodes),
	    cmocka_unit_test(
	        test_ws_frame_rejects_long_or_fragmented_control_frames),
	    cmocka_unit_test(test_ws_frame_header_encodes_minimal_lengths),
	    cmocka_unit_test(
	        test_ws_frame_header_round_trips_through_client_parser),
	    cmocka_unit_test(test_ws_frame_unmask_at_any_offset),
	    cmocka_unit_test(test_ws_frame_client_encode_masks_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
