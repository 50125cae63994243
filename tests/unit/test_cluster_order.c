/* tests/unit/test_cluster_order.c — per-room ordering of cluster events */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/cluster_order.h"

#define ROOM 7

static int
setup(void **state)
{
	*state = cluster_order_new(NULL);
	cluster_order_room_set(*state, ROOM, 0);
	return 0;
}

static int
teardown(void **state)
{
	cluster_order_free(*state);
	return 0;
}

/* Feeds an event with a payload naming its seq; returns the verdict. */
static enum cluster_order_verdict
feed(struct cluster_order *o, int64_t prev, int64_t seq, int64_t *fill)
{
	char p[24];
	int n = snprintf(p, sizeof(p), "e%lld", (long long)seq);

	return cluster_order_event(o, ROOM, prev, seq, p, n, 0, fill);
}

/* Asserts that the next drained event is seq, with its payload. */
static void
assert_next(struct cluster_order *o, int64_t want)
{
	int64_t seq;
	const uint8_t *p;
	size_t len;
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "e%lld", (long long)want);

	assert_int_equal(cluster_order_next(o, ROOM, &seq, &p, &len), 1);
	assert_int_equal(seq, want);
	assert_int_equal(len, n);
	assert_memory_equal(p, buf, n);
}

/* Asserts that nothing can be drained. */
static void
assert_no_next(struct cluster_order *o)
{
	int64_t seq;
	const uint8_t *p;
	size_t len;

	assert_int_equal(cluster_order_next(o, ROOM, &seq, &p, &len), 0);
}

static void
test_cluster_order_delivers_in_order_events_at_once(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill;

	assert_int_equal(feed(o, 0, 3, &fill), CLUSTER_ORDER_DELIVER);
	assert_int_equal(fill, -1);
	assert_no_next(o);
	/* The chain is the room's: seqs of other rooms lie between. */
	assert_int_equal(feed(o, 3, 10, &fill), CLUSTER_ORDER_DELIVER);
	assert_int_equal(cluster_order_last(o, ROOM), 10);
	assert_int_equal(cluster_order_stats(o)->delivered, 2);
}

static void
test_cluster_order_drops_duplicates_and_own_echoes(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill;

	assert_int_equal(feed(o, 0, 1, &fill), CLUSTER_ORDER_DELIVER);
	assert_int_equal(feed(o, 0, 1, &fill), CLUSTER_ORDER_DROP);
	assert_int_equal(feed(o, 1, 2, &fill), CLUSTER_ORDER_DELIVER);
	assert_int_equal(feed(o, 0, 1, &fill), CLUSTER_ORDER_DROP);
	assert_int_equal(fill, -1);
	/* Invalid (seq not above prev): dropped too. */
	assert_int_equal(feed(o, 5, 5, &fill), CLUSTER_ORDER_DROP);
	assert_int_equal(cluster_order_stats(o)->drops, 3);
	assert_int_equal(cluster_order_last(o, ROOM), 2);
}

static void
test_cluster_order_follows_a_position_off_the_chain(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill;

	/* The hub says 5 is delivered; the room's events are 3 and 8. */
	cluster_order_room_set(o, ROOM, 5);
	assert_int_equal(feed(o, 3, 8, &fill), CLUSTER_ORDER_DELIVER);
	/* room_set never moves a room back. */
	cluster_order_room_set(o, ROOM, 2);
	assert_int_equal(cluster_order_last(o, ROOM), 8);
}

static void
test_cluster_order_holds_a_gap_and_asks_for_one_fill(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill;

	assert_int_equal(feed(o, 0, 1, &fill), CLUSTER_ORDER_DELIVER);
	assert_int_equal(feed(o, 2, 3, &fill), CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, 1);
	assert_true(cluster_order_filling(o, ROOM));
	assert_int_equal(feed(o, 3, 4, &fill), CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, -1); /* one fill per gap */
	/* Even the missing event waits for the fill now. */
	assert_int_equal(feed(o, 1, 2, &fill), CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, -1);
	assert_no_next(o);
	assert_int_equal(cluster_order_last(o, ROOM), 1);
	/* The fill read and delivered 2..3 from the database. */
	assert_int_equal(cluster_order_filled(o, ROOM, 3, 0), -1);
	assert_false(cluster_order_filling(o, ROOM));
	assert_next(o, 4);
	assert_no_next(o);
	assert_int_equal(cluster_order_last(o, ROOM), 4);
	assert_int_equal(cluster_order_stats(o)->held_events, 0);
	assert_int_equal(cluster_order_stats(o)->held_bytes, 0);
	assert_int_equal(cluster_order_stats(o)->gaps, 1);
	assert_int_equal(cluster_order_stats(o)->fills, 1);
	assert_int_equal(feed(o, 4, 5, &fill), CLUSTER_ORDER_DELIVER);
}

