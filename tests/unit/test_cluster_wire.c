/* tests/unit/test_cluster_wire.c — the codec of messages between nodes */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/cluster_wire.h"

static const uint8_t frame[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o', 0x00};
static const int64_t users[] = {1, 2, 300, INT64_MAX, 0};
static const uint8_t hash[CLUSTER_WIRE_HASH_LEN] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 0xff};

#define NODE(m) .node = m, .node_len = sizeof(m) - 1

/* One valid message of every kind, some with extreme values. */
static const struct cluster_wire_msg samples[] = {
    {.kind = CLUSTER_WIRE_EVENT,
     NODE("n1"),
     .room_id = 7,
     .prev_seq = 0,
     .seq = 1,
     .payload = frame,
     .payload_len = sizeof(frame)},
    {.kind = CLUSTER_WIRE_EVENT,
     NODE("host.example:8080"),
     .room_id = INT64_MAX,
     .prev_seq = INT64_MAX - 1,
     .seq = INT64_MAX,
     .payload = frame,
     .payload_len = 0},
    {.kind = CLUSTER_WIRE_HEAD, NODE("n2"), .room_id = 3, .seq = 1234567},
    {.kind = CLUSTER_WIRE_EPHEMERAL,
     NODE("n3"),
     .room_id = 3,
     .user_id = 9,
     .payload = frame,
     .payload_len = sizeof(frame)},
    {.kind = CLUSTER_WIRE_PRESENCE, NODE("n"), .user_id = 128, .online = 1},
    {.kind = CLUSTER_WIRE_PRESENCE, NODE("n"), .user_id = 0, .online = 0},
    {.kind = CLUSTER_WIRE_HEARTBEAT,
     NODE("n"),
     .ttl_ms = 15000,
     .round = 42,
     .part = 1,
     .parts = 3,
     .users_in = users,
     .n_users = 5},
    {.kind = CLUSTER_WIRE_HEARTBEAT,
     NODE("n"),
     .ttl_ms = 1,
     .round = 0,
     .part = 0,
     .parts = 1,
     .n_users = 0},
    {.kind = CLUSTER_WIRE_LOGOUT, NODE("n"), .token_hash = hash},
    {.kind = CLUSTER_WIRE_USER_GONE, NODE("n"), .user_id = 16384},
    {.kind = CLUSTER_WIRE_KICK, NODE("n"), .room_id = 5, .user_id = 6},
    {.kind = CLUSTER_WIRE_JOIN, NODE("n"), .room_id = 7, .user_id = 8},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

/* Asserts that a and b (b decoded) carry the same message. */
static void
assert_same(const struct cluster_wire_msg *a, const struct cluster_wire_msg *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->node_len, b->node_len);
	assert_memory_equal(a->node, b->node, a->node_len);
	assert_int_equal(a->room_id, b->room_id);
	assert_int_equal(a->prev_seq, b->prev_seq);
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->payload_len, b->payload_len);
	if (a->payload_len)
		assert_memory_equal(a->payload, b->payload, a->payload_len);
	assert_int_equal(a->online, b->online);
	if (a->kind == CLUSTER_WIRE_LOGOUT)
		assert_memory_equal(a->token_hash, b->token_hash,
		                    CLUSTER_WIRE_HASH_LEN);
	if (a->kind == CLUSTER_WIRE_EPHEMERAL || a->kind == CLUSTER_WIRE_KICK ||
	    a->kind == CLUSTER_WIRE_JOIN ||
	    a->kind == CLUSTER_WIRE_PRESENCE ||
	    a->kind == CLUSTER_WIRE_USER_GONE)
		assert_int_equal(a->user_id, b->user_id);
	assert_int_equal(a->ttl_ms, b->ttl_ms);
	assert_int_equal(a->round, b->round);
	assert_int_equal(a->part, b->part);
	assert_int_equal(a->parts, b->parts);
	assert_int_equal(a->n_users, b->n_users);
	for (size_t i = 0; i < a->n_users; i++)
		assert_int_equal(a->users_in[i], cluster_wire_user(b, i));
}

