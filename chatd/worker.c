/* chatd/worker.c — slow CPU work (password hashing) off the event loop */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "chatd/fairq.h"
#include "chatd/gate.h"
#include "chatd/log.h"
#include "chatd/worker.h"
#include "chatd/xmalloc.h"

#define WORKER_MAX_THREADS 8
#define WORKER_MMAP_THRESHOLD (1024 * 1024)

struct job {
	worker_fn fn;
	worker_done done;
	void *arg;
	struct job *next;
	char key[FAIRQ_KEY_MAX + 1];
};

/* A thread and the context its jobs see (worker_ctx). */
struct worker_thread {
	struct worker *w;
	void *ctx;
	pthread_t thread;
};

/* The calling worker thread's context (NULL off the pool). */
static __thread void *worker_tls_ctx;

/* Two queues under one mutex: to do (threads take), done (loop takes,
 * woken through a pipe). Jobs wait in the fair queue, on the loop, until
 * a thread is free: todo never holds more than nthreads. */
struct worker {
	struct fairq *fq;
	unsigned running; /* moved to todo, done callback not yet run */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo, **todo_tail;
	struct job *done, **done_tail;
	int stopping;
	int nthreads;
	struct worker_thread threads[WORKER_MAX_THREADS];
	int pipe[2];
	struct event *ev;
};

/* A thread: take a job, run it, hand it back to the loop. */
static void *
worker_main(void *arg)
{
	struct worker_thread *t = arg;
	struct worker *w = t->w;
	struct job *j;
	char b = 1;

	worker_tls_ctx = t->ctx;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->todo == NULL && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->todo == NULL)
			break;
		j = w->todo;
		w->todo = j->next;
		if (w->todo == NULL)
			w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->mu);
		j->fn(j->arg);
		pthread_mutex_lock(&w->mu);
		j->next = NULL;
		*w->done_tail = j;
		w->done_tail = &j->next;
		if (write(w->pipe[1], &b, 1) < 0)
			log_warn("%s: wake-up write failed", __func__);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Moves jobs from the fair queue to the threads while fewer than max run. */
static void
worker_dispatch(struct worker *w, unsigned max)
{
	struct job *j;

	while (w->running < max && (j = fairq_pop(w->fq)) != NULL) {
		w->running++;
		j->next = NULL;
		pthread_mutex_lock(&w->mu);
		*w->todo_tail = j;
		w->todo_tail = &j->next;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
}

/* Runs the done callbacks of finished jobs, on the loop, after giving
 * the freed threads their next jobs. */
static void
worker_drain(struct worker *w)
{
	struct job *list, *j;
	char buf[64];

	while (read(w->pipe[0], buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&w->mu);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	for (j = list; j != NULL; j = j->next) {
		w->running--;
		fairq_done(w->fq, j->key);
	}
	worker_dispatch(w, (unsigned)w->nthreads);
	while ((j = list) != NULL) {
		list = j->next;
		j->done(j->arg);
		free(j);
	}
}

static void
worker_event_cb(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_drain(arg);
}

struct worker *
worker_new(struct event_base *base, int nthreads)
{
	/* Jobs allocate big scratch (Argon2id: 19 MiB a hash). A fixed mmap
	 * threshold makes every such block an mmap given back on free; with
	 * glibc's sliding threshold each thread's arena kept ~20 MiB
	 * resident for good. */
	mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD);
	return worker_new_ctx(base, nthreads, WORKER_QUEUE_MAX,
	    WORKER_QUEUE_PER_KEY, NULL);
}

struct worker *
worker_new_ctx(struct event_base *base, int nthreads, unsigned max,
    unsigned per_key, void *const *ctx)
{
	struct worker *w = xcalloc(1, sizeof *w);

	if (nthreads > WORKER_MAX_THREADS)
		nthreads = WORKER_MAX_THREADS;
	w->fq = fairq_new(max, per_key);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		fairq_free(w->fq);
		free(w);
		return NULL;
	}
	w->ev = gate_event_new(base, w->pipe[0], EV_READ | EV_PERSIST,
	    worker_event_cb, w);
	event_add(w->ev, NULL);
	for (w->nthreads = 0; w->nthreads < nthreads; w->nthreads++) {
		struct worker_thread *t = &w->threads[w->nthreads];

		t->w = w;
		t->ctx = ctx != NULL ? ctx[w->nthreads] : NULL;
		if (pthread_create(&t->thread, NULL, worker_main, t) != 0)
			break;
	}
	if (w->nthreads == 0) {
		worker_free(w);
		return NULL;
	}
	return w;
}

int
worker_submit(struct worker *w, const char *key, worker_fn fn,
    worker_done done, void *arg)
{
	struct job *j = xcalloc(1, sizeof *j);
	int rc;

	j->fn = fn;
	j->done = done;
	j->arg = arg;
	strncpy(j->key, key, FAIRQ_KEY_MAX);
	if ((rc = fairq_push(w->fq, j->key, j)) != 0) {
		free(j);
		return rc == FAIRQ_FULL ? WORKER_FULL : WORKER_KEY_FULL;
	}
	worker_dispatch(w, (unsigned)w->nthreads);
	return 0;
}

void
worker_ungate(struct worker *w)
{
	struct event *ev = event_new(event_get_base(w->ev), w->pipe[0],
	    EV_READ | EV_PERSIST, worker_event_cb, w);

	if (ev == NULL)
		return; /* keeps the gated one */
	gate_event_free(w->ev);
	w->ev = ev;
	event_add(w->ev, NULL);
}

void *
worker_ctx(void)
{
	return worker_tls_ctx;
}

unsigned
worker_jobs(const struct worker *w)
{
	return fairq_held(w->fq);
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	/* Every queued job to the threads: they finish todo, then exit. */
	worker_dispatch(w, UINT32_MAX);
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i].thread, NULL);
	worker_drain(w);
	if (w->ev != NULL)
		gate_event_free(w->ev);
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	fairq_free(w->fq);
	free(w);
}
