/* chatd/reader.h — reads whose cost depends on the request or on the data
 * (search) on reader threads, each with a read-only connection */
#ifndef CHATD_READER_H
#define CHATD_READER_H

struct db;
struct event_base;
struct reader;

#define READER_THREADS 2 /* threads, each with its own connection */
/* Jobs held at once (queued or running), and per key (a user): past them
 * reader_submit refuses and the caller answers 503 busy. Keys are served
 * in turn (chatd/fairq.c). */
#define READER_QUEUE_MAX 64
#define READER_QUEUE_PER_KEY 8
#define READER_BUDGET_MS 2000 /* --query-timeout-ms's default */

/* How a job ended, as its done callback sees it. */
enum reader_result {
	READER_OK = 0,         /* fn returned 0 */
	READER_ERROR = -1,     /* fn returned -1: a database error (logged) */
	READER_TIMEOUT = -2,   /* a statement ran out of the budget */
	READER_CANCELLED = -3, /* stopped by reader_cancel (shutdown) */
};

/* What reader_submit refuses with (as worker_submit). */
enum reader_error {
	READER_FULL = -1,     /* READER_QUEUE_MAX jobs held */
	READER_KEY_FULL = -2, /* READER_QUEUE_PER_KEY jobs of this key held */
};

/* Runs on a reader thread with its connection: plain reads through the
 * storage API, results into arg (never the loop's state). 0 or -1. */
typedef int (*reader_fn)(struct db *rdb, void *arg);
/* Runs on the loop once fn has finished, with a reader_result. */
typedef void (*reader_done)(void *arg, int result);

/* Opens nthreads read-only connections to db's file and starts a thread
 * on each; results come back on base. Every job's statements get at most
 * budget_ms of wall time (<= 0: no limit). NULL on failure (logged). */
struct reader *reader_new(struct event_base *base, struct db *db, int nthreads,
                          int budget_ms);
/* Cancels what runs and what is queued (reader_cancel), waits for the
 * threads, runs the done callbacks and closes the connections. NULL is
 * a no-op. */
void reader_free(struct reader *r);
/* Its done callbacks run straight from the loop, not as gate jobs: for
 * readers whose callbacks touch no database of the loop's (/metrics). */
void reader_ungate(struct reader *r);
/* From now on every job ends promptly with READER_CANCELLED: a running
 * statement stops at its next budget check. For shutdown. */
void reader_cancel(struct reader *r);
/* Queues fn(rdb, arg) on a reader thread, then done(arg, result) on the
 * loop, as a job of key (fairly shared): 0, or a negative reader_error
 * (nothing queued, done will not run). */
int reader_submit(struct reader *r, const char *key, reader_fn fn,
                  reader_done done, void *arg);
/* Jobs held now (queued or running, done not yet run). */
unsigned reader_jobs(const struct reader *r);

#endif
