/* tests/unit/test_reader.c — chatd/reader.c: search on reader threads with
 * read-only connections, the time budget, the queue bound, cancelling */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "chatd/reader.h"
#include "storage/db.h"
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

#define SLOW_ROWS 60 /* messages of SLOW_LEN 'a's */
#define SLOW_LEN 4000
#define SLOW_QUERY 1000 /* a query of that many 'a's: ~10 ms a row */

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	struct db *db;
	struct event_base *base;
	struct reader *r;
	int64_t ann, bob;
	struct room lobby, other;
	int64_t seq;
	int pending; /* jobs whose done callback has not run */
};

/* A search job: what it asks, what it found, how it ended. */
struct tjob {
	struct fixture *f;
	int64_t user_id, room_id;
	const char *q;
	int64_t ids[16];
	int nids;
	int result;
	int done;
	int started[2]; /* with notify: a pipe the job writes to on start */
	int notify;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "reader"), 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_set_durability(f->db, DB_DURABILITY_NORMAL), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &f->ann), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &f->bob), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &f->lobby),
	                 0);
	assert_int_equal(room_create(f->db, "other", ROOM_PUBLIC, 1, &f->other),
	                 0);
	assert_int_equal(member_add(f->db, f->lobby.id, f->ann, 0, 1), 0);
	assert_int_equal(member_add(f->db, f->other.id, f->bob, 0, 1), 0);
	f->base = event_base_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	reader_free(f->r);
	event_base_free(f->base);
	db_close(f->db);
	tmpdb_remove(f->dir, f->path);
	free(f);
	return 0;
}

/* Stores text in room and indexes it, committed (as chat_index does). */
static int64_t
post(struct fixture *f, int64_t room_id, int64_t user_id, const char *text)
{
	struct message m = {0};

	m.id = ++f->seq;
	m.room_id = room_id;
	m.user_id = user_id;
	m.text = text;
	m.text_len = strlen(text);
	m.ts = 1000 + m.id;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
	return m.id;
}

/* Indexes everything stored, in a committed transaction. */
static void
index_all(struct fixture *f)
{
	assert_int_equal(db_begin(f->db), 0);
	assert_true(message_index_pending(f->db, INT64_MAX) >= 0);
	assert_int_equal(db_commit(f->db), 0);
}

/* SLOW_ROWS long messages in bob's room "other", which ann's search for
 * SLOW_QUERY 'a's walks row by row (FTS5 checks a phrase of ~1000
 * trigrams against ~4000 positions in each), to find none of them: she
 * is not in the room (the case of a term common in rooms the user is
 * not in). */
static void
post_slow(struct fixture *f)
{
	char *text = malloc(SLOW_LEN + 1);

	memset(text, 'a', SLOW_LEN);
	text[SLOW_LEN] = '\0';
	assert_int_equal(db_begin(f->db), 0);
	for (int i = 0; i < SLOW_ROWS; i++)
		post(f, f->other.id, f->bob, text);
	assert_int_equal(db_commit(f->db), 0);
	free(text);
	index_all(f);
}

/* The query of post_slow. */
static const char *
slow_query(void)
{
	static char q[SLOW_QUERY + 1];

	memset(q, 'a', SLOW_QUERY);
	return q;
}

static int
collect(void *arg, const struct message *m)
{
	struct tjob *j = arg;

	if (j->nids < 16)
		j->ids[j->nids++] = m->id;
	return 0;
}

/* On a reader thread. */
static int
tjob_run(struct db *rdb, void *arg)
{
	struct tjob *j = arg;

	if (j->notify)
		assert_int_equal(write(j->started[1], "s", 1), 1);
	if (j->q == slow_query() && tmpdb_pg()) {
		/* PostgreSQL's trigram search of post_slow's rows is quick:
		 * the slow job is a statement that takes 30 s, stopped by
		 * the same budget and cancel as any other. */
		struct db_stmt *st = db_prepare(rdb, "SELECT pg_sleep(30)");
		int rc = st != NULL ? db_step(st) : -1;

		db_reset(st);
		return rc == DB_ROW ? 0 : -1;
	}
	return message_search(rdb, j->user_id, j->room_id, j->q, 16, collect,
	                      j);
}

