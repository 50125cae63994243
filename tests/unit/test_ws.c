/* tests/unit/test_ws.c — the RFC 6455 connection engine, Autobahn-style */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "chatd/ws.h"
#include "chatd/ws_deflate.h"

/*
 * Each case builds the bytes a client sends, then feeds them to a fresh
 * engine whole, one byte at a time, split in two at (every or many)
 * boundaries, and in seeded random chunkings. Every callback and feed
 * error is recorded as a line of text; all chunkings must give the same
 * record, and the whole-feed record must equal the expected one.
 */

/* A growable byte string. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

/* Appends n bytes to b. */
static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

/* Appends formatted text to b. */
static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(tmp));
	buf_add(b, tmp, n);
}

/* Frees b's storage. */
static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* FNV-1a, to name long payloads in the record. */
static uint32_t
fnv(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n-- > 0)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* Records a payload: short ones in full (escaped), long ones hashed. */
static void
put_payload(struct buf *log, const uint8_t *p, size_t n)
{
	size_t i;

	if (n > 64) {
		buf_printf(log, "#%zu:%08x", n, fnv(p, n));
		return;
	}
	buf_add(log, "(", 1);
	for (i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			buf_add(log, p + i, 1);
		else
			buf_printf(log, "\\x%02x", p[i]);
	}
	buf_add(log, ")", 1);
}

/* Appends a message event as the engine would record it. */
static void
ev_msg(struct buf *log, int binary, const void *p, size_t n)
{
	buf_add(log, binary ? "B" : "T", 1);
	put_payload(log, p, n);
	buf_add(log, "\n", 1);
}

/* Appends the event "the engine wrote a pong with payload p". */
static void
ev_pong(struct buf *log, const void *p, size_t n)
{
	buf_add(log, "PONG", 4);
	put_payload(log, p, n);
	buf_add(log, "\n", 1);
}

/* What the callbacks do besides recording. */
struct rec {
	struct buf log;
	struct ws *ws;
	int abort_on_message; /* message returns -1 */
	int close_on_binary;  /* ws_close(1003) from the message callback */
	const uint8_t *fed;   /* the buffer of the current feed */
	size_t fed_len;
	int direct; /* messages delivered from the fed buffer */
};

/* message callback: records the message. */
static int
rec_message(void *arg, int binary, uint8_t *data, size_t len)
{
	struct rec *r = arg;

	assert_non_null(data);
	ev_msg(&r->log, binary, data, len);
	if (len > 0 && data >= r->fed && data < r->fed + r->fed_len)
		r->direct++;
	if (len > 0)
		data[0] ^= 0xff; /* the buffer is writable */
	if (binary && r->close_on_binary)
		ws_close(r->ws, 1003, "binary");
	return r->abort_on_message ? -1 : 0;
}

/* write callback: decodes the one server frame it must contain. */
static void
rec_write(void *arg, const uint8_t *data, size_t len)
{
	struct rec *r = arg;
	size_t n;

	assert_true(len >= 2);
	assert_int_equal(data[0] & 0xf0, 0x80); /* FIN, no RSV */
	assert_int_equal(data[1] & 0x80, 0);    /* unmasked */
	n = data[1];
	assert_true(n <= 125);
	assert_int_equal(len, 2 + n);
	switch (data[0] & 0x0f) {
	case WS_OP_PONG:
		ev_pong(&r->log, data + 2, n);
		break;
	case WS_OP_CLOSE:
		if (n == 0) {
			buf_printf(&r->log, "CLOSE\n");
			break;
		}
		assert_true(n >= 2);
		buf_printf(&r->log, "CLOSE %d", data[2] << 8 | data[3]);
		put_payload(&r->log, data + 4, n - 2);
		buf_add(&r->log, "\n", 1);
		break;
	default:
		fail_msg("unexpected opcode %d", data[0] & 0x0f);
	}
}

/* closed callback. */
static void
rec_closed(void *arg, int code)
{
	buf_printf(&((struct rec *)arg)->log, "CLOSED %d\n", code);
}

/* pong callback. */
static void
rec_pong(void *arg)
{
	buf_printf(&((struct rec *)arg)->log, "PONGED\n");
}

static const struct ws_callbacks rec_cb = {rec_message, rec_write, rec_closed,
                                           rec_pong};

/* Options of one case. */
struct opts {
	size_t max_message;
	int abort_on_message;
	int close_on_binary;
	int wbits; /* permessage-deflate with the client's window, 0: off */
};

/* Feeds in[0..n) cut at the given points (sorted, ncuts of them);
 * returns the record (to free) and, in *direct, the zero-copy count. */
static char *
run(const struct opts *o, const uint8_t *in, size_t n, const size_t *cuts,
    size_t ncuts, int shrink)
{
	struct ws ws;
	struct rec r;
	uint8_t *copy = malloc(n ? n : 1);
	size_t start = 0, end, i;
	ssize_t res = 0;

	assert_non_null(copy);
	memcpy(copy, in, n);
	memset(&r, 0, sizeof(r));
	r.ws = &ws;
	r.abort_on_message = o->abort_on_message;
	r.close_on_binary = o->close_on_binary;
	ws_init(&ws, o->max_message, &rec_cb, &r);
	if (o->wbits)
		ws_set_deflate(&ws, o->wbits);
	for (i = 0; i <= ncuts && start < n; i++, start = end) {
		end = i < ncuts ? cuts[i] : n;
		if (end <= start)
			continue;
		r.fed = copy + start;
		r.fed_len = end - start;
		res = ws_feed(&ws, copy + start, end - start);
		if (res < 0) {
			buf_printf(&r.log, "ERR %zd\n", res);
			/* Errors are sticky. */
			assert_int_equal(ws_feed(&ws, copy, 1), res);
			break;
		}
		assert_int_equal(res, end - start);
		if (shrink)
			ws_shrink(&ws);
	}
	if (ws.msg_opcode == 0 && res >= 0)
		assert_null(ws.zi); /* freed between messages */
	ws_free(&ws);
	free(copy);
	if (r.log.p == NULL)
		buf_add(&r.log, "", 0);
	return (char *)r.log.p;
}

