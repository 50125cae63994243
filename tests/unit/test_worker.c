/* tests/unit/test_worker.c — the hashing thread pool and its fair queue */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "chatd/worker.h"

/* The loop, the pool, and the keys of finished jobs in done order. */
struct fixture {
	struct event_base *base;
	struct worker *w;
	char order[WORKER_QUEUE_MAX * 2 + 1];
	int ndone;
};

/* One job: its key's first letter, and the fixture. */
struct tjob {
	struct fixture *f;
	char key;
	int ran;
};

static struct tjob jobs[WORKER_QUEUE_MAX + 8];

static void
tjob_run(void *arg)
{
	((struct tjob *)arg)->ran = 1;
}

static void
tjob_done(void *arg)
{
	struct tjob *j = arg;

	j->f->order[j->f->ndone++] = j->key;
	if (worker_jobs(j->f->w) == 0)
		event_base_loopbreak(j->f->base);
}

/* One thread: the order jobs finish in is the order they were served. */
static int
setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof f);
	memset(jobs, 0, sizeof jobs);
	f.base = event_base_new();
	f.w = worker_new(f.base, 1);
	assert_non_null(f.w);
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	worker_free(f->w);
	event_base_free(f->base);
	return 0;
}

/* Submits job i under key (its first letter recorded). */
static int
submit(struct fixture *f, int i, const char *key)
{
	jobs[i].f = f;
	jobs[i].key = key[0];
	return worker_submit(f->w, key, tjob_run, tjob_done, &jobs[i]);
}

static void
test_worker_refuses_a_key_over_its_share(void **state)
{
	struct fixture *f = *state;
	int i;

	for (i = 0; i < WORKER_QUEUE_PER_KEY; i++)
		assert_int_equal(submit(f, i, "a"), 0);
	assert_int_equal(submit(f, i, "a"), WORKER_KEY_FULL);
	assert_int_equal(submit(f, i, "b"), 0);
	assert_int_equal(worker_jobs(f->w), WORKER_QUEUE_PER_KEY + 1);
	event_base_dispatch(f->base);
	assert_int_equal(worker_jobs(f->w), 0);
	assert_int_equal(f->ndone, WORKER_QUEUE_PER_KEY + 1);
	/* Done: a's share is free again. */
	assert_int_equal(submit(f, 0, "a"), 0);
}

static void
test_worker_refuses_everyone_when_full(void **state)
{
	struct fixture *f = *state;
	char key[16];
	int i;

	for (i = 0; i < WORKER_QUEUE_MAX; i++) {
		snprintf(key, sizeof key, "k%d", i / WORKER_QUEUE_PER_KEY);
		assert_int_equal(submit(f, i, key), 0);
	}
	assert_int_equal(submit(f, i, "fresh"), WORKER_FULL);
	event_base_dispatch(f->base);
	assert_int_equal(f->ndone, WORKER_QUEUE_MAX);
	for (i = 0; i < WORKER_QUEUE_MAX; i++)
		assert_true(jobs[i].ran);
}

static void
test_worker_serves_keys_in_turn(void **state)
{
	struct fixture *f = *state;
	int i;

	/* a's first job goes to the thread at once; a's backlog waits. */
	for (i = 0; i < 4; i++)
		assert_int_equal(submit(f, i, "a"), 0);
	assert_int_equal(submit(f, i++, "b"), 0);
	assert_int_equal(submit(f, i++, "c"), 0);
	assert_int_equal(submit(f, i++, "b"), 0);
	event_base_dispatch(f->base);
	assert_string_equal(f->order, "abcabaa");
}

static void
test_worker_free_finishes_queued_jobs(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 5; i++)
		assert_int_equal(submit(f, i, i % 2 ? "a" : "b"), 0);
	/* No loop run: worker_free runs them and their done callbacks. */
	worker_free(f->w);
	f->w = NULL;
	assert_int_equal(f->ndone, 5);
	for (int i = 0; i < 5; i++)
		assert_true(jobs[i].ran);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_worker_refuses_a_key_over_its_share, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_worker_refuses_everyone_when_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_worker_serves_keys_in_turn,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_worker_free_finishes_queued_jobs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