static void
test_cluster_order_drains_held_events_after_the_missing_one(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill;

	assert_int_equal(feed(o, 2, 3, &fill), CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, 0);
	assert_int_equal(feed(o, 3, 4, &fill), CLUSTER_ORDER_HOLD);
	assert_int_equal(feed(o, 3, 4, &fill), CLUSTER_ORDER_DROP);
	/* The fill found only 1..2 (3 and 4 not yet visible to it). */
	assert_int_equal(cluster_order_filled(o, ROOM, 2, 0), -1);
	assert_next(o, 3);
	assert_next(o, 4);
	assert_no_next(o);
}

static void
test_cluster_order_head_opens_a_gap(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill;

	assert_int_equal(feed(o, 0, 4, &fill), CLUSTER_ORDER_DELIVER);
	assert_int_equal(cluster_order_head(o, ROOM, 4, 0, &fill),
	                 CLUSTER_ORDER_DROP);
	assert_int_equal(fill, -1);
	assert_int_equal(cluster_order_head(o, ROOM, 9, 0, &fill),
	                 CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, 4);
	assert_int_equal(cluster_order_head(o, ROOM, 12, 0, &fill),
	                 CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, -1);
	/* A fill that reached 9 only: progress, so ask again at once. */
	assert_int_equal(cluster_order_filled(o, ROOM, 9, 0), 9);
	assert_int_equal(cluster_order_filled(o, ROOM, 12, 0), -1);
	assert_false(cluster_order_filling(o, ROOM));
	assert_int_equal(cluster_order_head(o, 99, 3, 0, &fill),
	                 CLUSTER_ORDER_UNKNOWN);
}

static void
test_cluster_order_unknown_rooms_are_left_to_the_caller(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill, seq;
	const uint8_t *p;
	size_t len;

	assert_int_equal(cluster_order_event(o, 8, 0, 1, "x", 1, 0, &fill),
	                 CLUSTER_ORDER_UNKNOWN);
	assert_int_equal(cluster_order_last(o, 8), -1);
	assert_int_equal(cluster_order_next(o, 8, &seq, &p, &len), 0);
	assert_int_equal(cluster_order_filled(o, 8, 5, 0), -1);
	assert_int_equal(cluster_order_refill(o, 8, 0), -1);
	cluster_order_room_set(o, 8, 0);
	assert_int_equal(cluster_order_event(o, 8, 0, 1, "x", 1, 0, &fill),
	                 CLUSTER_ORDER_DELIVER);
	cluster_order_room_forget(o, 8);
	cluster_order_room_forget(o, 8);
	assert_int_equal(cluster_order_last(o, 8), -1);
	assert_int_equal(cluster_order_stats(o)->rooms, 1);
}

static void
test_cluster_order_refill_holds_what_arrives_meanwhile(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill;

	assert_int_equal(feed(o, 0, 1, &fill), CLUSTER_ORDER_DELIVER);
	/* Redis came back: catch up every room. */
	assert_int_equal(cluster_order_refill(o, ROOM, 0), 1);
	assert_int_equal(cluster_order_refill(o, ROOM, 0), -1);
	/* 2 follows 1 but the running read will deliver it: held. */
	assert_int_equal(feed(o, 1, 2, &fill), CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, -1);
	assert_no_next(o);
	assert_int_equal(cluster_order_filled(o, ROOM, 2, 0), -1);
	assert_no_next(o);
	assert_int_equal(cluster_order_last(o, ROOM), 2);
	assert_int_equal(cluster_order_stats(o)->held_events, 0);
}

