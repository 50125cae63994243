/* tests/unit/test_fiber.c — chatd/fiber.c: fibers waiting on real sockets
 * in a real event loop, timeouts, stacks, cancelling, nesting, threads */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "chatd/fiber.h"

#define NFIBERS 100
#define BIG (64 * 1024)

struct fixture {
	struct event_base *base;
};

/* What a fiber saw: fibers record, the test asserts on the loop's stack
 * (a failed assertion longjmps, which must not cross stacks). */
struct probe {
	int fd;
	short what;
	int timeout_ms;
	int waiting;  /* set just before the first wait */
	int result;   /* of the last fiber_wait_fd */
	int err;      /* errno after it */
	int waits;    /* how many waits returned */
	int finished; /* fn returned */
	int order;    /* its place among the finished */
	struct fiber *self;
	char data[32];
	ssize_t n;
	int *counter; /* the finishing order, shared */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	struct fiber_stats st;

	fiber_cancel_all(f->base);
	fiber_stats(&st);
	assert_int_equal(st.running, 0);
	fiber_stacks_free();
	event_base_free(f->base);
	free(f);
	return 0;
}

/* A socket pair, both ends non-blocking. */
static void
pair(int sv[2])
{
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

/* Waits once on p->fd and reads what came. */
static void
read_once(void *arg)
{
	struct probe *p = arg;

	p->self = fiber_self();
	p->waiting = 1;
	p->result = fiber_wait_fd(p->fd, p->what, p->timeout_ms);
	p->err = errno;
	p->waits++;
	if (p->result > 0 && (p->result & EV_READ))
		p->n = read(p->fd, p->data, sizeof p->data - 1);
	if (p->counter != NULL)
		p->order = (*p->counter)++;
	p->finished = 1;
}

/* A timer's job: writes "hello" on the fd in arg. */
static void
write_hello(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	assert_int_equal(write(*(int *)arg, "hello", 5), 5);
}

static void
test_fiber_resumes_when_loop_writes_the_other_end(void **state)
{
	struct fixture *f = *state;
	struct probe p = {.what = EV_READ, .timeout_ms = -1};
	struct timeval tv = {0, 1000};
	int sv[2];

	pair(sv);
	p.fd = sv[0];
	assert_null(fiber_self());
	assert_int_equal(fiber_start(f->base, read_once, &p), 0);
	/* fiber_start returned at the first wait, nothing read yet. */
	assert_true(p.waiting);
	assert_false(p.finished);
	assert_non_null(p.self);
	assert_null(fiber_self());
	assert_int_equal(
	    event_base_once(f->base, -1, EV_TIMEOUT, write_hello, &sv[1], &tv),
	    0);
	assert_int_equal(event_base_dispatch(f->base), 1); /* no events left */
	assert_true(p.finished);
	assert_int_equal(p.result, EV_READ);
	assert_int_equal(p.n, 5);
	assert_string_equal(p.data, "hello");
	close(sv[0]);
	close(sv[1]);
}

static void
test_fiber_wait_times_out(void **state)
{
	struct fixture *f = *state;
	struct probe p = {.what = EV_READ, .timeout_ms = 20};
	struct timespec t0, t1;
	int sv[2];

	pair(sv);
	p.fd = sv[0];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(fiber_start(f->base, read_once, &p), 0);
	assert_false(p.finished);
	assert_int_equal(event_base_dispatch(f->base), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(p.finished);
	assert_int_equal(p.result, EV_TIMEOUT);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 +
	                (t1.tv_nsec - t0.tv_nsec) / 1000000 >=
	            19);
	close(sv[0]);
	close(sv[1]);
}

/* Waits to read, answers, waits to read again: three switches. */
static void
echo_twice(void *arg)
{
	struct probe *p = arg;
	char c;

	p->waiting = 1;
	for (int i = 0; i < 2; i++) {
		p->result = fiber_wait_fd(p->fd, EV_READ, -1);
		p->waits++;
		if (p->result != EV_READ || read(p->fd, &c, 1) != 1)
			break;
		if (fiber_wait_fd(p->fd, EV_WRITE, -1) != EV_WRITE ||
		    write(p->fd, &c, 1) != 1)
			break;
	}
	p->order = (*p->counter)++;
	p->finished = 1;
}

static void
test_fiber_hundred_resumed_in_any_order(void **state)
{
	struct fixture *f = *state;
	struct probe *p = calloc(NFIBERS, sizeof *p);
	int sv[NFIBERS][2], perm[NFIBERS], counter = 0;
	struct fiber_stats st0, st;
	char c;

	assert_non_null(p);
	fiber_stats(&st0);
	for (int i = 0; i < NFIBERS; i++) {
		pair(sv[i]);
		p[i].fd = sv[i][0];
		p[i].counter = &counter;
		assert_int_equal(fiber_start(f->base, echo_twice, &p[i]), 0);
		assert_true(p[i].waiting);
		perm[i] = i;
	}
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running + NFIBERS);
	assert_true(st.max_running >= NFIBERS);
	assert_int_equal(st.started, st0.started + NFIBERS);
	srand(17);
	for (int i = NFIBERS - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	/* Round one: every fiber echoes a byte, in the shuffled order. */
	for (int i = 0; i < NFIBERS; i++) {
		int k = perm[i];

		assert_int_equal(write(sv[k][1], "x", 1), 1);
		while (p[k].waits < 1)
			event_base_loop(f->base, EVLOOP_ONCE);
	}
	for (int i = 0; i < NFIBERS; i++) {
		assert_int_equal(p[i].waits, 1);
		while (read(sv[i][1], &c, 1) != 1)
			event_base_loop(f->base, EVLOOP_ONCE);
		assert_int_equal(c, 'x');
	}
	/* Round two, backwards: they finish in exactly that order. */
	for (int i = NFIBERS - 1; i >= 0; i--) {
		int k = perm[i];

		assert_int_equal(write(sv[k][1], "y", 1), 1);
		while (!p[k].finished)
			event_base_loop(f->base, EVLOOP_ONCE);
		assert_int_equal(p[k].order, NFIBERS - 1 - i);
	}
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running);
	assert_true(st.cached <= FIBER_STACK_CACHE);
	for (int i = 0; i < NFIBERS; i++) {
		assert_int_equal(p[i].waits, 2);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	free(p);
}

/* Fills 64 KiB of its stack, waits, then checks and hashes it. */
static void
big_frame(void *arg)
{
	struct probe *p = arg;
	volatile char buf[BIG];
	unsigned sum = 0;

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)(i * 7);
	p->waiting = 1;
	p->result = fiber_wait_fd(p->fd, EV_READ, -1);
	for (size_t i = 0; i < sizeof buf; i++) {
		if (buf[i] != (char)(i * 7))
			sum = 1;
	}
	p->n = read(p->fd, p->data, sizeof p->data - 1);
	p->err = (int)sum;
	p->finished = 1;
}