/* Deterministic pseudo-random numbers (xorshift32). */
static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Runs a case in every chunking and checks the record against want. */
static void
check_opts(const struct opts *o, const struct buf *in, const char *want)
{
	size_t n = in->len, *cuts = malloc((n + 1) * sizeof(size_t));
	size_t i, k, step;
	char *whole, *got;
	uint32_t seed = 0x9e3779b9u ^ (uint32_t)n;
	int round;

	assert_non_null(cuts);
	whole = run(o, in->p, n, NULL, 0, 0);
	if (strcmp(whole, want) != 0)
		fail_msg("whole feed:\n--- got\n%s--- want\n%s", whole, want);
	/* One byte at a time, shrinking between feeds. */
	for (i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	got = run(o, in->p, n, cuts, n ? n - 1 : 0, 1);
	if (strcmp(got, whole) != 0)
		fail_msg("1-byte feeds:\n--- got\n%s--- want\n%s", got, whole);
	free(got);
	/* Two pieces: every boundary of small inputs, many of big ones. */
	step = n <= 2048 ? 1 : n / 997;
	for (i = 1; i < n; i += (i < 64 || n - i < 64) ? 1 : step) {
		cuts[0] = i;
		got = run(o, in->p, n, cuts, 1, 0);
		if (strcmp(got, whole) != 0)
			fail_msg("split at %zu:\n--- got\n%s--- want\n%s", i,
			         got, whole);
		free(got);
	}
	/* Seeded random chunkings. */
	for (round = 0; round < 20; round++) {
		size_t max = 1 + (rnd(&seed) % (round < 10 ? 16 : 4096));

		for (k = 0, i = 0; n > 0;) {
			i += 1 + rnd(&seed) % max;
			if (i >= n)
				break;
			cuts[k++] = i;
		}
		got = run(o, in->p, n, cuts, k, round & 1);
		if (strcmp(got, whole) != 0)
			fail_msg("random round %d:\n--- got\n%s--- want\n%s",
			         round, got, whole);
		free(got);
	}
	free(whole);
	free(cuts);
}

/* check_opts with the default options. */
static void
check(const struct buf *in, const char *want)
{
	struct opts o = {0, 0, 0, 0};

	check_opts(&o, in, want);
}

/* Appends a masked client frame; op may carry RSV bits (0x70). */
static void
frame(struct buf *b, int fin, int op, const void *p, size_t n)
{
	static uint32_t counter = 1;
	uint8_t mask[4], head[WS_MAX_HEADER];
	size_t h, at;

	/* A different mask for each frame, including all-zero ones. */
	counter = counter * 2654435761u + 1;
	memcpy(mask, &counter, 4);
	if (counter % 7 == 0)
		memset(mask, 0, 4);
	h = ws_frame_client_header(head, fin, op & 0x0f, n, mask);
	head[0] |= op & 0x70;
	buf_add(b, head, h);
	at = b->len;
	buf_add(b, p, n);
	ws_frame_unmask(b->p + at, n, mask, 0);
}

/* Appends a masked client frame of a string. */
static void
frame_s(struct buf *b, int fin, int op, const char *s)
{
	frame(b, fin, op, s, strlen(s));
}

/* Appends a close frame with a code (or none if code < 0) and reason. */
static void
frame_close(struct buf *b, int code, const void *reason, size_t n)
{
	uint8_t p[256];

	if (code < 0) {
		frame(b, 1, WS_OP_CLOSE, NULL, 0);
		return;
	}
	p[0] = code >> 8;
	p[1] = code & 0xff;
	if (n > 0)
		memcpy(p + 2, reason, n);
	frame(b, 1, WS_OP_CLOSE, p, n + 2);
}

/* A payload of n bytes of ASCII (text) or all byte values (binary). */
static uint8_t *
blob(size_t n, int binary)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = binary ? (uint8_t)(i * 31 + 7) : 'a' + i % 26;
	return p;
}

/* 1.1.x / 1.2.x: text and binary messages of boundary lengths. */
static void
test_ws_1_x_messages_of_boundary_lengths(void **state)
{
	const size_t lens[] = {0, 125, 126, 127, 128, 65535, 65536};
	size_t i;
	int binary;

	(void)state;
	for (binary = 0; binary <= 1; binary++) {
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			struct buf in = {0}, want = {0};
			uint8_t *p = blob(lens[i], binary);

			frame(&in, 1, binary ? WS_OP_BINARY : WS_OP_TEXT, p,
			      lens[i]);
			ev_msg(&want, binary, p, lens[i]);
			check(&in, (char *)want.p);
			free(p);
			buf_free(&in);
			buf_free(&want);
		}
	}
}

/* 2.1-2.4: pings are answered with a pong carrying the same payload. */
static void
test_ws_2_1_to_2_4_ping_gets_pong_with_same_payload(void **state)
{
	const uint8_t bin[] = {0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff};
	uint8_t *p125 = blob(125, 1);
	struct buf in = {0}, want = {0};

	(void)state;
	frame(&in, 1, WS_OP_PING, NULL, 0);
	ev_pong(&want, NULL, 0);
	frame_s(&in, 1, WS_OP_PING, "Hello, world!");
	ev_pong(&want, "Hello, world!", 13);
	frame(&in, 1, WS_OP_PING, bin, sizeof(bin));
	ev_pong(&want, bin, sizeof(bin));
	frame(&in, 1, WS_OP_PING, p125, 125);
	ev_pong(&want, p125, 125);
	check(&in, (char *)want.p);
	free(p125);
	buf_free(&in);
	buf_free(&want);
}

/* 2.5: a ping with 126 bytes of payload fails with 1002. */
static void
test_ws_2_5_ping_over_125_bytes_is_protocol_error(void **state)
{
	uint8_t *p = blob(126, 1);
	struct buf in = {0};

	(void)state;
	frame(&in, 1, WS_OP_PING, p, 126);
	check(&in, "ERR -1\n");
	assert_int_equal(ws_error_close_code(WS_E_PROTOCOL), 1002);
	free(p);
	buf_free(&in);
}

/* 2.7-2.9: unsolicited pongs only reach the pong callback. */
static void
test_ws_2_7_to_2_9_unsolicited_pongs_are_ignored(void **state)
{
	struct buf in = {0};

	(void)state;
	frame(&in, 1, WS_OP_PONG, NULL, 0);
	frame_s(&in, 1, WS_OP_PONG, "unsolicited pong payload");
	frame_s(&in, 1, WS_OP_PING, "ping payload");
	check(&in, "PONGED\nPONGED\nPONG(ping payload)\n");
	buf_free(&in);
}

/* 2.10-2.11: ten pings in a row get ten pongs, in order. */
static void
test_ws_2_10_ten_pings_get_ten_pongs(void **state)
{
	struct buf in = {0}, want = {0};
	char p[32];
	int i;

	(void)state;
	for (i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "payload-%d", i);
		frame_s(&in, 1, WS_OP_PING, p);
		ev_pong(&want, p, strlen(p));
	}
	check(&in, (char *)want.p);
	buf_free(&in);
	buf_free(&want);
}

/* 3.1-3.7: any RSV bit fails the connection, after what came before. */
static void
test_ws_3_x_reserved_bits_are_protocol_errors(void **state)
{
	const int ops[] = {WS_OP_TEXT,   WS_OP_TEXT, WS_OP_TEXT, WS_OP_TEXT,
	                   WS_OP_BINARY, WS_OP_PING, WS_OP_CLOSE};
	int rsv;

	(void)state;
	for (rsv = 1; rsv <= 7; rsv++) {
		struct buf in = {0};

		frame_s(&in, 1, WS_OP_TEXT, "Hello, world!");
		if (ops[rsv - 1] == WS_OP_CLOSE)
			frame(&in, 1, WS_OP_CLOSE | rsv << 4, "\x03\xe8", 2);
		else
			frame_s(&in, 1, ops[rsv - 1] | rsv << 4, "Hello");
		frame_s(&in, 1, WS_OP_PING, "");
		check(&in, "T(Hello, world!)\nERR -1\n");
		buf_free(&in);
	}
}

/* 4.1.x / 4.2.x: reserved data and control opcodes fail with 1002. */
static void
test_ws_4_x_reserved_opcodes_are_protocol_errors(void **state)
{
	const int ops[] = {3, 4, 5, 6, 7, 11, 12, 13, 14, 15};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct buf in = {0}, in2 = {0};

		frame(&in, 1, ops[i], NULL, 0);
		check(&in, "ERR -1\n");
		frame_s(&in2, 1, WS_OP_TEXT, "Hello, world!");
		frame_s(&in2, 1, ops[i], "reserved opcode payload");
		frame(&in2, 1, WS_OP_PING, NULL, 0);
		check(&in2, "T(Hello, world!)\nERR -1\n");
		buf_free(&in);
		buf_free(&in2);
	}
}

/* 5.1-5.2: fragmented control frames fail with 1002. */
static void
test_ws_5_1_5_2_fragmented_control_frames_fail(void **state)
{
	int op;

	(void)state;
	for (op = WS_OP_PING; op <= WS_OP_PONG; op++) {
		struct buf in = {0};

		frame_s(&in, 0, op, "fragment1");
		frame_s(&in, 1, WS_OP_CONT, "fragment2");
		check(&in, "ERR -1\n");
		buf_free(&in);
	}
}

/* 5.3-5.5: a text message in two fragments. */
static void
test_ws_5_3_text_in_two_fragments(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_s(&in, 0, WS_OP_TEXT, "fragment1");
	frame_s(&in, 1, WS_OP_CONT, "fragment2");
	check(&in, "T(fragment1fragment2)\n");
	buf_free(&in);
}