/* Encodes m into a malloc'd buffer, asserting it is valid. */
static uint8_t *
encode(const struct cluster_wire_msg *m, size_t *len)
{
	uint8_t *buf = cluster_wire_encode_alloc(m, len);

	assert_non_null(buf);
	assert_true(*len <= cluster_wire_size(m));
	return buf;
}

static void
test_cluster_wire_round_trips_every_kind(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		struct cluster_wire_msg d;
		size_t len;
		uint8_t *buf = encode(&samples[i], &len);

		assert_int_equal(cluster_wire_decode(&d, buf, len), 0);
		assert_same(&samples[i], &d);
		assert_true(d.node >= (const char *)buf &&
		            d.node < (const char *)buf + len);
		free(buf);
	}
}

static void
test_cluster_wire_encodes_compactly(void **state)
{
	struct cluster_wire_msg m = {
	    .kind = CLUSTER_WIRE_HEAD, NODE("n1"), .room_id = 5, .seq = 300};
	static const uint8_t want[] = {1, 2, 2, 'n', '1', 5, 0xac, 0x02};
	uint8_t buf[64];

	(void)state;
	assert_int_equal(cluster_wire_encode(&m, buf, sizeof(buf)),
	                 sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	/* One byte short of the room it needs: refused, not cut. */
	assert_int_equal(cluster_wire_encode(&m, buf, sizeof(want) - 1), -1);
	assert_string_equal(cluster_wire_kind_name(CLUSTER_WIRE_HEAD), "head");
	assert_string_equal(cluster_wire_kind_name(99), "?");
}

static void
test_cluster_wire_carries_a_large_binary_payload(void **state)
{
	size_t n = 3u << 20, len;
	uint8_t *p = malloc(n), *buf;
	struct cluster_wire_msg m = {.kind = CLUSTER_WIRE_EVENT,
	                             NODE("n"),
	                             .room_id = 1,
	                             .prev_seq = 10,
	                             .seq = 11,
	                             .payload = p,
	                             .payload_len = n},
	                        d;

	(void)state;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + 7);
	buf = encode(&m, &len);
	assert_int_equal(cluster_wire_decode(&d, buf, len), 0);
	assert_int_equal(d.payload_len, n);
	assert_memory_equal(d.payload, p, n);
	free(buf);
	free(p);
}

static void
test_cluster_wire_rejects_every_truncation_and_extension(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		struct cluster_wire_msg d;
		size_t len;
		uint8_t *buf = encode(&samples[i], &len), *cut;

		/* Each prefix in a buffer of exactly its size: ASan catches
		 * any read past it. */
		for (size_t n = 0; n < len; n++) {
			cut = malloc(n ? n : 1);
			memcpy(cut, buf, n);
			assert_int_equal(cluster_wire_decode(&d, cut, n), -1);
			assert_int_equal(d.kind, 0);
			free(cut);
		}
		cut = malloc(len + 1);
		memcpy(cut, buf, len);
		cut[len] = 0;
		assert_int_equal(cluster_wire_decode(&d, cut, len + 1), -1);
		free(cut);
		free(buf);
	}
	assert_int_equal(
	    cluster_wire_decode(&(struct cluster_wire_msg){0}, NULL, 0), -1);
}

/* Every byte of every sample changed to every value: the result is
 * rejected, or it is a valid message whose encoding is those very bytes
 * (the encoding is canonical: one message, one encoding). */
static void
test_cluster_wire_corruption_is_rejected_or_canonical(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		size_t len;
		uint8_t *buf = encode(&samples[i], &len);
		uint8_t *bad = malloc(len), *again;

		for (size_t k = 0; k < len; k++) {
			for (int v = 0; v < 256; v++) {
				struct cluster_wire_msg d;
				size_t n;

				if (v == buf[k])
					continue;
				memcpy(bad, buf, len);
				bad[k] = v;
				if (cluster_wire_decode(&d, bad, len) < 0)
					continue;
				again = cluster_wire_encode_alloc(&d, &n);
				assert_non_null(again);
				assert_int_equal(n, len);
				assert_memory_equal(again, bad, len);
				free(again);
			}
		}
		free(bad);
		free(buf);
	}
}

