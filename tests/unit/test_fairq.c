/* tests/unit/test_fairq.c — the bounded, per-key fair job queue */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/fairq.h"

/* Distinct items: addresses into this array. */
static int items[64];

static int
setup(void **state)
{
	*state = fairq_new(8, 3);
	return 0;
}

static int
teardown(void **state)
{
	fairq_free(*state);
	return 0;
}

static void
test_fairq_pops_one_key_in_order(void **state)
{
	struct fairq *q = *state;

	for (int i = 0; i < 3; i++)
		assert_int_equal(fairq_push(q, "a", &items[i]), 0);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(fairq_pop(q), &items[i]);
	assert_null(fairq_pop(q));
}

static void
test_fairq_refuses_a_key_over_its_share(void **state)
{
	struct fairq *q = *state;

	for (int i = 0; i < 3; i++)
		assert_int_equal(fairq_push(q, "a", &items[i]), 0);
	assert_int_equal(fairq_push(q, "a", &items[3]), FAIRQ_KEY_FULL);
	/* Another key still gets in. */
	assert_int_equal(fairq_push(q, "b", &items[4]), 0);
	assert_int_equal(fairq_key_held(q, "a"), 3);
	assert_int_equal(fairq_key_held(q, "b"), 1);
	assert_int_equal(fairq_key_held(q, "c"), 0);
}

static void
test_fairq_popped_items_count_until_done(void **state)
{
	struct fairq *q = *state;

	for (int i = 0; i < 3; i++)
		assert_int_equal(fairq_push(q, "a", &items[i]), 0);
	assert_ptr_equal(fairq_pop(q), &items[0]);
	/* Running, not done: a's share is still used up. */
	assert_int_equal(fairq_push(q, "a", &items[3]), FAIRQ_KEY_FULL);
	assert_int_equal(fairq_held(q), 3);
	fairq_done(q, "a");
	assert_int_equal(fairq_held(q), 2);
	assert_int_equal(fairq_push(q, "a", &items[3]), 0);
	assert_ptr_equal(fairq_pop(q), &items[1]);
	assert_ptr_equal(fairq_pop(q), &items[2]);
	assert_ptr_equal(fairq_pop(q), &items[3]);
	for (int i = 0; i < 3; i++)
		fairq_done(q, "a");
	assert_int_equal(fairq_held(q), 0);
	assert_int_equal(fairq_key_held(q, "a"), 0);
}

static void
test_fairq_refuses_everyone_when_full(void **state)
{
	struct fairq *q = *state;
	const char *keys[] = {"a", "b", "c"};
	int n = 0;

	/* 3 + 3 + 2: the 8 places. */
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 3 && n < 8; i++, n++)
			assert_int_equal(fairq_push(q, keys[k], &items[n]), 0);
	assert_int_equal(fairq_held(q), 8);
	assert_int_equal(fairq_push(q, "c", &items[n]), FAIRQ_FULL);
	assert_int_equal(fairq_push(q, "d", &items[n]), FAIRQ_FULL);
	/* A finished item frees a place for anyone. */
	assert_non_null(fairq_pop(q));
	fairq_done(q, "a");
	assert_int_equal(fairq_push(q, "d", &items[n]), 0);
}

static void
test_fairq_serves_keys_in_turn(void **state)
{
	struct fairq *q = *state;
	int *p;

	/* A flood from a, then one item each from b and c. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(fairq_push(q, "a", &items[i]), 0);
	assert_ptr_equal(fairq_pop(q), &items[0]);
	assert_int_equal(fairq_push(q, "b", &items[10]), 0);
	assert_int_equal(fairq_push(q, "c", &items[20]), 0);
	/* b and c each wait behind at most one more item of a. */
	p = fairq_pop(q);
	assert_true(p == &items[10] || p == &items[1]);
	if (p == &items[1])
		assert_ptr_equal(fairq_pop(q), &items[10]);
	assert_ptr_equal(fairq_pop(q), &items[20]);
	/* Then a's rest, in order. */
	p = fairq_pop(q);
	if (p == &items[1])
		p = fairq_pop(q);
	assert_ptr_equal(p, &items[2]);
	assert_null(fairq_pop(q));
}

static void
test_fairq_round_robin_interleaves_backlogs(void **state)
{
	struct fairq *q = *state;
	char seen[7];

	for (int i = 0; i < 3; i++) {
		assert_int_equal(fairq_push(q, "a", &items[i]), 0);
		assert_int_equal(fairq_push(q, "b", &items[10 + i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		int *p = fairq_pop(q);

		assert_non_null(p);
		seen[i] = p < &items[10] ? 'a' : 'b';
	}
	seen[6] = '\0';
	assert_string_equal(seen, "ababab");
}

static void
test_fairq_a_freed_key_starts_afresh(void **state)
{
	struct fairq *q = *state;

	for (int i = 0; i < 3; i++) {
		assert_int_equal(fairq_push(q, "a", &items[i]), 0);
		assert_ptr_equal(fairq_pop(q), &items[i]);
		fairq_done(q, "a");
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(fairq_push(q, "a", &items[i]), 0);
	assert_int_equal(fairq_push(q, "a", &items[3]), FAIRQ_KEY_FULL);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(fairq_pop(q), &items[i]);
}

static void
test_fairq_cuts_long_keys(void **state)
{
	struct fairq *q = *state;
	char k1[100], k2[100];

	memset(k1, 'x', sizeof k1 - 1);
	k1[sizeof k1 - 1] = '\0';
	memcpy(k2, k1, sizeof k2);
	k2[80] = 'y'; /* differs past FAIRQ_KEY_MAX: the same key */
	for (int i = 0; i < 3; i++)
		assert_int_equal(fairq_push(q, i == 1 ? k2 : k1, &items[i]), 0);
	assert_int_equal(fairq_push(q, k2, &items[3]), FAIRQ_KEY_FULL);
	assert_int_equal(fairq_key_held(q, k1), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fairq_pops_one_key_in_order,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fairq_refuses_a_key_over_its_share, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fairq_popped_items_count_until_done, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fairq_refuses_everyone_when_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fairq_serves_keys_in_turn,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fairq_round_robin_interleaves_backlogs, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fairq_a_freed_key_starts_afresh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fairq_cuts_long_keys, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