/* 5.6-5.8: a ping between fragments is answered at once. */
static void
test_ws_5_6_ping_between_fragments(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_s(&in, 0, WS_OP_TEXT, "fragment1");
	frame_s(&in, 1, WS_OP_PING, "ping payload");
	frame_s(&in, 1, WS_OP_CONT, "fragment2");
	check(&in, "PONG(ping payload)\nT(fragment1fragment2)\n");
	buf_free(&in);
}

/* 5.9-5.14: a continuation without a started message fails. */
static void
test_ws_5_9_to_5_14_continuation_without_start_fails(void **state)
{
	int fin;

	(void)state;
	for (fin = 0; fin <= 1; fin++) {
		struct buf in = {0};

		frame_s(&in, fin, WS_OP_CONT, "non-continuation payload");
		frame_s(&in, 1, WS_OP_TEXT, "Hello, world!");
		check(&in, "ERR -1\n");
		buf_free(&in);
	}
}

/* 5.15: a continuation after the final fragment fails. */
static void
test_ws_5_15_continuation_after_final_fragment_fails(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_s(&in, 0, WS_OP_TEXT, "fragment1");
	frame_s(&in, 1, WS_OP_CONT, "fragment2");
	frame_s(&in, 0, WS_OP_CONT, "fragment3");
	frame_s(&in, 1, WS_OP_CONT, "fragment4");
	check(&in, "T(fragment1fragment2)\nERR -1\n");
	buf_free(&in);
}

/* 5.16-5.17: repeated continuation-first sequences fail at once. */
static void
test_ws_5_16_5_17_continuation_first_sequences_fail(void **state)
{
	int fin;

	(void)state;
	for (fin = 0; fin <= 1; fin++) {
		struct buf in = {0};
		int i;

		for (i = 0; i < 2; i++) {
			frame_s(&in, fin, WS_OP_CONT, "fragment1");
			frame_s(&in, 0, WS_OP_TEXT, "fragment2");
			frame_s(&in, 1, WS_OP_CONT, "fragment3");
		}
		check(&in, "ERR -1\n");
		buf_free(&in);
	}
}

/* 5.18: a new text frame inside a fragmented message fails. */
static void
test_ws_5_18_new_message_inside_fragmented_one_fails(void **state)
{
	struct buf in = {0}, in2 = {0};

	(void)state;
	frame_s(&in, 0, WS_OP_TEXT, "fragment1");
	frame_s(&in, 1, WS_OP_TEXT, "fragment2");
	check(&in, "ERR -1\n");
	frame_s(&in2, 0, WS_OP_BINARY, "fragment1");
	frame_s(&in2, 0, WS_OP_TEXT, "fragment2");
	check(&in2, "ERR -1\n");
	buf_free(&in);
	buf_free(&in2);
}

/* 5.19-5.20: five fragments with two pings in between. */
static void
test_ws_5_19_fragments_with_pings_in_between(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_s(&in, 0, WS_OP_TEXT, "fragment1");
	frame_s(&in, 0, WS_OP_CONT, "fragment2");
	frame_s(&in, 1, WS_OP_PING, "pongme 1!");
	frame_s(&in, 0, WS_OP_CONT, "fragment3");
	frame_s(&in, 0, WS_OP_CONT, "fragment4");
	frame_s(&in, 1, WS_OP_PING, "pongme 2!");
	frame_s(&in, 1, WS_OP_CONT, "fragment5");
	check(&in, "PONG(pongme 1!)\nPONG(pongme 2!)\n"
	           "T(fragment1fragment2fragment3fragment4fragment5)\n");
	buf_free(&in);
}

/* 6.1.1-6.1.3: empty frames and fragments. */
static void
test_ws_6_1_empty_frames_and_fragments(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_s(&in, 1, WS_OP_TEXT, "");
	frame_s(&in, 0, WS_OP_TEXT, "");
	frame_s(&in, 0, WS_OP_CONT, "");
	frame_s(&in, 1, WS_OP_CONT, "");
	frame_s(&in, 0, WS_OP_TEXT, "");
	frame_s(&in, 0, WS_OP_CONT, "middle frame payload");
	frame_s(&in, 1, WS_OP_CONT, "");
	check(&in, "T()\nT()\nT(middle frame payload)\n");
	buf_free(&in);
}

/* A UTF-8 vector for the text frame cases. */
struct utf8_case {
	const char *s;
	int valid;
};

static const struct utf8_case utf8_cases[] = {
    {"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
     1},                                                 /* 6.2 */
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1}, /* 6.5 */
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
     "edited",
     0},                             /* 6.3 */
    {"\xce\xba\xe1\xbd", 0},         /* 6.6 */
    {"\xf0\x90\x80\x80", 1},         /* 6.7 */
    {"\xf8\x88\x80\x80\x80", 0},     /* 6.8 */
    {"\xf4\x8f\xbf\xbf", 1},         /* 6.11 */
    {"\xf4\x90\x80\x80", 0},         /* 6.11.5 */
    {"\x80", 0},                     /* 6.12 */
    {"\xc0 ", 0},                    /* 6.13 */
    {"\xe0\x80", 0},                 /* 6.14 */
    {"\xfe", 0},                     /* 6.16 */
    {"\xc0\xaf", 0},                 /* 6.17 */
    {"\xe0\x9f\xbf", 0},             /* 6.18 */
    {"\xed\xbf\xbf", 0},             /* 6.20 */
    {"\xed\xa0\x80\xed\xb0\x80", 0}, /* 6.21 */
    {"\xef\xbf\xbe", 1},             /* 6.22 */
    {"\xef\xbf\xbd", 1},             /* 6.23 */
};

/* 6.2-6.23: text validated whole, in 1-byte fragments, and in two
 * fragments split inside characters; invalid text fails with 1007. */
static void
test_ws_6_x_text_utf8_in_frames_and_fragments(void **state)
{
	size_t i, k, n, split;

	(void)state;
	for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		const char *s = utf8_cases[i].s;
		struct buf want = {0}, in = {0};

		n = strlen(s);
		if (utf8_cases[i].valid)
			ev_msg(&want, 0, s, n);
		else
			buf_printf(&want, "ERR %d\n", WS_E_UTF8);
		frame(&in, 1, WS_OP_TEXT, s, n);
		check(&in, (char *)want.p);
		buf_free(&in);
		for (k = 0; k < n; k++)
			frame(&in, k + 1 == n, k ? WS_OP_CONT : WS_OP_TEXT,
			      s + k, 1);
		check(&in, (char *)want.p);
		buf_free(&in);
		for (split = 0; split <= n; split++) {
			frame(&in, 0, WS_OP_TEXT, s, split);
			frame(&in, 1, WS_OP_CONT, s + split, n - split);
			check(&in, (char *)want.p);
			buf_free(&in);
		}
		buf_free(&want);
	}
	assert_int_equal(ws_error_close_code(WS_E_UTF8), 1007);
}

/* 6.4.1-6.4.4: invalid text fails at the bad byte, before the frame or
 * the message is complete. */
static void
test_ws_6_4_utf8_fails_fast_before_frame_completes(void **state)
{
	const char *good = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
	struct buf in = {0};
	size_t upto;

	(void)state;
	/* 6.4.1: fragment 2 holds the bad bytes; fragment 3 never comes. */
	frame_s(&in, 0, WS_OP_TEXT, good);
	frame_s(&in, 0, WS_OP_CONT, "\xf4\x90\x80\x80");
	upto = in.len - 2; /* through the offending 0x90 */
	in.len = upto;
	check(&in, "ERR -2\n");
	buf_free(&in);
	/* 6.4.3: one frame announcing 100 bytes, cut after the bad one. */
	{
		uint8_t p[100];

		memset(p, 'x', sizeof(p));
		memcpy(p, good, strlen(good));
		memcpy(p + strlen(good), "\xf4\x90\x80\x80", 4);
		frame(&in, 1, WS_OP_TEXT, p, sizeof(p));
		in.len -= sizeof(p) - strlen(good) - 2;
		check(&in, "ERR -2\n");
		buf_free(&in);
	}
}

