/* chatd/fiber.h — coroutines with their own stacks on the event loop, so
 * synchronous code (storage) can wait for a socket without blocking it */
#ifndef CHATD_FIBER_H
#define CHATD_FIBER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fiber;

/*
 * A fiber runs a function on its own stack. When the function waits for a
 * socket (fiber_wait_fd), the fiber switches back to whoever resumed it
 * (the loop, or the fiber that started it) and the loop resumes it when
 * libevent says the socket is ready. Rules that must hold (docs/fiber.md):
 * - Fibers live on one thread, the loop's: fiber_start, the loop that
 *   resumes them and fiber_cancel_all run there (asserted). Other threads
 *   only ever see fiber_self() == NULL, and fiber_wait_fd polls there.
 * - Run the loop on its own stack, never inside a fiber.
 * - Across a wait anything may happen on the loop: do not hold pointers to
 *   objects that can be freed meanwhile (a connection), re-find them.
 * - Never longjmp (or unwind) across a fiber's boundary.
 */

#define FIBER_STACK_SIZE (256 * 1024) /* usable bytes of a stack */
#define FIBER_STACK_CACHE 16 /* finished stacks kept for reuse, at most */

/* Counters for /metrics. */
struct fiber_stats {
	uint64_t started;     /* fibers started since the process began */
	unsigned running;     /* started, function not yet returned */
	unsigned max_running; /* the most running at once */
	unsigned cached;      /* stacks kept for reuse */
	size_t stack_bytes;   /* mapped for stacks: running and cached, with
	                         their guard pages */
};

/* Runs fn(arg) on a new fiber at once, on the caller's thread, until fn
 * first waits or returns, then returns. Its waits use base. Inside a
 * fiber it starts a nested one, whose first wait returns to its starter
 * (later ones to the loop). The fiber is freed after fn returns. 0; -1
 * with errno (ENOMEM: no memory or stack; EINVAL) when fn was not run:
 * the caller then runs fn(arg) itself, blocking the loop, or refuses. */
int fiber_start(struct event_base *base, void (*fn)(void *), void *arg);
/* Waits until fd is ready for what (EV_READ and/or EV_WRITE) or
 * timeout_ms passes (< 0: no timeout). Inside a fiber the fiber sleeps in
 * the loop (one one-shot event); elsewhere poll(2) blocks the caller.
 * The EV_* flags that fired (EV_TIMEOUT on timeout; a hung up or failed
 * socket counts as readable and writable); -1 with errno: EINVAL (bad fd
 * or what), EBADF, ECANCELED (the fiber was cancelled: this and every
 * later wait of the fiber fail so, and fn should return). */
int fiber_wait_fd(int fd, short what, int timeout_ms);
/* The running fiber; NULL on the loop's own stack and on other threads. */
struct fiber *fiber_self(void);
/* For shutdown: every fiber of base that waits, and every fiber it
 * starts while unwinding, wakes with -1/ECANCELED and runs until fn
 * returns (then it is freed). Call on the loop's stack. The number of
 * fibers cancelled. */
unsigned fiber_cancel_all(struct event_base *base);
/* Fills *st with the counters. */
void fiber_stats(struct fiber_stats *st);
/* Unmaps the cached stacks (at exit, or to give memory back). */
void fiber_stacks_free(void);

#endif