/* Asserts that the bytes do not decode. */
static void
reject(const uint8_t *b, size_t n)
{
	struct cluster_wire_msg d;
	uint8_t *copy = malloc(n);

	memcpy(copy, b, n);
	assert_int_equal(cluster_wire_decode(&d, copy, n), -1);
	free(copy);
}

/* Asserts that the bytes decode. */
static void
accept(const uint8_t *b, size_t n)
{
	struct cluster_wire_msg d;

	assert_int_equal(cluster_wire_decode(&d, b, n), 0);
}

#define REJECT(...)                                                            \
	reject((const uint8_t[]){__VA_ARGS__},                                 \
	       sizeof((const uint8_t[]){__VA_ARGS__}))
#define ACCEPT(...)                                                            \
	accept((const uint8_t[]){__VA_ARGS__},                                 \
	       sizeof((const uint8_t[]){__VA_ARGS__}))

static void
test_cluster_wire_rejects_malformed_fields(void **state)
{
	(void)state;
	ACCEPT(1, 7, 1, 'n', 5);          /* USER_GONE 5 */
	REJECT(2, 7, 1, 'n', 5);          /* version */
	REJECT(1, 0, 1, 'n', 5);          /* kind 0 */
	REJECT(1, 9, 1, 'n', 5);          /* kind past the last */
	REJECT(1, 7, 0, 5);               /* empty node */
	REJECT(1, 7, 2, 'n', 5);          /* node longer than the rest */
	REJECT(1, 7, 1, 'n', 0x85, 0x00); /* varint not minimal */
	REJECT(1, 7, 1, 'n', 0x80);       /* varint cut */
	ACCEPT(1, 7, 1, 'n', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	       0x7f); /* INT64_MAX */
	REJECT(1, 7, 1, 'n', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	       0xff, 0x01); /* past INT64_MAX */
	/* EVENT: seq must be above prev_seq. */
	ACCEPT(1, 1, 1, 'n', 1, 4, 5, 0);
	REJECT(1, 1, 1, 'n', 1, 5, 5, 0);
	REJECT(1, 1, 1, 'n', 1, 6, 5, 0);
	/* EVENT: payload length past the end, or past the maximum. */
	REJECT(1, 1, 1, 'n', 1, 4, 5, 2, 'x');
	REJECT(1, 1, 1, 'n', 1, 4, 5, 0x81, 0x80, 0x80, 0x08);
	/* PRESENCE: online is 0 or 1. */
	ACCEPT(1, 4, 1, 'n', 3, 1);
	REJECT(1, 4, 1, 'n', 3, 2);
	/* HEARTBEAT: ttl 1.., part < parts, count 0 only alone. */
	ACCEPT(1, 5, 1, 'n', 10, 0, 0, 1, 0);
	REJECT(1, 5, 1, 'n', 0, 0, 0, 1, 0);
	REJECT(1, 5, 1, 'n', 10, 0, 1, 1, 0);
	REJECT(1, 5, 1, 'n', 10, 0, 0, 0, 0);
	REJECT(1, 5, 1, 'n', 10, 0, 0, 2, 0);
	ACCEPT(1, 5, 1, 'n', 10, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 9);
	REJECT(1, 5, 1, 'n', 10, 0, 0, 2, 1, 0x80, 0, 0, 0, 0, 0, 0, 9);
	REJECT(1, 5, 1, 'n', 10, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 9);
	/* count over CLUSTER_WIRE_HEARTBEAT_USERS (1025 = 0x81 0x08) */
	REJECT(1, 5, 1, 'n', 10, 0, 0, 1, 0x81, 0x08);
	/* LOGOUT: exactly 32 bytes of hash. */
	REJECT(1, 6, 1, 'n', 1, 2, 3);
}