/* 7.1.1: a message, then a clean close echoed with its code. */
static void
test_ws_7_1_1_message_then_close_is_echoed(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_s(&in, 1, WS_OP_TEXT, "Hello World!");
	frame_close(&in, 1000, NULL, 0);
	check(&in, "T(Hello World!)\nCLOSE 1000()\nCLOSED 1000\n");
	buf_free(&in);
}

/* 7.1.2-7.1.4: anything after the peer's close is WS_E_CLOSED; no
 * second echo, no pong, no message. */
static void
test_ws_7_1_2_to_7_1_4_data_after_close_is_dropped(void **state)
{
	int k;

	(void)state;
	for (k = 0; k < 3; k++) {
		struct buf in = {0};

		frame_close(&in, 1000, NULL, 0);
		if (k == 0)
			frame_close(&in, 1000, NULL, 0);
		else if (k == 1)
			frame_s(&in, 1, WS_OP_PING, "ping");
		else
			frame_s(&in, 1, WS_OP_TEXT, "text");
		check(&in, "CLOSE 1000()\nCLOSED 1000\nERR -4\n");
		buf_free(&in);
	}
}

/* 7.1.5: a fragmented message cut by a close is never delivered. */
static void
test_ws_7_1_5_close_inside_fragmented_message(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_s(&in, 0, WS_OP_TEXT, "fragment1");
	frame_close(&in, 1000, NULL, 0);
	frame_s(&in, 1, WS_OP_CONT, "fragment2");
	check(&in, "CLOSE 1000()\nCLOSED 1000\nERR -4\n");
	buf_free(&in);
}

/* 7.1.6: a big message, a ping, then a close, handled in order. */
static void
test_ws_7_1_6_big_message_ping_then_close(void **state)
{
	uint8_t *p = blob(65536, 0);
	struct buf in = {0}, want = {0};

	(void)state;
	frame(&in, 1, WS_OP_TEXT, p, 65536);
	ev_msg(&want, 0, p, 65536);
	frame_s(&in, 1, WS_OP_PING, "ping");
	ev_pong(&want, "ping", 4);
	frame_close(&in, 1000, NULL, 0);
	buf_printf(&want, "CLOSE 1000()\nCLOSED 1000\n");
	check(&in, (char *)want.p);
	free(p);
	buf_free(&in);
	buf_free(&want);
}

/* 7.3.1: an empty close is answered with 1000 and reported as 1005. */
static void
test_ws_7_3_1_empty_close_reports_1005(void **state)
{
	struct buf in = {0};

	(void)state;
	frame_close(&in, -1, NULL, 0);
	check(&in, "CLOSE 1000()\nCLOSED 1005\n");
	buf_free(&in);
}

/* 7.3.2: a close payload of one byte fails with 1002. */
static void
test_ws_7_3_2_close_with_one_byte_payload_fails(void **state)
{
	struct buf in = {0};

	(void)state;
	frame(&in, 1, WS_OP_CLOSE, "\x03", 1);
	check(&in, "ERR -1\n");
	buf_free(&in);
}

/* 7.3.3-7.3.5: close with a code and a reason up to 123 bytes. */
static void
test_ws_7_3_3_to_7_3_5_close_with_reason(void **state)
{
	uint8_t *r = blob(123, 0);
	struct buf in = {0};

	(void)state;
	frame_close(&in, 1000, "Hello World!", 12);
	check(&in, "CLOSE 1000()\nCLOSED 1000\n");
	buf_free(&in);
	frame_close(&in, 1000, r, 123);
	check(&in, "CLOSE 1000()\nCLOSED 1000\n");
	buf_free(&in);
	free(r);
}

/* 7.3.6: a 124-byte reason makes the close frame too long: 1002. */
static void
test_ws_7_3_6_close_reason_too_long_fails(void **state)
{
	uint8_t *r = blob(124, 0);
	struct buf in = {0};

	(void)state;
	frame_close(&in, 1000, r, 124);
	check(&in, "ERR -1\n");
	buf_free(&in);
	free(r);
}

/* 7.5.1: a close reason that is not UTF-8 fails with 1007. */
static void
test_ws_7_5_1_close_reason_invalid_utf8_fails(void **state)
{
	const char *bad = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed"
	                  "\xa0\x80\x65\x64\x69\x74\x65\x64";
	struct buf in = {0};

	(void)state;
	frame_close(&in, 1000, bad, strlen(bad));
	check(&in, "ERR -2\n");
	buf_free(&in);
}

/* 7.7.x: valid close codes are echoed and reported. */
static void
test_ws_7_7_valid_close_codes_are_echoed(void **state)
{
	const int codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
	                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
	char want[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct buf in = {0};

		frame_close(&in, codes[i], "ok", 2);
		snprintf(want, sizeof(want), "CLOSE %d()\nCLOSED %d\n",
		         codes[i], codes[i]);
		check(&in, want);
		buf_free(&in);
	}
}

/* 7.9.x: invalid close codes fail with 1002. */
static void
test_ws_7_9_invalid_close_codes_fail(void **state)
{
	const int codes[] = {0,    999,  1004, 1005, 1006, 1015,
	                     1016, 1100, 2000, 2999, 5000, 65535};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct buf in = {0};

		frame_close(&in, codes[i], NULL, 0);
		check(&in, "ERR -1\n");
		buf_free(&in);
	}
}

/* 9.1.1 / 9.2.1: a 65536-byte message (the cap) is delivered; with a
 * smaller cap, exactly the cap is allowed. */
static void
test_ws_9_1_message_at_cap_is_delivered(void **state)
{
	struct opts o = {10, 0, 0, 0};
	struct buf in = {0};

	(void)state;
	frame_s(&in, 1, WS_OP_TEXT, "0123456789");
	check_opts(&o, &in, "T(0123456789)\n");
	buf_free(&in);
	frame_s(&in, 0, WS_OP_BINARY, "01234");
	frame_s(&in, 1, WS_OP_CONT, "56789");
	check_opts(&o, &in, "B(0123456789)\n");
	buf_free(&in);
}

/* 9.1.2+: a message over the cap fails with 1009, known from the header
 * alone: nothing of the payload needs to arrive. */
static void
test_ws_9_x_message_over_cap_fails_from_header(void **state)
{
	uint8_t head[WS_MAX_HEADER], mask[4] = {1, 2, 3, 4};
	struct opts o = {10, 0, 0, 0};
	struct buf in = {0};
	size_t h;

	(void)state;
	h = ws_frame_client_header(head, 1, WS_OP_TEXT, 262144, mask);
	buf_add(&in, head, h);
	check(&in, "ERR -3\n");
	buf_free(&in);
	h = ws_frame_client_header(head, 1, WS_OP_BINARY, 65537, mask);
	buf_add(&in, head, h);
	check(&in, "ERR -3\n");
	buf_free(&in);
	/* Across fragments: 65536 + 1 fails at the second header. */
	{
		uint8_t *p = blob(65536, 0);

		frame(&in, 0, WS_OP_TEXT, p, 65536);
		h = ws_frame_client_header(head, 1, WS_OP_CONT, 1, mask);
		buf_add(&in, head, h);
		check(&in, "ERR -3\n");
		free(p);
		buf_free(&in);
	}
	frame_s(&in, 1, WS_OP_TEXT, "01234567890");
	check_opts(&o, &in, "ERR -3\n");
	buf_free(&in);
	frame_s(&in, 0, WS_OP_TEXT, "012345");
	frame_s(&in, 1, WS_OP_CONT, "67890");
	check_opts(&o, &in, "ERR -3\n");
	buf_free(&in);
	assert_int_equal(ws_error_close_code(WS_E_TOO_BIG), 1009);
}