static void
test_fiber_large_local_buffer(void **state)
{
	struct fixture *f = *state;
	struct probe p = {0};
	struct probe q = {.what = EV_READ, .timeout_ms = -1};
	int sv[2], sw[2];

	pair(sv);
	pair(sw);
	p.fd = sv[0];
	q.fd = sw[0];
	/* Another fiber runs between the wait and the check. */
	assert_int_equal(fiber_start(f->base, big_frame, &p), 0);
	assert_int_equal(fiber_start(f->base, read_once, &q), 0);
	assert_int_equal(write(sw[1], "a", 1), 1);
	while (!q.finished)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(write(sv[1], "b", 1), 1);
	assert_int_equal(event_base_dispatch(f->base), 1);
	assert_true(p.finished);
	assert_int_equal(p.result, EV_READ);
	assert_int_equal(p.err, 0);
	assert_string_equal(p.data, "b");
	close(sv[0]);
	close(sv[1]);
	close(sw[0]);
	close(sw[1]);
}

/* Notes where its stack is and returns at once. (Its frame, not a local:
 * with detect_stack_use_after_return ASan moves locals to the heap.) */
static void
where(void *arg)
{
	*(uintptr_t *)arg = (uintptr_t)__builtin_frame_address(0);
}

static void
test_fiber_stacks_are_reused(void **state)
{
	struct fixture *f = *state;
	struct fiber_stats st0, st;
	uintptr_t a = 0, b = 0;

	fiber_stacks_free();
	fiber_stats(&st0);
	assert_int_equal(st0.cached, 0);
	assert_int_equal(fiber_start(f->base, where, &a), 0);
	fiber_stats(&st);
	assert_int_equal(st.started, st0.started + 1);
	assert_int_equal(st.running, st0.running);
	assert_int_equal(st.cached, 1);
	assert_int_equal(st.stack_bytes, st0.stack_bytes + FIBER_STACK_SIZE +
	                                     (size_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(fiber_start(f->base, where, &b), 0);
	assert_true(a != 0);
	assert_true(a == b); /* the same stack, the same depth */
	fiber_stats(&st);
	assert_int_equal(st.cached, 1);
	assert_int_equal(st.stack_bytes, st0.stack_bytes + FIBER_STACK_SIZE +
	                                     (size_t)sysconf(_SC_PAGESIZE));
	fiber_stacks_free();
	fiber_stats(&st);
	assert_int_equal(st.cached, 0);
	assert_int_equal(st.stack_bytes, st0.stack_bytes);
}

/* The permissions of the mapping of /proc/self/maps that starts or ends
 * (end != 0) at addr, or that holds it (addr inside); "" if none. */
static void
mapping(uintptr_t addr, int end, char perms[5])
{
	FILE *fp = fopen("/proc/self/maps", "r");
	char line[512], p[5];
	uintptr_t lo, hi;

	assert_non_null(fp);
	perms[0] = 0;
	while (fgets(line, sizeof line, fp) != NULL) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &lo, &hi,
		           p) != 3)
			continue;
		if (end ? hi == addr : (lo <= addr && addr < hi)) {
			memcpy(perms, p, 5);
			break;
		}
	}
	fclose(fp);
}

