/* chatd/worker.c — slow CPU work (password hashing) off the event loop */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

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
};

/* Two queues under one mutex: to do (threads take), done (loop takes,
 * woken through a pipe). */
struct worker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo, **todo_tail;
	struct job *done, **done_tail;
	int stopping;
	int nthreads;
	pthread_t threads[WORKER_MAX_THREADS];
	int pipe[2];
	struct event *ev;
	unsigned outstanding; /* submitted, done callback not yet run */
};

/* A thread: take a job, run it, hand it back to the loop. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *j;
	char b = 1;

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

/* Runs the done callbacks of finished jobs, on the loop. */
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
	while ((j = list) != NULL) {
		list = j->next;
		w->outstanding--;
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
	struct worker *w = xcalloc(1, sizeof *w);

	if (nthreads > WORKER_MAX_THREADS)
		nthreads = WORKER_MAX_THREADS;
	/* Jobs allocate big scratch (Argon2id: 19 MiB a hash). A fixed mmap
	 * threshold makes every such block an mmap given back on free; with
	 * glibc's sliding threshold each thread's arena kept ~20 MiB
	 * resident for good. */
	mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		free(w);
		return NULL;
	}
	w->ev = event_new(base, w->pipe[0], EV_READ | EV_PERSIST,
	    worker_event_cb, w);
	event_add(w->ev, NULL);
	for (w->nthreads = 0; w->nthreads < nthreads; w->nthreads++)
		if (pthread_create(&w->threads[w->nthreads], NULL, worker_main,
			w) != 0)
			break;
	if (w->nthreads == 0) {
		worker_free(w);
		return NULL;
	}
	return w;
}

void
worker_submit(struct worker *w, worker_fn fn, worker_done done, void *arg)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->fn = fn;
	j->done = done;
	j->arg = arg;
	w->outstanding++;
	pthread_mutex_lock(&w->mu);
	*w->todo_tail = j;
	w->todo_tail = &j->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	worker_drain(w);
	if (w->ev != NULL)
		event_free(w->ev);
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
