/* chatd/fiber.c — coroutines with their own stacks on the event loop */
#include "chatd/fiber.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

enum fiber_state {
	FIBER_NEW,     /* started, fn not yet entered */
	FIBER_RUNNING, /* on the CPU, or resuming another fiber */
	FIBER_WAITING, /* suspended in fiber_wait_fd, its event pending */
	FIBER_DONE,    /* fn returned: to be freed by its resumer */
};

struct fiber {
	struct event_base *base;
	void (*fn)(void *);
	void *arg;
	char *map;        /* the mapping: a guard page, then the stack */
	struct event *ev; /* the wait's one-shot event, assigned per wait */
	ucontext_t ctx;   /* the fiber, while it is suspended */
	ucontext_t ret;   /* who resumed it, while it runs */
	enum fiber_state state;
	short fired;               /* the EV_* flags its event fired with */
	int cancelled;             /* by fiber_cancel_all: every wait fails */
	struct fiber *prev, *next; /* in fibers, every fiber not freed */
#ifdef __SANITIZE_ADDRESS__
	void *fake_stack;       /* ASan's, while the fiber is suspended */
	const void *ret_bottom; /* the resumer's stack, for switching back */
	size_t ret_size;
#endif
};

/* Which fiber this thread runs: only the loop's thread ever has one. */
static _Thread_local struct fiber *current;

/* The rest belongs to the loop's thread. */
static struct fiber *fibers;
static char *cache[FIBER_STACK_CACHE];
static struct fiber_stats stats;
static pthread_t owner;
static int owned;

/* The mapping's size: the stack and its guard page. */
static size_t
stack_map_size(void)
{
	static size_t page;

	if (page == 0)
		page = (size_t)sysconf(_SC_PAGESIZE);
	return FIBER_STACK_SIZE + page;
}

/* The usable stack of a mapping: what is above the guard page. */
static char *
stack_base(char *map)
{
	return map + (stack_map_size() - FIBER_STACK_SIZE);
}

