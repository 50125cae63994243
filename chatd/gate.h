/* chatd/gate.h — loop-side work that touches the database, one job at a
 * time, on a fiber when the database is PostgreSQL */
#ifndef CHATD_GATE_H
#define CHATD_GATE_H

#include <stdint.h>
#include <sys/queue.h>

struct event;
struct event_base;

/*
 * Every piece of loop-side work that may call storage (a WebSocket
 * message, an HTTP request, the group commit, a timer, a worker's
 * completion, a message from Redis) is a job posted to the gate. Jobs run
 * one at a time, in the order they were posted, so storage calls of two
 * jobs never interleave on the one database connection of the loop, and
 * the chat state they change is changed by one job at a time, as if every
 * job ran straight from its callback.
 *
 * Off (SQLite, the default, and before gate_start): gate_post runs the
 * job at once, on the caller's stack: exactly a direct call.
 * On (PostgreSQL): jobs run on one fiber that drains the queue. When a
 * job's storage call waits for the server, the fiber sleeps in the loop
 * (db_set_waiter: fiber_wait_fd) and the loop goes on with everything
 * that does not touch the database (reading and parsing input, writing
 * output, pings, static files); jobs posted meanwhile queue behind it.
 * A job posted while the gate is idle starts at once, on the caller's
 * stack, until it first waits.
 *
 * docs/gate.md has the rules for code that runs in a job.
 */

struct gate_job;
typedef void (*gate_fn)(struct gate_job *j);

/* Embedded in the caller's state; the gate never allocates or frees it. */
struct gate_job {
	gate_fn fn;
	int queued; /* on the queue: not yet started */
	TAILQ_ENTRY(gate_job) link;
};

struct gate_stats {
	int on;              /* jobs run on a fiber (PostgreSQL) */
	uint64_t jobs;       /* jobs run */
	uint64_t deferred;   /* jobs that queued behind another */
	unsigned queued;     /* waiting now */
	unsigned max_queued; /* the most waiting at once */
	uint64_t waits;      /* storage waits that slept in the loop */
	uint64_t loop_waits; /* storage waits that blocked the loop: a bug */
	uint64_t input_holds; /* connections that stopped reading: their
	                         queue was full (gate_note_input_hold) */
};

/* Turns the gate on for base (jobs on a fiber). Call once before the
 * loop runs, and make storage wait through gate_db_wait (db_set_waiter:
 * the gate sits below storage and does not call it). 0, or -1. */
int gate_start(struct event_base *base);
/* Storage's waiter (db_set_waiter): on a fiber it sleeps in the loop;
 * elsewhere it polls, and on the loop's thread while the loop runs it
 * counts a loop wait (and aborts with CHATD_GATE_STRICT set in the
 * environment: the tests). what: GATE_WAIT_* flags, which are storage's
 * DB_WAIT_* (server.c checks). The flags ready, 0 on timeout, -1. */
#define GATE_WAIT_READ 1
#define GATE_WAIT_WRITE 2
int gate_db_wait(int fd, short what, int timeout_ms);
/* Whether the gate is on. */
int gate_on(void);
/* Marks the loop as running (1) or not (0): a storage wait on the loop's
 * own stack while it runs is counted in loop_waits and logged. */
void gate_loop_running(int running);
/* Runs j->fn(j) now (off, or idle) or queues it. A queued job is not
 * posted twice: posting it again does nothing. */
void gate_post(struct gate_job *j, gate_fn fn);
/* Takes j off the queue if it waits there (its owner is going). */
void gate_cancel(struct gate_job *j);
/* After the loop: wakes a job still waiting (its storage call fails),
 * then runs what is queued, and every later post, at once on the caller's
 * stack (storage then polls). Turns the gate off. */
void gate_stop(void);
void gate_stats(struct gate_stats *st);
/* Counts a connection that stopped reading because its work queued for
 * the gate reached its bound (the caller's). */
void gate_note_input_hold(void);
/* Jobs waiting now (0 when off). */
unsigned gate_queued(void);

/* event_new whose callback runs as a gate job: fires that come while the
 * job waits on the queue are merged (their flags or'ed). Use the event as
 * any other (event_add, event_active, evtimer_pending); free it with
 * gate_event_free, which also takes its job off the queue. Off, the
 * callback is the event's own: nothing in between. */
struct event *gate_event_new(struct event_base *base, int fd, short what,
    void (*cb)(int, short, void *), void *arg);
void gate_event_free(struct event *ev);

#endif