static void
test_fiber_stack_has_a_guard_page_below(void **state)
{
	struct fixture *f = *state;
	uintptr_t a = 0, lo;
	char perms[5];
	long page = sysconf(_SC_PAGESIZE);

	assert_int_equal(fiber_start(f->base, where, &a), 0);
	/* The stack is the top of its own mapping (cached now), with at
	 * most FIBER_STACK_SIZE below the frame; under it, no access. */
	mapping(a, 0, perms);
	assert_string_equal(perms, "rw-p");
	lo = (a - FIBER_STACK_SIZE + (uintptr_t)page) & ~((uintptr_t)page - 1);
	mapping(lo - 1, 0, perms);
	while (strcmp(perms, "rw-p") == 0) {
		lo -= (uintptr_t)page;
		mapping(lo - 1, 0, perms);
	}
	assert_string_equal(perms, "---p");
	mapping(lo, 1, perms); /* the guard ends where the stack begins */
	assert_string_equal(perms, "---p");
}

static void
test_fiber_wait_outside_a_fiber_polls(void **state)
{
	int sv[2];
	char c;

	(void)state;
	pair(sv);
	assert_null(fiber_self());
	assert_int_equal(fiber_wait_fd(sv[0], EV_READ, 10), EV_TIMEOUT);
	assert_int_equal(fiber_wait_fd(sv[0], EV_READ, 0), EV_TIMEOUT);
	assert_int_equal(fiber_wait_fd(sv[0], EV_WRITE, -1), EV_WRITE);
	assert_int_equal(write(sv[1], "z", 1), 1);
	assert_int_equal(fiber_wait_fd(sv[0], EV_READ | EV_WRITE, -1),
	                 EV_READ | EV_WRITE);
	assert_int_equal(read(sv[0], &c, 1), 1);
	close(sv[1]);
	/* A hung up peer: readable (read says EOF). */
	assert_int_equal(fiber_wait_fd(sv[0], EV_READ, -1) & EV_READ, EV_READ);
	assert_int_equal(read(sv[0], &c, 1), 0);
	close(sv[0]);
	errno = 0;
	assert_int_equal(fiber_wait_fd(sv[0], EV_READ, 0), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(fiber_wait_fd(-1, EV_READ, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fiber_wait_fd(0, EV_TIMEOUT, 0), -1);
	assert_int_equal(errno, EINVAL);
}

/* Holds heap memory across a wait, then waits again after the first
 * wait failed: the unwinding a storage function does. */
static void
hold_and_wait(void *arg)
{
	struct probe *p = arg;
	char *held = malloc(4096);

	p->waiting = 1;
	p->result = fiber_wait_fd(p->fd, EV_READ, -1);
	p->err = errno;
	p->waits++;
	if (p->result < 0) {
		/* A later wait fails at once, without switching. */
		if (fiber_wait_fd(p->fd, EV_WRITE, -1) == -1 &&
		    errno == ECANCELED)
			p->waits++;
	}
	free(held);
	p->finished = 1;
}

static void
test_fiber_cancel_all_unwinds_everyone(void **state)
{
	struct fixture *f = *state;
	struct event_base *other = event_base_new();
	struct probe p[10] = {0}, q = {0};
	struct fiber_stats st0, st;
	int sv[10][2], sq[2];

	fiber_stats(&st0);
	for (int i = 0; i < 10; i++) {
		pair(sv[i]);
		p[i].fd = sv[i][0];
		assert_int_equal(fiber_start(f->base, hold_and_wait, &p[i]), 0);
	}
	/* A fiber of another loop is left alone. */
	pair(sq);
	q.fd = sq[0];
	assert_int_equal(fiber_start(other, hold_and_wait, &q), 0);
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running + 11);
	assert_int_equal(fiber_cancel_all(f->base), 10);
	for (int i = 0; i < 10; i++) {
		assert_true(p[i].finished);
		assert_int_equal(p[i].result, -1);
		assert_int_equal(p[i].err, ECANCELED);
		assert_int_equal(p[i].waits, 2);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running + 1);
	/* Nothing of theirs is left in the loop. */
	assert_int_equal(
	    event_base_get_num_events(f->base, EVENT_BASE_COUNT_ADDED), 0);
	assert_int_equal(fiber_cancel_all(f->base), 0);
	assert_false(q.finished);
	assert_int_equal(write(sq[1], "q", 1), 1);
	assert_int_equal(event_base_dispatch(other), 1);
	assert_true(q.finished);
	assert_int_equal(q.result, EV_READ);
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running);
	close(sq[0]);
	close(sq[1]);
	event_base_free(other);
}