/* A stack from the cache, or a new mapping; NULL if mmap fails. */
static char *
stack_get(void)
{
	char *map;

	if (stats.cached > 0) {
		map = cache[--stats.cached];
	} else {
		map = mmap(NULL, stack_map_size(), PROT_READ | PROT_WRITE,
		           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (map == MAP_FAILED)
			return NULL;
		/* An overflow faults on the guard instead of writing over
		 * whatever is mapped below. */
		if (mprotect(map, stack_map_size() - FIBER_STACK_SIZE,
		             PROT_NONE) < 0) {
			munmap(map, stack_map_size());
			return NULL;
		}
		stats.stack_bytes += stack_map_size();
	}
#ifdef __SANITIZE_ADDRESS__
	/* A finished fiber's last frame never returned: its redzones would
	 * still be poisoned under the next fiber's frames. */
	ASAN_UNPOISON_MEMORY_REGION(stack_base(map), FIBER_STACK_SIZE);
#endif
	return map;
}

/* Keeps a stack no fiber runs on for reuse, or unmaps it. */
static void
stack_put(char *map)
{
	if (stats.cached < FIBER_STACK_CACHE) {
		cache[stats.cached++] = map;
		return;
	}
	munmap(map, stack_map_size());
	stats.stack_bytes -= stack_map_size();
}

/* Unmaps the cached stacks. */
void
fiber_stacks_free(void)
{
	while (stats.cached > 0) {
		munmap(cache[--stats.cached], stack_map_size());
		stats.stack_bytes -= stack_map_size();
	}
}

/* ASan keeps one stack's bounds per thread: every switch says where it
 * goes (start) and, once there, where it came from (finish). save is
 * where the leaving side's fake stack is kept, NULL if it is finished. */
#ifdef __SANITIZE_ADDRESS__
#define san_start(save, bottom, size)                                          \
	__sanitizer_start_switch_fiber(save, bottom, size)
#define san_finish(save, bottom, size)                                         \
	__sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define san_start(save, bottom, size) ((void)0)
#define san_finish(save, bottom, size) ((void)0)
#endif

/* Saves the running context in from and continues in to; returns when
 * something continues in from. Under ASan not swapcontext, whose
 * interceptor warns of false positives and wipes the target stack's
 * shadow: getcontext and setcontext, one more syscall (the signal mask). */
__attribute__((noinline)) static void
ctx_swap(ucontext_t *from, const ucontext_t *to)
{
#ifdef __SANITIZE_ADDRESS__
	volatile int back = 0;

	if (getcontext(from) < 0)
		abort();
	if (back)
		return;
	back = 1;
	setcontext(to);
	abort(); /* setcontext returns only on failure */
#else
	if (swapcontext(from, to) < 0)
		abort();
#endif
}

/* Frees a fiber that is not running, from another stack. */
static void
fiber_free(struct fiber *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		fibers = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	event_free(f->ev);
	stack_put(f->map);
	stats.running--;
	free(f);
}

/* Continues f (new or waiting) until it waits or returns; frees it if
 * it returned. Runs on the loop's stack or on a fiber's. */
static void
fiber_resume(struct fiber *f)
{
	struct fiber *prev = current;
#ifdef __SANITIZE_ADDRESS__
	void *fake_stack = NULL;
#endif

	assert(f->state == FIBER_NEW || f->state == FIBER_WAITING);
	f->state = FIBER_RUNNING;
	current = f;
	san_start(&fake_stack, stack_base(f->map), FIBER_STACK_SIZE);
	ctx_swap(&f->ret, &f->ctx);
	san_finish(fake_stack, NULL, NULL);
	current = prev;
	if (f->state == FIBER_DONE)
		fiber_free(f);
}

/* Leaves the running fiber f for whoever resumed it, until resumed. */
static void
fiber_yield(struct fiber *f)
{
	san_start(&f->fake_stack, f->ret_bottom, f->ret_size);
	ctx_swap(&f->ctx, &f->ret);
	san_finish(f->fake_stack, &f->ret_bottom, &f->ret_size);
}

/* The first frame of every fiber: runs fn, then leaves for good. */
static void
fiber_main(void)
{
	struct fiber *f = current;

	san_finish(NULL, &f->ret_bottom, &f->ret_size);
	f->fn(f->arg);
	f->state = FIBER_DONE;
	san_start(NULL, f->ret_bottom, f->ret_size);
	setcontext(&f->ret);
	abort();
}

/* Fibers and their counters belong to one thread. */
static void
fiber_assert_owner(void)
{
	if (!owned) {
		owner = pthread_self();
		owned = 1;
	}
	assert(pthread_equal(owner, pthread_self()));
}

/* Runs fn(arg) on a new fiber until it waits or returns. */
int
fiber_start(struct event_base *base, void (*fn)(void *), void *arg)
{
	struct fiber *f;

	if (base == NULL || fn == NULL) {
		errno = EINVAL;
		return -1;
	}
	fiber_assert_owner();
	if ((f = calloc(1, sizeof *f)) == NULL)
		return -1;
	f->base = base;
	f->fn = fn;
	f->arg = arg;
	f->ev = event_new(base, -1, 0, NULL, NULL);
	f->map = stack_get();
	if (f->ev == NULL || f->map == NULL || getcontext(&f->ctx) < 0) {
		if (f->ev != NULL)
			event_free(f->ev);
		if (f->map != NULL)
			stack_put(f->map);
		free(f);
		errno = ENOMEM;
		return -1;
	}
	f->ctx.uc_stack.ss_sp = stack_base(f->map);
	f->ctx.uc_stack.ss_size = FIBER_STACK_SIZE;
	f->ctx.uc_link = NULL;
	makecontext(&f->ctx, fiber_main, 0);
	f->state = FIBER_NEW;
	f->next = fibers;
	if (fibers != NULL)
		fibers->prev = f;
	fibers = f;
	stats.started++;
	if (++stats.running > stats.max_running)
		stats.max_running = stats.running;
	fiber_resume(f);
	return 0;
}

/* libevent's callback of a waiting fiber: resumes it with what fired. */
static void
fiber_wake(evutil_socket_t fd, short what, void *arg)
{
	struct fiber *f = arg;

	(void)fd;
	f->fired = what;
	fiber_resume(f);
}

/* The poll(2) result as EV_* flags of what; -1 with errno on error. */
static int
wait_revents(short what, short revents)
{
	int fired = 0;

	if (revents & POLLNVAL) {
		errno = EBADF;
		return -1;
	}
	if ((what & EV_READ) && (revents & (POLLIN | POLLHUP | POLLERR)))
		fired |= EV_READ;
	if ((what & EV_WRITE) && (revents & (POLLOUT | POLLHUP | POLLERR)))
		fired |= EV_WRITE;
	return fired;
}

/* Milliseconds on the monotonic clock. */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fiber_wait_fd off a fiber: poll(2), again after signals. */
static int
wait_poll(int fd, short what, int timeout_ms)
{
	struct pollfd p = {.fd = fd};
	int64_t end = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
	int left = timeout_ms, n;

	if (what & EV_READ)
		p.events |= POLLIN;
	if (what & EV_WRITE)
		p.events |= POLLOUT;
	while ((n = poll(&p, 1, left)) < 0 && errno == EINTR) {
		if (timeout_ms >= 0 && (left = (int)(end - now_ms())) < 0)
			left = 0;
	}
	if (n < 0)
		return -1;
	if (n == 0)
		return EV_TIMEOUT;
	return wait_revents(what, p.revents);
}

/* Waits for fd in the loop (inside a fiber) or in poll (elsewhere). */
int
fiber_wait_fd(int fd, short what, int timeout_ms)
{
	struct fiber *f = current;
	struct timeval tv;

	what &= EV_READ | EV_WRITE;
	if (fd < 0 || what == 0) {
		errno = EINVAL;
		return -1;
	}
	if (f == NULL)
		return wait_poll(fd, what, timeout_ms);
	if (f->cancelled) {
		errno = ECANCELED;
		return -1;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (event_assign(f->ev, f->base, fd, what, fiber_wake, f) < 0 ||
	    event_add(f->ev, timeout_ms >= 0 ? &tv : NULL) < 0) {
		errno = EINVAL;
		return -1;
	}
	f->fired = 0;
	f->state = FIBER_WAITING;
	fiber_yield(f);
	if (f->cancelled) {
		errno = ECANCELED;
		return -1;
	}
	return f->fired;
}

/* The running fiber, NULL off fibers. */
struct fiber *
fiber_self(void)
{
	return current;
}

/* Wakes every waiting fiber of base with ECANCELED until none waits. */
unsigned
fiber_cancel_all(struct event_base *base)
{
	struct fiber *f;
	unsigned n = 0;

	assert(current == NULL);
	/* On the loop's stack every fiber waits; resuming one may free any
	 * (the ones it started) or add new ones, so look again each time. */
	for (;;) {
		for (f = fibers; f != NULL; f = f->next) {
			if (f->base == base && f->state == FIBER_WAITING)
				break;
		}
		if (f == NULL)
			return n;
		event_del(f->ev);
		f->cancelled = 1;
		n++;
		fiber_resume(f);
	}
}

/* Copies the counters. */
void
fiber_stats(struct fiber_stats *st)
{
	*st = stats;
}
