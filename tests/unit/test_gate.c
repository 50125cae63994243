/* tests/unit/test_gate.c — chatd/gate.c: jobs one at a time and in order,
 * a waiting job leaves the loop free, merged events, cancelling, stopping,
 * and the count of waits that blocked the loop */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "chatd/fiber.h"
#include "chatd/gate.h"

struct fixture {
	struct event_base *base;
	int sv[2]; /* a job waits on sv[0] until the loop writes sv[1] */
};

/* A job that records when it ran; with fd >= 0 it first waits for a byte
 * there, through the storage waiter, as a PostgreSQL statement does.
 * Jobs record, the test asserts on the loop's stack (a failed assertion
 * longjmps, which must not cross stacks). */
struct probe {
	struct gate_job job;
	int fd;
	int started;
	int finished;
	int result;   /* of the wait */
	int err;
	int *clock;   /* finishing order, shared */
	int order;
	int on_fiber;
};

static int clock_;

static void
probe_run(struct gate_job *j)
{
	struct probe *p = (struct probe *)j;
	char b;

	p->started = 1;
	p->on_fiber = fiber_self() != NULL;
	if (p->fd >= 0) {
		p->result = gate_db_wait(p->fd, GATE_WAIT_READ, -1);
		p->err = errno;
		if (p->result > 0)
			(void)read(p->fd, &b, 1);
	}
	p->order = (*p->clock)++;
	p->finished = 1;
}

static void
probe_init(struct probe *p, int fd)
{
	memset(p, 0, sizeof *p);
	p->fd = fd;
	p->clock = &clock_;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	unsetenv("CHATD_GATE_STRICT"); /* a loop wait is tested, not fatal */
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->sv), 0);
	clock_ = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	gate_stop();
	fiber_stacks_free();
	close(f->sv[0]);
	close(f->sv[1]);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
write_byte(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	assert_int_equal(write(*(int *)arg, "x", 1), 1);
}

/* A timer that only counts: the loop runs while a job waits. */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(*(int *)arg)++;
}

static void
test_gate_off_runs_at_once(void **state)
{
	struct probe p;

	(void)state;
	assert_false(gate_on());
	probe_init(&p, -1);
	gate_post(&p.job, probe_run);
	assert_true(p.finished);
	assert_false(p.on_fiber);
}

static void
test_gate_jobs_queue_behind_a_waiting_one_in_order(void **state)
{
	struct fixture *f = *state;
	struct probe a, b, c;
	struct gate_stats st0, st;
	struct timeval soon = {0, 1000}, later = {0, 20000};
	int ticks = 0;

	gate_stats(&st0);
	assert_int_equal(gate_start(f->base), 0);
	assert_true(gate_on());
	probe_init(&a, f->sv[0]);
	probe_init(&b, -1);
	probe_init(&c, -1);
	gate_post(&a.job, probe_run);
	/* a started at once, on a fiber, and waits. */
	assert_true(a.started);
	assert_true(a.on_fiber);
	assert_false(a.finished);
	gate_post(&b.job, probe_run);
	gate_post(&c.job, probe_run);
	gate_post(&b.job, probe_run); /* queued already: nothing */
	assert_false(b.started);
	assert_false(c.started);
	gate_stats(&st);
	assert_int_equal(st.queued, 2);
	assert_int_equal(st.deferred - st0.deferred, 2);
	/* The loop runs a timer before the byte comes: it is not blocked. */
	assert_int_equal(event_base_once(f->base, -1, EV_TIMEOUT, tick, &ticks,
	    &soon), 0);
	assert_int_equal(event_base_once(f->base, -1, EV_TIMEOUT, write_byte,
	    &f->sv[1], &later), 0);
	gate_loop_running(1);
	event_base_dispatch(f->base);
	gate_loop_running(0);
	assert_int_equal(ticks, 1);
	assert_true(a.finished && b.finished && c.finished);
	assert_int_equal(a.result, GATE_WAIT_READ);
	assert_int_equal(a.order, 0);
	assert_int_equal(b.order, 1);
	assert_int_equal(c.order, 2);
	gate_stats(&st);
	assert_int_equal(st.queued, 0);
	assert_true(st.max_queued >= 2);
	assert_int_equal(st.jobs - st0.jobs, 3);
	assert_int_equal(st.waits - st0.waits, 1);
	assert_int_equal(st.loop_waits, st0.loop_waits);
}