/* A cleanup that itself waits: when cancelled, starts a fiber that
 * waits (as a backend's rollback would). */
struct chain {
	struct event_base *base;
	struct probe later;
	int result, err, started;
};

/* Waits; once cancelled, starts chain->later, which waits too. */
static void
cancel_starts_another(void *arg)
{
	struct chain *c = arg;

	c->result = fiber_wait_fd(c->later.fd, EV_READ, -1);
	c->err = errno;
	c->started = fiber_start(c->base, read_once, &c->later);
}

static void
test_fiber_cancel_all_reaches_fibers_started_while_unwinding(void **state)
{
	struct fixture *f = *state;
	struct chain c = {.base = f->base};
	struct fiber_stats st0, st;
	int sv[2];

	fiber_stats(&st0);
	pair(sv);
	c.later.fd = sv[0];
	c.later.what = EV_READ;
	c.later.timeout_ms = -1;
	assert_int_equal(fiber_start(f->base, cancel_starts_another, &c), 0);
	assert_int_equal(fiber_cancel_all(f->base), 2);
	assert_int_equal(c.result, -1);
	assert_int_equal(c.err, ECANCELED);
	assert_int_equal(c.started, 0);
	assert_true(c.later.finished);
	assert_int_equal(c.later.result, -1);
	assert_int_equal(c.later.err, ECANCELED);
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running);
	assert_int_equal(st.started, st0.started + 2);
	close(sv[0]);
	close(sv[1]);
}

/* What the nested test's outer fiber saw. */
struct nest {
	struct event_base *base;
	struct probe inner;
	struct probe quick;
	struct fiber *self, *self_after, *inner_self;
	int started, quick_started, inner_waiting, outer;
	int fd;
};

/* Started inside a fiber: returns without waiting. */
static void
quick(void *arg)
{
	struct probe *p = arg;

	p->self = fiber_self();
	p->finished = 1;
}

/* Starts a fiber that waits and one that does not, then waits itself. */
static void
outer(void *arg)
{
	struct nest *n = arg;

	n->self = fiber_self();
	n->started = fiber_start(n->base, read_once, &n->inner);
	n->inner_waiting = n->inner.waiting && !n->inner.finished;
	n->inner_self = n->inner.self;
	n->quick_started = fiber_start(n->base, quick, &n->quick);
	n->self_after = fiber_self();
	n->outer = fiber_wait_fd(n->fd, EV_READ, -1);
}