static void
test_cluster_order_expired_retries_lost_fills(void **state)
{
	struct cluster_order *o = *state;
	int64_t fill, rooms[4];

	cluster_order_room_set(o, 8, 0);
	assert_int_equal(
	    cluster_order_event(o, ROOM, 1, 2, "e2", 2, 1000, &fill),
	    CLUSTER_ORDER_HOLD);
	assert_int_equal(cluster_order_event(o, 8, 3, 4, "b", 1, 3000, &fill),
	                 CLUSTER_ORDER_HOLD);
	assert_int_equal(cluster_order_expired(o, 5999, rooms, 4), 0);
	assert_int_equal(cluster_order_expired(o, 6000, rooms, 4), 1);
	assert_int_equal(rooms[0], ROOM);
	/* Its timer restarted. */
	assert_int_equal(cluster_order_expired(o, 8000, rooms, 4), 1);
	assert_int_equal(rooms[0], 8);
	assert_int_equal(cluster_order_expired(o, 11000, rooms, 1), 1);
	assert_int_equal(cluster_order_stats(o)->retries, 3);
	/* A fill that found nothing new stays outstanding (no hot loop)
	 * and is retried after the timeout. */
	assert_int_equal(cluster_order_filled(o, ROOM, 0, 20000), -1);
	assert_true(cluster_order_filling(o, ROOM));
	assert_int_equal(cluster_order_expired(o, 24999, rooms, 4), 1);
	assert_int_equal(rooms[0], 8);
	assert_int_equal(cluster_order_expired(o, 25000, rooms, 4), 1);
	assert_int_equal(rooms[0], ROOM);
	assert_int_equal(cluster_order_filled(o, ROOM, 1, 25000), -1);
	assert_next(o, 2);
	assert_false(cluster_order_filling(o, ROOM));
}

static void
test_cluster_order_overflow_discards_and_leaves_it_to_the_fill(void **state)
{
	struct cluster_order_limits lim = {.room_events = 3,
	                                   .room_bytes = 1000,
	                                   .total_events = 5,
	                                   .total_bytes = 12,
	                                   .gap_timeout_ms = 100};
	struct cluster_order *o = cluster_order_new(&lim);
	const struct cluster_order_stats *st = cluster_order_stats(o);
	int64_t fill;

	(void)state;
	cluster_order_room_set(o, 1, 0);
	cluster_order_room_set(o, 2, 0);
	/* Room 1: 3 held, the 4th passes the room's bound. */
	for (int s = 2; s <= 4; s++)
		assert_int_equal(
		    cluster_order_event(o, 1, s - 1, s, "ab", 2, 0, &fill),
		    CLUSTER_ORDER_HOLD);
	assert_int_equal(st->held_events, 3);
	assert_int_equal(cluster_order_event(o, 1, 4, 5, "ab", 2, 0, &fill),
	                 CLUSTER_ORDER_HOLD);
	assert_int_equal(fill, -1);
	assert_int_equal(st->held_events, 0);
	assert_int_equal(st->overflows, 4);
	/* Room 2: the total bytes bound (12) lets 6 bytes in, then 2 + 6
	 * more of room 1 pass it. */
	assert_int_equal(cluster_order_event(o, 2, 1, 2, "abcdef", 6, 0, &fill),
	                 CLUSTER_ORDER_HOLD);
	assert_int_equal(cluster_order_event(o, 1, 5, 6, "ab", 2, 0, &fill),
	                 CLUSTER_ORDER_HOLD);
	assert_int_equal(st->held_bytes, 8);
	assert_int_equal(cluster_order_event(o, 1, 6, 7, "abcde", 5, 0, &fill),
	                 CLUSTER_ORDER_HOLD);
	assert_int_equal(st->held_bytes, 6);
	assert_int_equal(st->overflows, 6);
	/* Room 1's fill found 1..5 only: progress, and 6..7 are still
	 * missing (discarded), so it asks again from 5. */
	assert_int_equal(cluster_order_filled(o, 1, 5, 0), 5);
	assert_int_equal(cluster_order_filled(o, 1, 7, 0), -1);
	assert_int_equal(cluster_order_last(o, 1), 7);
	assert_int_equal(cluster_order_event(o, 1, 7, 8, "x", 1, 0, &fill),
	                 CLUSTER_ORDER_DELIVER);
	cluster_order_free(o);
}