/* 9.3.x / 9.4.x / 10.1.1: 64 KiB fragmented in frames of many sizes. */
static void
test_ws_9_3_fragmented_64k_in_many_fragment_sizes(void **state)
{
	const size_t sizes[] = {64, 256, 1024, 1300, 4096, 16384, 65536};
	size_t i, off, k;
	int binary;

	(void)state;
	for (binary = 0; binary <= 1; binary++) {
		uint8_t *p = blob(65536, binary);

		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			struct buf in = {0}, want = {0};

			for (off = 0; off < 65536; off += k) {
				k = sizes[i] < 65536 - off ? sizes[i]
				                           : 65536 - off;
				frame(&in, off + k >= 65536,
				      off      ? WS_OP_CONT
				      : binary ? WS_OP_BINARY
				               : WS_OP_TEXT,
				      p + off, k);
			}
			ev_msg(&want, binary, p, 65536);
			check(&in, (char *)want.p);
			buf_free(&in);
			buf_free(&want);
		}
		free(p);
	}
}

/* A message may take WS_MAX_FRAGMENTS frames, empty continuations
 * included; one more fails with 1009 like too many bytes would. */
static void
test_ws_fragment_count_is_capped(void **state)
{
	struct buf in = {0};
	int extra, i;

	(void)state;
	for (extra = 0; extra <= 1; extra++) {
		frame_s(&in, 0, WS_OP_TEXT, "a");
		for (i = 2; i < WS_MAX_FRAGMENTS + extra; i++)
			frame_s(&in, 0, WS_OP_CONT, "");
		frame_s(&in, 1, WS_OP_CONT, "b");
		check(&in, extra ? "ERR -3\n" : "T(ab)\n");
		buf_free(&in);
	}
}

/* 9.7.x: many small messages in one stream. */
static void
test_ws_9_7_many_small_messages(void **state)
{
	struct buf in = {0}, want = {0};
	char p[32];
	int i;

	(void)state;
	for (i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "msg %d", i);
		frame_s(&in, 1, i & 1 ? WS_OP_BINARY : WS_OP_TEXT, p);
		ev_msg(&want, i & 1, p, strlen(p));
	}
	check(&in, (char *)want.p);
	buf_free(&in);
	buf_free(&want);
}

/* RFC 6455 5.1: an unmasked client frame fails with 1002. */
static void
test_ws_unmasked_client_frame_is_protocol_error(void **state)
{
	struct buf in = {0};

	(void)state;
	buf_add(&in, "\x81\x05Hello", 7);
	check(&in, "ERR -1\n");
	buf_free(&in);
}

/* 64-bit lengths with the top bit set fail; non-minimal ones pass. */
static void
test_ws_length_encodings(void **state)
{
	struct buf in = {0};

	(void)state;
	buf_add(&in, "\x82\xff\x80\0\0\0\0\0\0\x01\0\0\0\0", 14);
	check(&in, "ERR -1\n");
	buf_free(&in);
	buf_add(&in, "\x81\xfe\x00\x05\0\0\0\0Hello", 13);
	buf_add(&in, "\x81\xff\0\0\0\0\0\0\0\x02\0\0\0\0hi", 16);
	check(&in, "T(Hello)\nT(hi)\n");
	buf_free(&in);
}

/* Binary messages reach the glue with binary=1; the chat layer's close
 * 1003 from inside the callback stops later messages and pongs, and the
 * peer's close then completes the handshake without a second close. */
static void
test_ws_close_from_callback_drops_later_messages(void **state)
{
	struct opts o = {0, 0, 1, 0};
	struct buf in = {0};

	(void)state;
	frame_s(&in, 1, WS_OP_BINARY, "bin");
	frame_s(&in, 1, WS_OP_TEXT, "dropped");
	frame_s(&in, 1, WS_OP_PING, "unanswered");
	frame_close(&in, 1003, NULL, 0);
	check_opts(&o, &in, "B(bin)\nCLOSE 1003(binary)\nCLOSED 1003\n");
	buf_free(&in);
}

/* A message callback returning -1 stops the feed with WS_E_ABORT. */
static void
test_ws_message_callback_abort_stops_feed(void **state)
{
	struct opts o = {0, 1, 0, 0};
	struct buf in = {0};

	(void)state;
	frame_s(&in, 1, WS_OP_TEXT, "one");
	frame_s(&in, 1, WS_OP_TEXT, "two");
	check_opts(&o, &in, "T(one)\nERR -5\n");
	assert_int_equal(ws_error_close_code(WS_E_ABORT), 0);
	assert_int_equal(ws_error_close_code(WS_E_CLOSED), 0);
	buf_free(&in);
}

/* Collects writes into a buffer (for direct ws_close tests). */
static void
collect_write(void *arg, const uint8_t *data, size_t len)
{
	buf_add(arg, data, len);
}

/* Unused callbacks for direct tests. */
static int
noop_message(void *arg, int binary, uint8_t *data, size_t len)
{
	(void)arg, (void)binary, (void)data, (void)len;
	return 0;
}

static void
noop_closed(void *arg, int code)
{
	(void)arg, (void)code;
}

static void
noop_pong(void *arg)
{
	(void)arg;
}

static const struct ws_callbacks collect_cb = {noop_message, collect_write,
                                               noop_closed, noop_pong};

/* ws_close writes one close frame, once; a long reason is cut at a
 * character boundary within 123 bytes. */
static void
test_ws_close_sends_once_with_truncated_reason(void **state)
{
	struct buf out = {0};
	struct ws ws;
	char reason[200];
	size_t i;

	(void)state;
	ws_init(&ws, 0, &collect_cb, &out);
	ws_close(&ws, 1001, "going away");
	ws_close(&ws, 1000, NULL);
	assert_int_equal(out.len, 14);
	assert_memory_equal(out.p, "\x88\x0c\x03\xe9going away", 14);
	ws_free(&ws);
	buf_free(&out);

	/* 60 two-byte characters: 120 bytes fit, the 121st char does not. */
	for (i = 0; i < 62; i++)
		memcpy(reason + 2 * i, "\xc3\xa9", 2);
	reason[124] = 0;
	ws_init(&ws, 0, &collect_cb, &out);
	ws_close(&ws, 4001, reason);
	assert_int_equal(out.len, 2 + 2 + 122);
	assert_int_equal(out.p[1], 124);
	ws_free(&ws);
	buf_free(&out);

	/* No code (or an unsendable one): an empty close. */
	ws_init(&ws, 0, &collect_cb, &out);
	ws_close(&ws, 1005, "ignored");
	assert_int_equal(out.len, 2);
	assert_memory_equal(out.p, "\x88\x00", 2);
	ws_free(&ws);
	buf_free(&out);
}

/* A whole unfragmented frame in the fed buffer is delivered from it. */
static void
test_ws_single_frame_is_delivered_without_copy(void **state)
{
	struct buf in = {0};
	struct ws ws;
	struct rec r;

	(void)state;
	frame_s(&in, 1, WS_OP_TEXT, "zero copy");
	memset(&r, 0, sizeof(r));
	r.ws = &ws;
	r.fed = in.p;
	r.fed_len = in.len;
	ws_init(&ws, 0, &rec_cb, &r);
	assert_int_equal(ws_feed(&ws, in.p, in.len), in.len);
	assert_int_equal(r.direct, 1);
	assert_null(ws.msg);
	ws_free(&ws);
	buf_free(&r.log);
	buf_free(&in);
}

/* Idle engines hold no big buffer: a big message's buffer is freed once
 * delivered, a small one by ws_shrink, never mid-message. */
