/* chatd/worker.h — slow CPU work (password hashing) off the event loop */
#ifndef CHATD_WORKER_H
#define CHATD_WORKER_H

struct event_base;
struct worker;

/* Runs on a worker thread: must not touch the loop or shared state. */
typedef void (*worker_fn)(void *arg);
/* Runs on the loop once fn has finished. */
typedef void (*worker_done)(void *arg);

/* Starts nthreads threads whose results come back on base. NULL on
 * failure. */
struct worker *worker_new(struct event_base *base, int nthreads);
/* Finishes queued jobs (their done callbacks run), then stops. */
void worker_free(struct worker *w);
/* Queues fn(arg) on a thread, then done(arg) on the loop. */
void worker_submit(struct worker *w, worker_fn fn, worker_done done,
    void *arg);

#endif
