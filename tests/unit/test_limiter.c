/* tests/unit/test_limiter.c — token buckets: take, reserve and refund */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "chatd/limiter.h"

#define T0 1000000 /* any clock value but 0 (0 means "never used") */

/* 5 tokens, one a minute: the failed-login bucket of a username. */
static int
setup(void **state)
{
	*state = limiter_new(1.0 / 60, 5, 64);
	return 0;
}

static int
teardown(void **state)
{
	limiter_free(*state);
	return 0;
}

static void
test_limiter_take_stops_at_the_burst(void **state)
{
	struct limiter *l = *state;

	for (int i = 0; i < 5; i++)
		assert_int_equal(limiter_take(l, "alice", T0), 1);
	assert_int_equal(limiter_take(l, "alice", T0), 0);
	assert_int_equal(limiter_check(l, "alice", T0), 0);
	/* Other keys have their own bucket. */
	assert_int_equal(limiter_take(l, "bob", T0), 1);
}

static void
test_limiter_check_takes_nothing(void **state)
{
	struct limiter *l = *state;

	for (int i = 0; i < 10; i++)
		assert_int_equal(limiter_check(l, "alice", T0), 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(limiter_take(l, "alice", T0), 1);
	assert_int_equal(limiter_take(l, "alice", T0), 0);
}

static void
test_limiter_refund_gives_a_reservation_back(void **state)
{
	struct limiter *l = *state;

	for (int i = 0; i < 5; i++)
		assert_int_equal(limiter_take(l, "alice", T0), 1);
	limiter_refund(l, "alice", T0);
	assert_int_equal(limiter_take(l, "alice", T0), 1);
	assert_int_equal(limiter_take(l, "alice", T0), 0);
}

static void
test_limiter_refund_never_exceeds_the_burst(void **state)
{
	struct limiter *l = *state;

	for (int i = 0; i < 3; i++)
		limiter_refund(l, "alice", T0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(limiter_take(l, "alice", T0), 1);
	assert_int_equal(limiter_take(l, "alice", T0), 0);
}

static void
test_limiter_wait_ms_says_when_a_token_comes(void **state)
{
	struct limiter *l = *state;

	assert_int_equal(limiter_wait_ms(l, "alice", T0), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(limiter_take(l, "alice", T0), 1);
	/* One a minute. */
	assert_in_range(limiter_wait_ms(l, "alice", T0), 59999, 60001);
	assert_in_range(limiter_wait_ms(l, "alice", T0 + 30000), 29999, 30001);
	assert_int_equal(limiter_check(l, "alice", T0 + 59000), 0);
	assert_int_equal(limiter_wait_ms(l, "alice", T0 + 60000), 0);
	assert_int_equal(limiter_take(l, "alice", T0 + 60000), 1);
	assert_int_equal(limiter_take(l, "alice", T0 + 60000), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_limiter_take_stops_at_the_burst, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limiter_check_takes_nothing,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_limiter_refund_gives_a_reservation_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_limiter_refund_never_exceeds_the_burst, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_limiter_wait_ms_says_when_a_token_comes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