static void
test_ws_idle_engine_holds_no_big_buffer(void **state)
{
	uint8_t *p = blob(20000, 1);
	struct buf in = {0};
	struct ws ws;
	struct rec r;

	(void)state;
	assert_true(sizeof(struct ws) <= 320);
	memset(&r, 0, sizeof(r));
	r.ws = &ws;
	ws_init(&ws, 0, &rec_cb, &r);
	frame(&in, 0, WS_OP_BINARY, p, 10000);
	frame(&in, 1, WS_OP_CONT, p + 10000, 10000);
	assert_int_equal(ws_feed(&ws, in.p, in.len - 5), in.len - 5);
	ws_shrink(&ws); /* mid-message: kept */
	assert_non_null(ws.msg);
	assert_int_equal(ws_feed(&ws, in.p + in.len - 5, 5), 5);
	assert_null(ws.msg);
	buf_free(&in);

	frame_s(&in, 0, WS_OP_TEXT, "small");
	frame_s(&in, 1, WS_OP_CONT, " one");
	assert_int_equal(ws_feed(&ws, in.p, in.len), in.len);
	assert_non_null(ws.msg);
	assert_true(ws.msg_cap <= 4096);
	ws_shrink(&ws);
	assert_null(ws.msg);
	assert_int_equal(ws.msg_cap, 0);
	ws_free(&ws);
	buf_free(&r.log);
	buf_free(&in);
	free(p);
}

/* permessage-deflate (RFC 7692), Autobahn sections 12 and 13. */

/* A client's compressor: raw deflate with window wbits (zlib makes 8
 * into 9, as browsers' zlib does), a fresh context per message. */
static void
zclient_init(z_stream *z, int wbits, int level)
{
	memset(z, 0, sizeof(*z));
	assert_int_equal(deflateInit2(z, level, Z_DEFLATED,
	                              -(wbits < 9 ? 9 : wbits), 8,
	                              Z_DEFAULT_STRATEGY),
	                 Z_OK);
}

/* Compresses p[0..n) as one message into out (RFC 7692 7.2.1: sync
 * flush, 00 00 ff ff taken off); final sets BFINAL on the last block
 * instead (7.2.3.3). */
static void
zclient_message(z_stream *z, const void *p, size_t n, struct buf *out,
                int final)
{
	uint8_t tmp[4096];
	int r;

	z->next_in = (Bytef *)p;
	z->avail_in = (uInt)n;
	do {
		z->next_out = tmp;
		z->avail_out = sizeof(tmp);
		r = deflate(z, final ? Z_FINISH : Z_SYNC_FLUSH);
		assert_true(r == Z_OK || r == Z_STREAM_END);
		buf_add(out, tmp, sizeof(tmp) - z->avail_out);
	} while (z->avail_out == 0);
	if (!final) {
		assert_true(out->len >= 4);
		assert_memory_equal(out->p + out->len - 4, "\0\0\xff\xff", 4);
		out->len -= 4;
	}
	deflateReset(z);
}

/* Appends message p[0..n), compressed by z, as frames of at most frag
 * compressed bytes each (0: one frame); RSV1 on the first only. */
static void
zframes(struct buf *in, z_stream *z, int binary, const void *p, size_t n,
        size_t frag)
{
	struct buf c = {0};
	size_t off = 0, k;
	int op = binary ? WS_OP_BINARY : WS_OP_TEXT;

	zclient_message(z, p, n, &c, 0);
	do {
		k = frag == 0 || c.len - off < frag ? c.len - off : frag;
		frame(in, off + k == c.len,
		      off ? WS_OP_CONT : op | WS_FRAME_RSV1, c.p + off, k);
		off += k;
	} while (off < c.len);
	buf_free(&c);
}

/* The engine with deflate negotiated (client window 15). */
static const struct opts zopts = {0, 0, 0, 15};

/* RFC 7692 7.2.3's sample payloads of "Hello". */
static void
test_ws_deflate_rfc7692_samples(void **state)
{
	static const struct {
		const char *bytes;
		size_t n;
	} one[] = {
	    {"\xf2\x48\xcd\xc9\xc9\x07\x00", 7},                  /* 7.2.3.1 */
	    {"\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", 11}, /* 7.2.3.2 */
	    {"\xf3\x48\xcd\xc9\xc9\x07\x00", 7}, /* 7.2.3.3 BFINAL */
	    {"\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00",
	     13},                                    /* 7.2.3.4: two blocks */
	    {"\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 8}, /* BFINAL, then junk */
	};
	struct buf in = {0};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, one[i].bytes,
		      one[i].n);
		check_opts(&zopts, &in, "T(Hello)\n");
		buf_free(&in);
	}
	/* 7.2.3.1, fragmented: RSV1 only on the first frame. */
	frame(&in, 0, WS_OP_TEXT | WS_FRAME_RSV1, "\xf2\x48\xcd", 3);
	frame(&in, 1, WS_OP_CONT, "\xc9\xc9\x07\x00", 4);
	check_opts(&zopts, &in, "T(Hello)\n");
	buf_free(&in);
	/* An empty message: as no bytes at all (taken, as zlib-based peers
	 * do), as an empty fixed block, as 7.2.3.6's empty fragment. */
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, NULL, 0);
	frame(&in, 1, WS_OP_BINARY | WS_FRAME_RSV1, "\x02\x00", 2);
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, "\x00", 1);
	check_opts(&zopts, &in, "T()\nB()\nT()\n");
	buf_free(&in);
}

/* Compressed and uncompressed messages mix on a compressing connection;
 * control frames arrive between compressed fragments. */
static void
test_ws_deflate_mixed_and_interleaved(void **state)
{
	const char *text = "{\"type\":\"send\",\"room\":\"general\","
	                   "\"text\":\"hello hello hello hello\"}";
	struct buf in = {0}, c = {0}, want = {0};
	z_stream z;

	(void)state;
	zclient_init(&z, 15, 6);
	zframes(&in, &z, 0, text, strlen(text), 0);
	ev_msg(&want, 0, text, strlen(text));
	frame_s(&in, 1, WS_OP_TEXT, "plain");
	ev_msg(&want, 0, "plain", 5);
	zclient_message(&z, text, strlen(text), &c, 0);
	frame(&in, 0, WS_OP_BINARY | WS_FRAME_RSV1, c.p, 3);
	frame_s(&in, 1, WS_OP_PING, "p1");
	ev_pong(&want, "p1", 2);
	frame(&in, 0, WS_OP_CONT, c.p + 3, 0);
	frame(&in, 0, WS_OP_CONT, c.p + 3, c.len - 10);
	frame_s(&in, 1, WS_OP_PONG, "x");
	buf_printf(&want, "PONGED\n");
	frame_s(&in, 1, WS_OP_PING, "p2");
	ev_pong(&want, "p2", 2);
	frame(&in, 1, WS_OP_CONT, c.p + c.len - 7, 7);
	ev_msg(&want, 1, text, strlen(text));
	frame_s(&in, 0, WS_OP_BINARY, "unc");
	frame_s(&in, 1, WS_OP_CONT, "ompressed");
	ev_msg(&want, 1, "uncompressed", 12);
	frame_close(&in, 1000, NULL, 0);
	buf_printf(&want, "CLOSE 1000()\nCLOSED 1000\n");
	check_opts(&zopts, &in, (char *)want.p);
	deflateEnd(&z);
	buf_free(&in);
	buf_free(&c);
	buf_free(&want);
}

/* RSV1 anywhere but a first data frame, or without negotiation, is a
 * protocol error (1002); so are RSV2 and RSV3 still. */
