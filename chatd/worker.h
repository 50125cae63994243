/* chatd/worker.h — slow work off the event loop: password hashing, and the
 * reader threads of chatd/reader.c (a context per thread) */
#ifndef CHATD_WORKER_H
#define CHATD_WORKER_H

struct event_base;
struct worker;

/* Jobs held at once (queued or running), and per key (client address):
 * past them worker_submit refuses, and the caller answers 503. Keys are
 * served in turn, so a key's job waits behind at most one job of each
 * other key. */
#define WORKER_QUEUE_MAX 64
#define WORKER_QUEUE_PER_KEY 8

/* What worker_submit refuses with. */
enum worker_error {
	WORKER_FULL = -1,     /* WORKER_QUEUE_MAX jobs held */
	WORKER_KEY_FULL = -2, /* WORKER_QUEUE_PER_KEY jobs of this key held */
};

/* Runs on a worker thread: must not touch the loop or shared state. */
typedef void (*worker_fn)(void *arg);
/* Runs on the loop once fn has finished. */
typedef void (*worker_done)(void *arg);

/* Starts nthreads threads whose results come back on base. NULL on
 * failure. */
struct worker *worker_new(struct event_base *base, int nthreads);
/* A pool of nthreads threads (at most 8) whose queue holds max jobs,
 * per_key of them per key, and whose thread i hands ctx[i] (ctx NULL:
 * none) to its jobs through worker_ctx. NULL on failure. */
struct worker *worker_new_ctx(struct event_base *base, int nthreads,
    unsigned max, unsigned per_key, void *const *ctx);
/* On a worker thread, inside a job: the thread's context; NULL
 * elsewhere. */
void *worker_ctx(void);
/* Finishes queued jobs (their done callbacks run), then stops. */
void worker_free(struct worker *w);
/* The done callbacks run straight from the loop, not as gate jobs
 * (gate.h): for callbacks that touch no database of the loop's. */
void worker_ungate(struct worker *w);
/* Queues fn(arg) on a thread, then done(arg) on the loop, as a job of key
 * (fairly shared, see WORKER_QUEUE_MAX): 0, or a negative worker_error
 * (nothing queued, done will not run). */
int worker_submit(struct worker *w, const char *key, worker_fn fn,
    worker_done done, void *arg);
/* Jobs held now (queued or running, done not yet run). */
unsigned worker_jobs(const struct worker *w);

#endif