static void
test_fiber_started_inside_a_fiber(void **state)
{
	struct fixture *f = *state;
	struct nest n = {.base = f->base};
	struct fiber_stats st0, st;
	int sa[2], sb[2];

	fiber_stats(&st0);
	pair(sa);
	pair(sb);
	n.fd = sa[0];
	n.inner.fd = sb[0];
	n.inner.what = EV_READ;
	n.inner.timeout_ms = -1;
	assert_int_equal(fiber_start(f->base, outer, &n), 0);
	assert_int_equal(n.started, 0);
	assert_true(n.inner_waiting);
	assert_non_null(n.self);
	assert_non_null(n.inner_self);
	assert_ptr_not_equal(n.inner_self, n.self);
	assert_int_equal(n.quick_started, 0);
	assert_true(n.quick.finished);
	assert_ptr_not_equal(n.quick.self, n.self);
	assert_ptr_equal(n.self_after, n.self);
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running + 2); /* outer, inner */
	/* The inner one resumes from the loop, the outer one later. */
	assert_int_equal(write(sb[1], "in", 2), 2);
	while (!n.inner.finished)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_string_equal(n.inner.data, "in");
	assert_int_equal(n.outer, 0);
	assert_int_equal(write(sa[1], "o", 1), 1);
	assert_int_equal(event_base_dispatch(f->base), 1);
	assert_int_equal(n.outer, EV_READ);
	fiber_stats(&st);
	assert_int_equal(st.running, st0.running);
	close(sa[0]);
	close(sa[1]);
	close(sb[0]);
	close(sb[1]);
}

/* What another thread sees. */
struct thread_view {
	struct fiber *self;
	int polled;
	int fd;
};

/* Off the loop's thread: no fiber, and waits poll. */
static void *
thread_main(void *arg)
{
	struct thread_view *v = arg;

	v->self = fiber_self();
	v->polled = fiber_wait_fd(v->fd, EV_WRITE, -1);
	return NULL;
}

/* On a fiber: starts a thread and joins it (blocking, briefly). */
static void
spawn_thread(void *arg)
{
	struct thread_view *v = arg;
	pthread_t t;

	if (pthread_create(&t, NULL, thread_main, v) == 0)
		pthread_join(t, NULL);
}

static void
test_fiber_self_null_on_loop_and_other_threads(void **state)
{
	struct fixture *f = *state;
	struct thread_view v = {.self = (struct fiber *)&v, .polled = -2};
	int sv[2];

	pair(sv);
	v.fd = sv[0];
	assert_null(fiber_self());
	/* Asked while this thread is on a fiber. */
	assert_int_equal(fiber_start(f->base, spawn_thread, &v), 0);
	assert_null(v.self);
	assert_int_equal(v.polled, EV_WRITE);
	assert_null(fiber_self());
	close(sv[0]);
	close(sv[1]);
}

/* Jumps back to env: a noreturn call, which ASan checks against the
 * stack it believes it is on. */
static void
jump(jmp_buf env)
{
	longjmp(env, 1);
}

/* Longjmps within its own stack before and after a wait. */
static void
jumper(void *arg)
{
	struct probe *p = arg;
	jmp_buf env;
	volatile int jumps = 0;

	if (setjmp(env) == 0)
		jump(env);
	jumps++;
	p->waiting = 1;
	p->result = fiber_wait_fd(p->fd, EV_READ, -1);
	if (setjmp(env) == 0)
		jump(env);
	jumps++;
	p->waits = jumps;
	p->finished = 1;
}

static void
test_fiber_longjmp_within_a_fiber(void **state)
{
	struct fixture *f = *state;
	struct probe p = {0};
	int sv[2];

	pair(sv);
	p.fd = sv[0];
	assert_int_equal(fiber_start(f->base, jumper, &p), 0);
	assert_true(p.waiting);
	assert_int_equal(write(sv[1], "j", 1), 1);
	assert_int_equal(event_base_dispatch(f->base), 1);
	assert_true(p.finished);
	assert_int_equal(p.result, EV_READ);
	assert_int_equal(p.waits, 2);
	close(sv[0]);
	close(sv[1]);
}

static void
test_fiber_start_refuses_bad_arguments(void **state)
{
	struct fixture *f = *state;

	errno = 0;
	assert_int_equal(fiber_start(NULL, quick, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fiber_start(f->base, NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_fiber_resumes_when_loop_writes_the_other_end, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_fiber_wait_times_out, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fiber_hundred_resumed_in_any_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fiber_large_local_buffer,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fiber_stacks_are_reused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fiber_stack_has_a_guard_page_below, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fiber_wait_outside_a_fiber_polls, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fiber_cancel_all_unwinds_everyone, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fiber_cancel_all_reaches_fibers_started_while_unwinding,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fiber_started_inside_a_fiber,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fiber_self_null_on_loop_and_other_threads, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_fiber_longjmp_within_a_fiber,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fiber_start_refuses_bad_arguments, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