/* A node's view in the model tests: a chain of events in one room, a
 * database holding them, and fills the node runs when the model says. */
#define MAXEV 9

struct sim {
	struct cluster_order *o;
	int64_t prev[MAXEV], seq[MAXEV];
	int n;
	int db_upto;            /* events 0..db_upto-1 are in the database */
	int64_t log[4 * MAXEV]; /* delivered, in order */
	int nlog;
	int fills_pending;
};

/* Records a delivery; asserts strictly increasing seqs. */
static void
sim_deliver(struct sim *s, int64_t seq)
{
	assert_true(s->nlog == 0 || s->log[s->nlog - 1] < seq);
	assert_true(s->nlog < 4 * MAXEV);
	s->log[s->nlog++] = seq;
}

/* Drains what now follows. */
static void
sim_drain(struct sim *s)
{
	int64_t seq;
	const uint8_t *p;
	size_t len;

	while (cluster_order_next(s->o, ROOM, &seq, &p, &len) == 1) {
		assert_int_equal(len, sizeof(seq));
		assert_memory_equal(p, &seq, sizeof(seq));
		sim_deliver(s, seq);
	}
}

/* Runs one fill as the caller would: rows past last, then filled. */
static void
sim_fill(struct sim *s)
{
	int64_t last = cluster_order_last(s->o, ROOM), upto = last, again;

	for (int i = 0; i < s->db_upto; i++) {
		if (s->seq[i] <= last)
			continue;
		sim_deliver(s, s->seq[i]);
		upto = s->seq[i];
	}
	s->fills_pending--;
	again = cluster_order_filled(s->o, ROOM, upto, 0);
	sim_drain(s);
	if (again >= 0) {
		assert_int_equal(again, cluster_order_last(s->o, ROOM));
		s->fills_pending++;
	}
}

/* Event i arrives (from Redis, or as the node's own commit). */
static void
sim_event(struct sim *s, int i)
{
	int64_t fill;
	enum cluster_order_verdict v;

	/* An event is in the database before anyone hears of it. */
	if (s->db_upto < i + 1)
		s->db_upto = i + 1;
	v = cluster_order_event(s->o, ROOM, s->prev[i], s->seq[i], &s->seq[i],
	                        sizeof(s->seq[i]), 0, &fill);
	assert_int_not_equal(v, CLUSTER_ORDER_UNKNOWN);
	if (v == CLUSTER_ORDER_DELIVER) {
		sim_deliver(s, s->seq[i]);
		sim_drain(s);
	}
	if (fill >= 0)
		s->fills_pending++;
}

/* Runs fills (and retries of stalled ones) until nothing is missing. */
static void
sim_finish(struct sim *s)
{
	int64_t rooms[2], now = 0;

	for (int round = 0; round < 100; round++) {
		while (s->fills_pending > 0)
			sim_fill(s);
		if (!cluster_order_filling(s->o, ROOM))
			break;
		now += 100000;
		s->fills_pending += cluster_order_expired(s->o, now, rooms, 2);
	}
	assert_false(cluster_order_filling(s->o, ROOM));
	assert_int_equal(s->nlog, s->n);
	for (int i = 0; i < s->n; i++)
		assert_int_equal(s->log[i], s->seq[i]);
	assert_int_equal(cluster_order_stats(s->o)->held_events, 0);
}

/* A chain of n events with gaps in the seqs (other rooms' changes). */
static void
sim_init(struct sim *s, int n, const struct cluster_order_limits *lim)
{
	memset(s, 0, sizeof(*s));
	s->o = cluster_order_new(lim);
	s->n = n;
	cluster_order_room_set(s->o, ROOM, 0);
	for (int i = 0; i < n; i++) {
		s->prev[i] = i ? s->seq[i - 1] : 0;
		s->seq[i] = 3 * i + 1 + (i % 2);
	}
}