static void
test_cluster_wire_refuses_to_encode_invalid_messages(void **state)
{
	static const int64_t neg[] = {-1};
	char node[CLUSTER_WIRE_NODE_MAX + 1];
	const struct cluster_wire_msg bad[] = {
	    {.kind = CLUSTER_WIRE_HEAD, .node = "n", .node_len = 0},
	    {.kind = CLUSTER_WIRE_HEAD, .node = node, .node_len = sizeof(node)},
	    {.kind = 0, NODE("n")},
	    {.kind = CLUSTER_WIRE_EVENT, NODE("n"), .prev_seq = 3, .seq = 3},
	    {.kind = CLUSTER_WIRE_EVENT, NODE("n"), .room_id = -1, .seq = 3},
	    {.kind = CLUSTER_WIRE_EVENT,
	     NODE("n"),
	     .seq = 3,
	     .payload_len = CLUSTER_WIRE_PAYLOAD_MAX + 1,
	     .payload = frame},
	    {.kind = CLUSTER_WIRE_PRESENCE, NODE("n"), .online = 2},
	    {.kind = CLUSTER_WIRE_HEARTBEAT,
	     NODE("n"),
	     .ttl_ms = 0,
	     .parts = 1},
	    {.kind = CLUSTER_WIRE_HEARTBEAT,
	     NODE("n"),
	     .ttl_ms = 5,
	     .parts = 1,
	     .users_in = neg,
	     .n_users = 1},
	    {.kind = CLUSTER_WIRE_HEARTBEAT,
	     NODE("n"),
	     .ttl_ms = 5,
	     .parts = 2,
	     .part = 2,
	     .users_in = users,
	     .n_users = 1},
	    {.kind = CLUSTER_WIRE_HEARTBEAT,
	     NODE("n"),
	     .ttl_ms = 5,
	     .parts = 1,
	     .users_in = users,
	     .n_users = CLUSTER_WIRE_HEARTBEAT_USERS + 1},
	    {.kind = CLUSTER_WIRE_LOGOUT, NODE("n")},
	    {.kind = CLUSTER_WIRE_USER_GONE, NODE("n"), .user_id = -5},
	};
	uint8_t buf[256];
	size_t len;

	(void)state;
	memset(node, 'x', sizeof(node));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cluster_wire_size(&bad[i]), 0);
		assert_int_equal(cluster_wire_encode(&bad[i], buf, sizeof(buf)),
		                 -1);
		assert_null(cluster_wire_encode_alloc(&bad[i], &len));
	}
}

static void
test_cluster_wire_heartbeat_holds_the_maximum_users(void **state)
{
	int64_t *u = malloc(CLUSTER_WIRE_HEARTBEAT_USERS * sizeof(*u));
	struct cluster_wire_msg m = {.kind = CLUSTER_WIRE_HEARTBEAT,
	                             NODE("node-with-a-name"),
	                             .ttl_ms = 30000,
	                             .round = 1 << 20,
	                             .part = CLUSTER_WIRE_HEARTBEAT_PARTS - 1,
	                             .parts = CLUSTER_WIRE_HEARTBEAT_PARTS,
	                             .users_in = u,
	                             .n_users = CLUSTER_WIRE_HEARTBEAT_USERS},
	                        d;
	size_t len;
	uint8_t *buf;

	(void)state;
	for (int i = 0; i < CLUSTER_WIRE_HEARTBEAT_USERS; i++)
		u[i] = (int64_t)i * 1000003;
	buf = encode(&m, &len);
	assert_int_equal(cluster_wire_decode(&d, buf, len), 0);
	assert_same(&m, &d);
	free(buf);
	free(u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cluster_wire_round_trips_every_kind),
	    cmocka_unit_test(test_cluster_wire_encodes_compactly),
	    cmocka_unit_test(test_cluster_wire_carries_a_large_binary_payload),
	    cmocka_unit_test(
	        test_cluster_wire_rejects_every_truncation_and_extension),
	    cmocka_unit_test(
	        test_cluster_wire_corruption_is_rejected_or_canonical),
	    cmocka_unit_test(test_cluster_wire_rejects_malformed_fields),
	    cmocka_unit_test(
	        test_cluster_wire_refuses_to_encode_invalid_messages),
	    cmocka_unit_test(
	        test_cluster_wire_heartbeat_holds_the_maximum_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
