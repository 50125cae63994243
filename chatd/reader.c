/* chatd/reader.c — reads whose cost depends on the request or on the data
 * (search) on reader threads, each with a read-only connection */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chatd/log.h"
#include "chatd/reader.h"
#include "chatd/worker.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

/*
 * The threads are a worker pool (chatd/worker.c: fair bounded queue,
 * completions posted back to the loop through a pipe) whose thread i
 * holds the connection rdbs[i] as its context. A job starts its budget,
 * runs, and records how it ended; the done callback sees that on the
 * loop.
 */
struct reader {
	struct worker *w;
	struct db *rdbs[READER_THREADS];
	int n;
	int budget_ms;
	int cancelled; /* reader_cancel was called (loop thread) */
};

/* A submitted job, wrapped. */
struct reader_job {
	struct reader *r;
	reader_fn fn;
	reader_done done;
	void *arg;
	int result;
};

/* Reader threads run at this nice value, below the loop (0): where they
 * share a core with it (taskset, or a busy machine), a search takes the
 * loop's idle time rather than its turn (weights 110 against 1024). */
#define READER_NICE 10

/* Once per thread: lowers its priority to READER_NICE. */
static void
reader_nice(void)
{
	static __thread int done;

	if (done)
		return;
	done = 1;
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), READER_NICE) !=
	    0)
		log_debug("%s: setpriority: %s", __func__, strerror(errno));
}

/* On a reader thread: the job against the thread's connection. */
static void
reader_run(void *arg)
{
	struct reader_job *j = arg;
	struct db *rdb = worker_ctx();

	reader_nice();
	db_budget_start(rdb, j->r->budget_ms);
	if (j->fn(rdb, j->arg) == 0)
		j->result = READER_OK;
	else if (!db_budget_exceeded(rdb))
		j->result = READER_ERROR;
	else
		j->result = READER_TIMEOUT;
}

/* On the loop: hands the result over. A job stopped by reader_cancel
 * reads as cancelled, whatever stopped it first. */
static void
reader_done_cb(void *arg)
{
	struct reader_job *j = arg;
	int result = j->result;

	if (result == READER_TIMEOUT && j->r->cancelled)
		result = READER_CANCELLED;
	j->done(j->arg, result);
	free(j);
}

struct reader *
reader_new(struct event_base *base, struct db *db, int nthreads, int budget_ms)
{
	struct reader *r = xcalloc(1, sizeof *r);

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > READER_THREADS)
		nthreads = READER_THREADS;
	r->budget_ms = budget_ms;
	for (r->n = 0; r->n < nthreads; r->n++)
		if (db_open_reader(db, &r->rdbs[r->n]) != 0)
			goto fail;
	r->w = worker_new_ctx(base, r->n, READER_QUEUE_MAX,
	                      READER_QUEUE_PER_KEY, (void *const *)r->rdbs);
	if (r->w == NULL)
		goto fail;
	return r;
fail:
	log_error("%s: cannot start the reader threads", __func__);
	reader_free(r);
	return NULL;
}

void
reader_ungate(struct reader *r)
{
	worker_ungate(r->w);
}

void
reader_cancel(struct reader *r)
{
	if (r == NULL || r->cancelled)
		return;
	r->cancelled = 1;
	for (int i = 0; i < r->n; i++)
		db_cancel(r->rdbs[i]);
}

void
reader_free(struct reader *r)
{
	if (r == NULL)
		return;
	reader_cancel(r);
	worker_free(r->w); /* the queued jobs end at once, cancelled */
	for (int i = 0; i < r->n; i++)
		db_close(r->rdbs[i]);
	free(r);
}

int
reader_submit(struct reader *r, const char *key, reader_fn fn, reader_done done,
              void *arg)
{
	struct reader_job *j = xcalloc(1, sizeof *j);
	int rc;

	j->r = r;
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	rc = worker_submit(r->w, key, reader_run, reader_done_cb, j);
	if (rc != 0) {
		free(j);
		return rc == WORKER_FULL ? READER_FULL : READER_KEY_FULL;
	}
	return 0;
}

unsigned
reader_jobs(const struct reader *r)
{
	return r != NULL ? worker_jobs(r->w) : 0;
}