/* Next permutation of a[0..n-1] in lexicographic order; 0 after last. */
static int
next_perm(int *a, int n)
{
	int i = n - 2, j = n - 1, t;

	while (i >= 0 && a[i] >= a[i + 1])
		i--;
	if (i < 0)
		return 0;
	while (a[j] <= a[i])
		j--;
	t = a[i], a[i] = a[j], a[j] = t;
	for (i++, j = n - 1; i < j; i++, j--)
		t = a[i], a[i] = a[j], a[j] = t;
	return 1;
}

/* Every arrival order of 6 events, each also arriving a second time
 * (a duplicate) right after, or never: with fills run at once, after
 * every other arrival, or only at the end; and with tight bounds. */
static void
test_cluster_order_every_arrival_order_delivers_the_chain(void **state)
{
	struct cluster_order_limits tight = {.room_events = 2,
	                                     .room_bytes = 1 << 20,
	                                     .total_events = 2,
	                                     .total_bytes = 1 << 20,
	                                     .gap_timeout_ms = 1};
	int a[6] = {0, 1, 2, 3, 4, 5}, runs = 0;

	(void)state;
	do {
		for (int mode = 0; mode < 3; mode++) {
			for (int dup = 0; dup < 2; dup++) {
				for (int t = 0; t < 2; t++) {
					struct sim s;

					sim_init(&s, 6, t ? &tight : NULL);
					for (int k = 0; k < 6; k++) {
						sim_event(&s, a[k]);
						if (dup)
							sim_event(&s, a[k]);
						if (mode == 0 ||
						    (mode == 1 && k % 2))
							while (s.fills_pending)
								sim_fill(&s);
					}
					sim_finish(&s);
					cluster_order_free(s.o);
					runs++;
				}
			}
		}
	} while (next_perm(a, 6));
	assert_int_equal(runs, 720 * 12);
}

/* Three nodes publish a room's 9 events, 3 each, round robin in commit
 * order (each node's own in order: Redis keeps a publisher's order). The
 * node under test is node 0: it sees its own commits at commit time and
 * their echoes later, interleaved with the others' in every way. */
static void
test_cluster_order_three_publishers_interleaved(void **state)
{
	int runs = 0;

	(void)state;
	/* An interleaving: which publisher's next message comes at each of
	 * the 12 steps (node 0 sends 6: 3 commits and 3 echoes). */
	int pick[12], cnt[3];

	for (uint32_t code = 0; code < (1u << 24); code++) {
		int ok = 1;

		cnt[0] = cnt[1] = cnt[2] = 0;
		for (int k = 0; k < 12 && ok; k++) {
			pick[k] = (code >> (2 * k)) & 3;
			if (pick[k] == 3)
				ok = 0;
			else if (++cnt[pick[k]] > (pick[k] == 0 ? 6 : 3))
				ok = 0;
		}
		if (!ok)
			continue;
		/* Node 0's own message j (0..5) is commit j/2 when even,
		 * the echo of commit j/2 when odd: echoes after commits. */
		struct sim s;
		int next[3] = {0, 0, 0};

		sim_init(&s, 9, NULL);
		for (int k = 0; k < 12; k++) {
			int p = pick[k], j = next[p]++;
			int ev = p == 0 ? 3 * (j / 2) : 3 * j + p;

			sim_event(&s, ev);
			if (k % 3 == 2)
				while (s.fills_pending)
					sim_fill(&s);
		}
		sim_finish(&s);
		cluster_order_free(s.o);
		runs++;
	}
	assert_int_equal(runs, 12 * 11 * 10 * 9 * 8 * 7 / (6 * 5 * 4 * 3 * 2) *
	                           (6 * 5 * 4 / 6));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_delivers_in_order_events_at_once, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_drops_duplicates_and_own_echoes, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_follows_a_position_off_the_chain, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_holds_a_gap_and_asks_for_one_fill, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_drains_held_events_after_the_missing_one,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cluster_order_head_opens_a_gap,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_unknown_rooms_are_left_to_the_caller, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_refill_holds_what_arrives_meanwhile, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_cluster_order_expired_retries_lost_fills, setup, teardown),
	    cmocka_unit_test(
	        test_cluster_order_overflow_discards_and_leaves_it_to_the_fill),
	    cmocka_unit_test(
	        test_cluster_order_every_arrival_order_delivers_the_chain),
	    cmocka_unit_test(test_cluster_order_three_publishers_interleaved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