/* On the loop. */
static void
tjob_done(void *arg, int result)
{
	struct tjob *j = arg;

	j->result = result;
	j->done++;
	if (--j->f->pending == 0)
		event_base_loopbreak(j->f->base);
}

static int
submit(struct fixture *f, struct tjob *j, const char *key)
{
	int rc;

	j->f = f;
	rc = reader_submit(f->r, key, tjob_run, tjob_done, j);
	if (rc == 0)
		f->pending++;
	return rc;
}

/* Runs the loop until every submitted job is done. */
static void
wait_all(struct fixture *f)
{
	if (f->pending > 0)
		event_base_dispatch(f->base);
	assert_int_equal(f->pending, 0);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_reader_search_finds_what_was_committed(void **state)
{
	struct fixture *f = *state;
	struct tjob j1 = {.user_id = 0, .q = "hello"};
	struct tjob j2 = {.q = "hello"};
	int64_t a, b, c;

	a = post(f, f->lobby.id, f->ann, "hello world");
	b = post(f, f->other.id, f->bob, "hello there");
	index_all(f);
	f->r = reader_new(f->base, f->db, 2, 0);
	assert_non_null(f->r);
	j1.user_id = f->ann; /* ann's rooms: the lobby only */
	assert_int_equal(submit(f, &j1, "ann"), 0);
	wait_all(f);
	assert_int_equal(j1.result, READER_OK);
	assert_int_equal(j1.nids, 1);
	assert_int_equal(j1.ids[0], a);
	/* A commit made before the next job is submitted is in its
	 * snapshot (the reader's connection stays open in between). */
	c = post(f, f->lobby.id, f->ann, "hello again");
	index_all(f);
	j2.user_id = f->bob;
	j2.room_id = f->lobby.id; /* a public room bob may read */
	assert_int_equal(submit(f, &j2, "bob"), 0);
	wait_all(f);
	assert_int_equal(j2.result, READER_OK);
	assert_int_equal(j2.nids, 2);
	assert_int_equal(j2.ids[0], c);
	assert_int_equal(j2.ids[1], a);
	(void)b;
}

static void
test_reader_connection_is_read_only(void **state)
{
	struct fixture *f = *state;
	struct db *rdb;
	int64_t id;

	assert_int_equal(db_open_reader(f->db, &rdb), 0);
	assert_int_equal(db_check(rdb), 0);
	assert_int_equal(user_create(rdb, "cat", "h", 1, &id), -1);
	db_close(rdb);
}

static void
test_reader_budget_stops_a_long_query(void **state)
{
	struct fixture *f = *state;
	struct tjob slow = {.q = slow_query()};
	struct tjob quick = {.q = "hello"};
	int64_t t0, ms;

	post(f, f->lobby.id, f->ann, "hello");
	post_slow(f);
	f->r = reader_new(f->base, f->db, 1, 50);
	assert_non_null(f->r);
	slow.user_id = f->ann;
	t0 = now_ms();
	assert_int_equal(submit(f, &slow, "bob"), 0);
	wait_all(f);
	ms = now_ms() - t0;
	assert_int_equal(slow.result, READER_TIMEOUT);
	assert_int_equal(slow.done, 1);
	/* Stopped near the budget: the whole walk takes several times it
	 * (and rows are checked ~10 ms apart). */
	assert_true(ms >= 50);
	assert_true(ms < 1500);
	/* The same thread and connection go on with the next job. */
	quick.user_id = f->ann;
	assert_int_equal(submit(f, &quick, "ann"), 0);
	wait_all(f);
	assert_int_equal(quick.result, READER_OK);
	assert_int_equal(quick.nids, 1);
}

static void
test_reader_queue_is_bounded(void **state)
{
	struct fixture *f = *state;
	static struct tjob jobs[READER_QUEUE_MAX + 2];
	char key[16];
	int n = 0;

	memset(jobs, 0, sizeof jobs);
	f->r = reader_new(f->base, f->db, 2, 0);
	assert_non_null(f->r);
	/* Done callbacks run only on the loop, which is not running: every
	 * submitted job stays held. */
	for (int i = 0; i < READER_QUEUE_PER_KEY; i++) {
		jobs[n].q = "x";
		assert_int_equal(submit(f, &jobs[n++], "k0"), 0);
	}
	jobs[n].q = "x";
	assert_int_equal(submit(f, &jobs[n], "k0"), READER_KEY_FULL);
	for (int k = 1; n < READER_QUEUE_MAX; k++) {
		snprintf(key, sizeof key, "k%d", k);
		for (int i = 0;
		     i < READER_QUEUE_PER_KEY && n < READER_QUEUE_MAX; i++) {
			jobs[n].q = "x";
			assert_int_equal(submit(f, &jobs[n++], key), 0);
		}
	}
	assert_int_equal(reader_jobs(f->r), READER_QUEUE_MAX);
	jobs[n].q = "x";
	assert_int_equal(submit(f, &jobs[n], "new"), READER_FULL);
	wait_all(f);
	assert_int_equal(reader_jobs(f->r), 0);
	for (int i = 0; i < READER_QUEUE_MAX; i++) {
		assert_int_equal(jobs[i].done, 1);
		assert_int_equal(jobs[i].result, READER_OK);
	}
	assert_int_equal(jobs[READER_QUEUE_MAX].done, 0);
	/* Room again. */
	assert_int_equal(submit(f, &jobs[READER_QUEUE_MAX], "new"), 0);
	wait_all(f);
}

static void
test_reader_cancel_stops_a_running_query(void **state)
{
	struct fixture *f = *state;
	struct tjob slow = {.q = slow_query(), .notify = 1};
	int64_t t0;
	char c;

	post_slow(f);
	f->r = reader_new(f->base, f->db, 1, 0); /* no budget */
	assert_non_null(f->r);
	slow.user_id = f->ann;
	assert_int_equal(pipe(slow.started), 0);
	assert_int_equal(submit(f, &slow, "bob"), 0);
	/* Blocks until the reader thread has started the job. */
	assert_int_equal(read(slow.started[0], &c, 1), 1);
	close(slow.started[0]);
	close(slow.started[1]);
	t0 = now_ms();
	reader_cancel(f->r);
	wait_all(f);
	assert_int_equal(slow.result, READER_CANCELLED);
	assert_true(now_ms() - t0 < 1500);
}

/* Shutdown with jobs running and queued: reader_free ends them all
 * (their done callbacks run, cancelled) without waiting them out. */
static void
test_reader_free_ends_running_and_queued_jobs(void **state)
{
	struct fixture *f = *state;
	struct tjob jobs[5];
	int64_t t0;

	post_slow(f);
	f->r = reader_new(f->base, f->db, 2, 0);
	assert_non_null(f->r);
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < 5; i++) {
		jobs[i].q = slow_query();
		jobs[i].user_id = f->ann;
		assert_int_equal(submit(f, &jobs[i], "bob"), 0);
	}
	t0 = now_ms();
	reader_free(f->r);
	f->r = NULL;
	assert_true(now_ms() - t0 < 1500);
	assert_int_equal(f->pending, 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(jobs[i].done, 1);
		assert_int_equal(jobs[i].result, READER_CANCELLED);
	}
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_reader_search_finds_what_was_committed),
	    T(test_reader_connection_is_read_only),
	    T(test_reader_budget_stops_a_long_query),
	    T(test_reader_queue_is_bounded),
	    T(test_reader_cancel_stops_a_running_query),
	    T(test_reader_free_ends_running_and_queued_jobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