static void
test_gate_cancel_takes_a_job_off(void **state)
{
	struct fixture *f = *state;
	struct probe a, b;

	gate_start(f->base);
	probe_init(&a, f->sv[0]);
	probe_init(&b, -1);
	gate_post(&a.job, probe_run);
	gate_post(&b.job, probe_run);
	gate_cancel(&b.job);
	gate_cancel(&b.job); /* not queued: nothing */
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	gate_loop_running(1);
	event_base_dispatch(f->base);
	gate_loop_running(0);
	assert_true(a.finished);
	assert_false(b.started);
}

struct evprobe {
	int runs;
	short what;
	int finished_a; /* the waiting job had finished when it ran */
	struct probe *a;
};

static void
ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct evprobe *e = arg;

	(void)fd;
	e->runs++;
	e->what |= what;
	e->finished_a = e->a->finished;
}

static void
test_gate_event_fires_merge_while_queued(void **state)
{
	struct fixture *f = *state;
	struct probe a;
	struct evprobe e = {0};
	struct event *ev, *ev2;
	struct evprobe e2 = {0};

	gate_start(f->base);
	probe_init(&a, f->sv[0]);
	e.a = &a;
	e2.a = &a;
	ev = gate_event_new(f->base, -1, 0, ev_cb, &e);
	ev2 = gate_event_new(f->base, -1, 0, ev_cb, &e2);
	assert_non_null(ev);
	gate_post(&a.job, probe_run);
	event_active(ev, EV_TIMEOUT, 0);
	event_active(ev2, EV_TIMEOUT, 0);
	/* One pass: both fire into the queue behind a; ev2 is freed with
	 * its job queued, so it never runs. */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	event_active(ev, EV_READ, 0);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	gate_event_free(ev2);
	assert_int_equal(e.runs, 0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	gate_loop_running(1);
	event_base_dispatch(f->base);
	gate_loop_running(0);
	assert_int_equal(e.runs, 1);
	assert_int_equal(e.what, EV_TIMEOUT | EV_READ);
	assert_true(e.finished_a);
	assert_int_equal(e2.runs, 0);
	gate_event_free(ev);
}

static void
test_gate_stop_fails_the_waiter_and_runs_the_rest(void **state)
{
	struct fixture *f = *state;
	struct probe a, b, c;

	gate_start(f->base);
	probe_init(&a, f->sv[0]);
	probe_init(&b, -1);
	probe_init(&c, -1);
	gate_post(&a.job, probe_run);
	gate_post(&b.job, probe_run);
	gate_stop();
	assert_false(gate_on());
	assert_true(a.finished);
	assert_int_equal(a.result, -1);
	assert_int_equal(a.err, ECANCELED);
	assert_true(b.finished);
	assert_false(b.on_fiber);
	gate_post(&c.job, probe_run);
	assert_true(c.finished);
	assert_false(c.on_fiber);
}

static void
test_gate_counts_a_wait_that_blocks_the_loop(void **state)
{
	struct fixture *f = *state;
	struct gate_stats st0, st;

	gate_start(f->base);
	gate_stats(&st0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	/* Before the loop runs (start-up): a poll, not counted. */
	assert_int_equal(gate_db_wait(f->sv[0], GATE_WAIT_READ, 0),
	    GATE_WAIT_READ);
	gate_loop_running(1);
	/* While it runs, on its stack: counted. */
	assert_int_equal(gate_db_wait(f->sv[0], GATE_WAIT_READ, 0),
	    GATE_WAIT_READ);
	gate_loop_running(0);
	gate_stats(&st);
	assert_int_equal(st.loop_waits - st0.loop_waits, 1);
	assert_int_equal(st.waits, st0.waits);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_gate_off_runs_at_once, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_gate_jobs_queue_behind_a_waiting_one_in_order, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_gate_cancel_takes_a_job_off,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_gate_event_fires_merge_while_queued, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_gate_stop_fails_the_waiter_and_runs_the_rest, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_gate_counts_a_wait_that_blocks_the_loop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