static void
test_ws_deflate_rsv1_misuse_is_protocol_error(void **state)
{
	static const int ops[] = {WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE};
	struct buf in = {0};
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		frame(&in, 1, ops[i] | WS_FRAME_RSV1, NULL, 0);
		check_opts(&zopts, &in, "ERR -1\n");
		buf_free(&in);
	}
	/* On a continuation: of a compressed message or of a plain one. */
	frame(&in, 0, WS_OP_TEXT | WS_FRAME_RSV1, "\xf2\x48\xcd", 3);
	frame(&in, 1, WS_OP_CONT | WS_FRAME_RSV1, "\xc9\xc9\x07\x00", 4);
	check_opts(&zopts, &in, "ERR -1\n");
	buf_free(&in);
	frame_s(&in, 0, WS_OP_TEXT, "He");
	frame(&in, 1, WS_OP_CONT | WS_FRAME_RSV1, "llo", 3);
	check_opts(&zopts, &in, "ERR -1\n");
	buf_free(&in);
	/* Not negotiated. */
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1,
	      "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
	check(&in, "ERR -1\n");
	buf_free(&in);
	frame(&in, 1, WS_OP_TEXT | 0x20, "x", 1);
	check_opts(&zopts, &in, "ERR -1\n");
	buf_free(&in);
	frame(&in, 1, WS_OP_TEXT | 0x10 | WS_FRAME_RSV1, "x", 1);
	check_opts(&zopts, &in, "ERR -1\n");
	buf_free(&in);
}

/* Data that is not deflate, or is cut short, fails with 1007; so does
 * a back-reference into a previous message: the server asked for no
 * context takeover. */
static void
test_ws_deflate_invalid_data_is_1007(void **state)
{
	const char *text = "abcabcabcabcabcabcabcabcabcabcabc abcabcabc";
	struct buf in = {0}, c = {0}, want = {0};
	z_stream z;

	(void)state;
	assert_int_equal(ws_error_close_code(WS_E_INFLATE), 1007);
	/* BTYPE 11 is reserved. */
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, "\xff\xff\xff", 3);
	check_opts(&zopts, &in, "ERR -6\n");
	buf_free(&in);
	/* Stored block whose LEN and NLEN disagree. */
	frame(&in, 1, WS_OP_BINARY | WS_FRAME_RSV1, "\x00\x05\x00\x00\x00", 5);
	check_opts(&zopts, &in, "ERR -6\n");
	buf_free(&in);
	/* A valid message cut in the middle of its block. */
	zclient_init(&z, 15, 6);
	zclient_message(&z, text, strlen(text), &c, 0);
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, c.p, c.len - 3);
	check_opts(&zopts, &in, "ERR -6\n");
	buf_free(&in);
	/* The second message refers back into the first. */
	buf_free(&c);
	zclient_message(&z, text, strlen(text), &c, 0);
	deflateEnd(&z);
	zclient_init(&z, 15, 6);
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, c.p, c.len);
	ev_msg(&want, 0, text, strlen(text));
	buf_free(&c);
	z.next_in = (Bytef *)text;
	z.avail_in = (uInt)strlen(text);
	{
		uint8_t tmp[256];

		z.next_out = tmp;
		z.avail_out = sizeof(tmp);
		assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
		/* No reset: context taken over. */
		z.next_in = (Bytef *)text;
		z.avail_in = (uInt)strlen(text);
		z.next_out = tmp;
		z.avail_out = sizeof(tmp);
		assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
		frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, tmp,
		      sizeof(tmp) - z.avail_out - 4);
	}
	buf_printf(&want, "ERR -6\n");
	check_opts(&zopts, &in, (char *)want.p);
	deflateEnd(&z);
	buf_free(&in);
	buf_free(&want);
}

/* Invalid UTF-8 inside compressed text is 1007 too (WS_E_UTF8). */
static void
test_ws_deflate_text_is_validated_after_inflating(void **state)
{
	struct buf in = {0};
	z_stream z;

	(void)state;
	zclient_init(&z, 15, 6);
	zframes(&in, &z, 0, "caf\xc3\xa9 \xce\xba\xe1\xbd\xb9", 11, 4);
	zframes(&in, &z, 0, "ok \xc0\xaf bad", 9, 0);
	check_opts(&zopts, &in,
	           "T(caf\\xc3\\xa9 \\xce\\xba\\xe1\\xbd\\xb9)\n"
	           "ERR -2\n");
	buf_free(&in);
	/* Cut inside a sequence at the message's end. */
	zframes(&in, &z, 0, "caf\xc3", 4, 0);
	check_opts(&zopts, &in, "ERR -2\n");
	buf_free(&in);
	deflateEnd(&z);
}

/* The cap holds for the inflated size: a few hundred bytes that inflate
 * past it fail with 1009 and never allocate more than the cap. */
static void
test_ws_deflate_inflation_past_cap_is_1009(void **state)
{
	uint8_t *zeros = calloc(1, 1 << 20);
	struct buf in = {0}, want = {0};
	struct opts small = {1000, 0, 0, 15};
	struct ws ws;
	struct rec r;
	z_stream z;

	(void)state;
	assert_non_null(zeros);
	zclient_init(&z, 15, 9);
	zframes(&in, &z, 1, zeros, 1 << 20, 0);
	assert_true(in.len < 2048);
	check_opts(&zopts, &in, "ERR -3\n");
	memset(&r, 0, sizeof(r));
	r.ws = &ws;
	ws_init(&ws, 0, &rec_cb, &r);
	ws_set_deflate(&ws, 15);
	assert_int_equal(ws_feed(&ws, in.p, in.len), WS_E_TOO_BIG);
	assert_true(ws.msg_cap <= WS_MAX_MESSAGE);
	ws_free(&ws);
	buf_free(&r.log);
	buf_free(&in);
	/* Exactly at the cap passes; one byte more fails, fragmented too. */
	zframes(&in, &z, 1, zeros, 1000, 0);
	ev_msg(&want, 1, zeros, 1000);
	zframes(&in, &z, 1, zeros, 1001, 2);
	buf_printf(&want, "ERR -3\n");
	check_opts(&small, &in, (char *)want.p);
	buf_free(&in);
	buf_free(&want);
	/* A compressed payload much bigger than the cap fails from its
	 * header (no real deflater makes it). */
	{
		uint8_t head[WS_MAX_HEADER], mask[4] = {1, 2, 3, 4};
		size_t h = ws_frame_client_header(
		    head, 1, WS_OP_BINARY, 1000 + WS_DEFLATE_SLACK + 1, mask);

		head[0] |= WS_FRAME_RSV1;
		buf_add(&in, head, h);
		check_opts(&small, &in, "ERR -3\n");
		buf_free(&in);
	}
	deflateEnd(&z);
	free(zeros);
}

/* The inflater exists only while compressed messages arrive. */
static void
test_ws_deflate_idle_engine_holds_no_inflater(void **state)
{
	struct buf in = {0};
	struct ws ws;
	struct rec r;
	z_stream z;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.ws = &ws;
	ws_init(&ws, 0, &rec_cb, &r);
	ws_set_deflate(&ws, 15);
	zclient_init(&z, 15, 6);
	zframes(&in, &z, 0, "hello, hello, hello", 19, 3);
	assert_int_equal(ws_feed(&ws, in.p, in.len - 2), in.len - 2);
	assert_non_null(ws.zi); /* mid-message */
	ws_shrink(&ws);
	assert_non_null(ws.zi);
	assert_int_equal(ws_feed(&ws, in.p + in.len - 2, 2), 2);
	assert_null(ws.zi);
	assert_string_equal((char *)r.log.p, "T(hello, hello, hello)\n");
	ws_free(&ws);
	deflateEnd(&z);
	buf_free(&r.log);
	buf_free(&in);
}

/* 12.x: messages of 16 bytes to 64 KiB, compressible text and random
 * binary, auto-fragmented at several sizes (0: one frame). */
static void
test_ws_deflate_12_x_sizes_and_fragments(void **state)
{
	static const size_t sizes[] = {16, 64, 256, 1024, 4096, 65536};
	static const size_t frags[] = {0, 256, 1024, 4096};
	uint32_t seed = 12345;
	size_t i, j, k;
	int binary;
	z_stream z;

	(void)state;
	zclient_init(&z, 15, 6);
	for (binary = 0; binary <= 1; binary++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			uint8_t *p = blob(sizes[i], 0);

			if (binary)
				for (k = 0; k < sizes[i]; k++)
					p[k] = (uint8_t)rnd(&seed);
			for (j = 0; j < sizeof(frags) / sizeof(frags[0]); j++) {
				struct buf in = {0}, want = {0};

				for (k = 0; k < 3; k++) {
					zframes(&in, &z, binary, p, sizes[i],
					        frags[j]);
					ev_msg(&want, binary, p, sizes[i]);
				}
				check_opts(&zopts, &in, (char *)want.p);
				buf_free(&in);
				buf_free(&want);
			}
			free(p);
		}
	}
	deflateEnd(&z);
}

