/* chatd/gate.c — loop-side work that touches the database, one job at a
 * time, on a fiber when the database is PostgreSQL (gate.h, docs/gate.md) */
#include <execinfo.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "chatd/fiber.h"
#include "chatd/gate.h"
#include "chatd/log.h"
#include "chatd/xmalloc.h"

TAILQ_HEAD(gate_queue, gate_job);

/* One loop per process: one gate. */
static struct {
	struct event_base *base;
	int on;
	int running;   /* the draining fiber exists (maybe waiting) */
	int stopping;  /* gate_stop: the draining fiber must not go on */
	int loop;      /* the loop runs (gate_loop_running) */
	int strict;    /* CHATD_GATE_STRICT set: a loop wait aborts */
	pthread_t loop_thread;
	struct gate_queue q;
	struct gate_stats st;
} g = {.q = TAILQ_HEAD_INITIALIZER(g.q)};

/* A poll on the loop's own thread while the loop runs is a job that did
 * not go through the gate: counted, the first logged with where it came
 * from. */
int
gate_db_wait(int fd, short what, int timeout_ms)
{
	short ev = 0;
	int r;

	if (what & GATE_WAIT_READ)
		ev |= EV_READ;
	if (what & GATE_WAIT_WRITE)
		ev |= EV_WRITE;
	if (fiber_self() != NULL) {
		g.st.waits++;
	} else if (g.loop && pthread_equal(pthread_self(), g.loop_thread)) {
		if (g.st.loop_waits++ == 0) {
			void *bt[32];
			int n = backtrace(bt, 32);

			log_error("gate: the loop waited for the database outside "
			    "a gate job (a bug); called from:");
			backtrace_symbols_fd(bt, n, STDERR_FILENO);
		}
		if (g.strict)
			abort(); /* the tests: a bug must not pass unseen */
	}
	r = fiber_wait_fd(fd, ev, timeout_ms);
	if (r < 0)
		return -1;
	return ((r & EV_READ) ? GATE_WAIT_READ : 0) |
	    ((r & EV_WRITE) ? GATE_WAIT_WRITE : 0);
}

int
gate_start(struct event_base *base)
{
	g.base = base;
	g.on = 1;
	g.stopping = 0;
	g.loop_thread = pthread_self();
	g.strict = getenv("CHATD_GATE_STRICT") != NULL &&
	    *getenv("CHATD_GATE_STRICT") != '\0';
	return 0;
}

int
gate_on(void)
{
	return g.on;
}

void
gate_loop_running(int running)
{
	g.loop = running;
	g.loop_thread = pthread_self();
}

/* Takes the first job off the queue; NULL if none. */
static struct gate_job *
gate_next(void)
{
	struct gate_job *j = TAILQ_FIRST(&g.q);

	if (j != NULL) {
		TAILQ_REMOVE(&g.q, j, link);
		j->queued = 0;
		g.st.queued--;
	}
	return j;
}

/* The draining fiber: runs the queue's jobs in order until it is empty.
 * A job may free itself (its owner's state). */
static void
gate_drain(void *arg)
{
	struct gate_job *j;

	(void)arg;
	while (!g.stopping && (j = gate_next()) != NULL) {
		g.st.jobs++;
		j->fn(j);
	}
	g.running = 0;
}

void
gate_post(struct gate_job *j, gate_fn fn)
{
	j->fn = fn;
	if (!g.on) {
		g.st.jobs++;
		fn(j);
		return;
	}
	if (j->queued)
		return;
	TAILQ_INSERT_TAIL(&g.q, j, link);
	j->queued = 1;
	if (++g.st.queued > g.st.max_queued)
		g.st.max_queued = g.st.queued;
	if (g.running) {
		g.st.deferred++;
		return;
	}
	g.running = 1;
	if (fiber_start(g.base, gate_drain, NULL) != 0) {
		/* No memory for a fiber: run on this stack (storage blocks
		 * the loop this once, and is counted so). */
		log_warn("gate: cannot start a fiber: the job runs on the "
		    "loop");
		gate_drain(NULL);
	}
}

void
gate_cancel(struct gate_job *j)
{
	if (!j->queued)
		return;
	TAILQ_REMOVE(&g.q, j, link);
	j->queued = 0;
	g.st.queued--;
}

void
gate_stop(void)
{
	struct gate_job *j;

	if (!g.on)
		return;
	g.stopping = 1;
	if (g.running)
		fiber_cancel_all(g.base);
	g.on = 0;
	g.loop = 0;
	while ((j = gate_next()) != NULL) {
		g.st.jobs++;
		j->fn(j);
	}
}

void
gate_note_input_hold(void)
{
	g.st.input_holds++;
}

unsigned
gate_queued(void)
{
	return g.st.queued;
}

void
gate_stats(struct gate_stats *st)
{
	*st = g.st;
	st->on = g.on;
}

/* An event whose callback runs as a job. */
struct gate_ev {
	struct gate_job job;
	void (*cb)(int, short, void *);
	void *arg;
	int fd;
	short what; /* fired since the job was queued */
};

static void
gate_ev_run(struct gate_job *j)
{
	struct gate_ev *ge = (struct gate_ev *)j;
	short what = ge->what;

	ge->what = 0;
	ge->cb(ge->fd, what, ge->arg); /* may free ge: not touched after */
}

static void
gate_ev_fire(int fd, short what, void *arg)
{
	struct gate_ev *ge = arg;

	(void)fd;
	ge->what |= what;
	gate_post(&ge->job, gate_ev_run);
}

struct event *
gate_event_new(struct event_base *base, int fd, short what,
    void (*cb)(int, short, void *), void *arg)
{
	struct gate_ev *ge;
	struct event *ev;

	if (!g.on)
		return event_new(base, fd, what, cb, arg);
	ge = xcalloc(1, sizeof *ge);
	ge->cb = cb;
	ge->arg = arg;
	ge->fd = fd;
	if ((ev = event_new(base, fd, what, gate_ev_fire, ge)) == NULL)
		free(ge);
	return ev;
}

void
gate_event_free(struct event *ev)
{
	struct gate_ev *ge;

	if (ev == NULL)
		return;
	if (event_get_callback(ev) == gate_ev_fire) {
		ge = event_get_callback_arg(ev);
		gate_cancel(&ge->job);
		free(ge);
	}
	event_free(ev);
}