/* 13.x: the client deflates with the window it negotiated (8-15; zlib's
 * 8 is 9), with BFINAL messages too; the engine inflates each. */
static void
test_ws_deflate_13_x_client_windows(void **state)
{
	static const int windows[] = {8, 9, 10, 12, 15};
	uint8_t *p = blob(8192, 0);
	size_t i, k;
	z_stream z;

	(void)state;
	for (k = 0; k < 8192; k++)
		p[k] = "abcdefgh ijk"[(k * k / 7) % 12];
	for (i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		struct opts o = {0, 0, 0, windows[i]};
		struct buf in = {0}, want = {0}, c = {0};

		zclient_init(&z, windows[i], 6);
		zframes(&in, &z, 0, p, 8192, 0);
		ev_msg(&want, 0, p, 8192);
		zframes(&in, &z, 0, p, 300, 100);
		ev_msg(&want, 0, p, 300);
		zclient_message(&z, p, 5000, &c, 1);
		frame(&in, 1, WS_OP_BINARY | WS_FRAME_RSV1, c.p, c.len);
		ev_msg(&want, 1, p, 5000);
		check_opts(&o, &in, (char *)want.p);
		deflateEnd(&z);
		buf_free(&in);
		buf_free(&want);
		buf_free(&c);
	}
	free(p);
}

/* The server's compressor: small or incompressible messages are not
 * worth it; the rest inflate back, each on its own. */
static void
test_ws_deflate_server_compressor(void **state)
{
	struct ws_deflate *d = ws_deflate_new();
	uint8_t *text = blob(4000, 0), *noise = blob(4000, 1);
	struct buf in = {0}, want = {0};
	const uint8_t *out;
	uint32_t seed = 7;
	size_t n, k;

	(void)state;
	for (k = 0; k < 4000; k++)
		noise[k] = (uint8_t)rnd(&seed);
	assert_null(ws_deflate_compress(d, text, WS_DEFLATE_MIN - 1, &n));
	assert_int_equal(n, 0);
	assert_null(ws_deflate_compress(d, noise, 4000, &n));
	out = ws_deflate_compress(d, text, 4000, &n);
	assert_non_null(out);
	assert_true(n < 200);
	/* What the server sends, fed back to an engine as a client would
	 * send it: the same bytes inflate to the message. */
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, out, n);
	ev_msg(&want, 0, text, 4000);
	out = ws_deflate_compress(d, text, WS_DEFLATE_MIN, &n);
	assert_non_null(out);
	frame(&in, 1, WS_OP_TEXT | WS_FRAME_RSV1, out, n);
	ev_msg(&want, 0, text, WS_DEFLATE_MIN);
	check_opts(&zopts, &in, (char *)want.p);
	buf_free(&in);
	buf_free(&want);
	ws_deflate_free(d);
	free(text);
	free(noise);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ws_1_x_messages_of_boundary_lengths),
	    cmocka_unit_test(
	        test_ws_2_1_to_2_4_ping_gets_pong_with_same_payload),
	    cmocka_unit_test(test_ws_2_5_ping_over_125_bytes_is_protocol_error),
	    cmocka_unit_test(test_ws_2_7_to_2_9_unsolicited_pongs_are_ignored),
	    cmocka_unit_test(test_ws_2_10_ten_pings_get_ten_pongs),
	    cmocka_unit_test(test_ws_3_x_reserved_bits_are_protocol_errors),
	    cmocka_unit_test(test_ws_4_x_reserved_opcodes_are_protocol_errors),
	    cmocka_unit_test(test_ws_5_1_5_2_fragmented_control_frames_fail),
	    cmocka_unit_test(test_ws_5_3_text_in_two_fragments),
	    cmocka_unit_test(test_ws_5_6_ping_between_fragments),
	    cmocka_unit_test(
	        test_ws_5_9_to_5_14_continuation_without_start_fails),
	    cmocka_unit_test(
	        test_ws_5_15_continuation_after_final_fragment_fails),
	    cmocka_unit_test(
	        test_ws_5_16_5_17_continuation_first_sequences_fail),
	    cmocka_unit_test(
	        test_ws_5_18_new_message_inside_fragmented_one_fails),
	    cmocka_unit_test(test_ws_5_19_fragments_with_pings_in_between),
	    cmocka_unit_test(test_ws_6_1_empty_frames_and_fragments),
	    cmocka_unit_test(test_ws_6_x_text_utf8_in_frames_and_fragments),
	    cmocka_unit_test(
	        test_ws_6_4_utf8_fails_fast_before_frame_completes),
	    cmocka_unit_test(test_ws_7_1_1_message_then_close_is_echoed),
	    cmocka_unit_test(
	        test_ws_7_1_2_to_7_1_4_data_after_close_is_dropped),
	    cmocka_unit_test(test_ws_7_1_5_close_inside_fragmented_message),
	    cmocka_unit_test(test_ws_7_1_6_big_message_ping_then_close),
	    cmocka_unit_test(test_ws_7_3_1_empty_close_reports_1005),
	    cmocka_unit_test(test_ws_7_3_2_close_with_one_byte_payload_fails),
	    cmocka_unit_test(test_ws_7_3_3_to_7_3_5_close_with_reason),
	    cmocka_unit_test(test_ws_7_3_6_close_reason_too_long_fails),
	    cmocka_unit_test(test_ws_7_5_1_close_reason_invalid_utf8_fails),
	    cmocka_unit_test(test_ws_7_7_valid_close_codes_are_echoed),
	    cmocka_unit_test(test_ws_7_9_invalid_close_codes_fail),
	    cmocka_unit_test(test_ws_9_1_message_at_cap_is_delivered),
	    cmocka_unit_test(test_ws_9_x_message_over_cap_fails_from_header),
	    cmocka_unit_test(test_ws_9_3_fragmented_64k_in_many_fragment_sizes),
	    cmocka_unit_test(test_ws_fragment_count_is_capped),
	    cmocka_unit_test(test_ws_9_7_many_small_messages),
	    cmocka_unit_test(test_ws_unmasked_client_frame_is_protocol_error),
	    cmocka_unit_test(test_ws_length_encodings),
	    cmocka_unit_test(test_ws_close_from_callback_drops_later_messages),
	    cmocka_unit_test(test_ws_message_callback_abort_stops_feed),
	    cmocka_unit_test(test_ws_close_sends_once_with_truncated_reason),
	    cmocka_unit_test(test_ws_single_frame_is_delivered_without_copy),
	    cmocka_unit_test(test_ws_idle_engine_holds_no_big_buffer),
	    cmocka_unit_test(test_ws_deflate_rfc7692_samples),
	    cmocka_unit_test(test_ws_deflate_mixed_and_interleaved),
	    cmocka_unit_test(test_ws_deflate_rsv1_misuse_is_protocol_error),
	    cmocka_unit_test(test_ws_deflate_invalid_data_is_1007),
	    cmocka_unit_test(test_ws_deflate_text_is_validated_after_inflating),
	    cmocka_unit_test(test_ws_deflate_inflation_past_cap_is_1009),
	    cmocka_unit_test(test_ws_deflate_idle_engine_holds_no_inflater),
	    cmocka_unit_test(test_ws_deflate_12_x_sizes_and_fragments),
	    cmocka_unit_test(test_ws_deflate_13_x_client_windows),
	    cmocka_unit_test(test_ws_deflate_server_compressor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
