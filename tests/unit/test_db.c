/* tests/unit/test_db.c — storage/db.c: open, migrations, epoch, statements */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "chatd/log.h"
#include "storage/db.h"
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "db"), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[TMPDB_PATH_MAX + 16];

	db_close(f->db);
	snprintf(p, sizeof p, "%s/sub", f->dir);
	chmod(p, 0700);
	rmdir(p);
	tmpdb_remove(f->dir, f->path);
	free(f);
	return 0;
}

/* Runs sql (no rows) on the file through a second connection. */
static void
raw_exec(const char *path, const char *sql)
{
	struct db *db;
	struct db_stmt *st;
	char err[256];

	assert_int_equal(db_open(&db, path, err, sizeof err), 0);
	st = db_prepare(db, sql);
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_DONE);
	db_reset(st);
	db_close(db);
}

/* The first column of the first row of sql, through a second connection
 * to an already migrated file. */
static void
raw_query(const char *path, const char *sql, char *out, size_t len)
{
	struct db *db;
	struct db_stmt *st;
	char err[256];

	assert_int_equal(db_open(&db, path, err, sizeof err), 0);
	st = db_prepare(db, sql);
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	snprintf(out, len, "%s", db_column_text(st, 0, NULL));
	db_reset(st);
	db_close(db);
}

static void
test_db_open_creates_database_at_latest_version(void **state)
{
	struct fixture *f = *state;
	char err[256], v[32];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_check(f->db), 0);
	assert_true(db_schema_version() >= 1);
	assert_int_equal(db_max_seq(f->db), 0);
	raw_query(f->path, "PRAGMA user_version", v, sizeof v);
	assert_int_equal(atoi(v), db_schema_version());
}

static void
test_db_open_uses_wal_mode(void **state)
{
	struct fixture *f = *state;
	char err[256], v[32];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	raw_query(f->path, "PRAGMA journal_mode", v, sizeof v);
	assert_string_equal(v, "wal");
}

static void
test_db_open_twice_is_idempotent(void **state)
{
	struct fixture *f = *state;
	char err[256], epoch[EPOCH_LEN + 1];
	struct db *second;
	int64_t id;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	strcpy(epoch, db_epoch(f->db));
	/* A second connection while the first is open (admin CLI). */
	assert_int_equal(db_open(&second, f->path, err, sizeof err), 0);
	assert_string_equal(db_epoch(second), epoch);
	assert_int_equal(user_by_name(second, "ann", NULL, NULL, 0), 0);
	db_close(second);
	db_close(f->db);
	f->db = NULL;
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, NULL, 0), 0);
}

static void
test_db_epoch_is_hex_and_stable_across_reopen(void **state)
{
	struct fixture *f = *state;
	char err[256], epoch[EPOCH_LEN + 1];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(strlen(db_epoch(f->db)), EPOCH_LEN);
	assert_int_equal(strspn(db_epoch(f->db), "0123456789abcdef"),
	                 EPOCH_LEN);
	strcpy(epoch, db_epoch(f->db));
	db_close(f->db);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_string_equal(db_epoch(f->db), epoch);
}

static void
test_db_new_epoch_changes_it_durably(void **state)
{
	struct fixture *f = *state;
	char err[256], old[EPOCH_LEN + 1], new[EPOCH_LEN + 1];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	strcpy(old, db_epoch(f->db));
	assert_int_equal(db_new_epoch(f->db), 0);
	strcpy(new, db_epoch(f->db));
	assert_string_not_equal(old, new);
	assert_int_equal(strlen(new), EPOCH_LEN);
	db_close(f->db);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_string_equal(db_epoch(f->db), new);
}

static void
test_db_open_refuses_newer_schema(void **state)
{
	struct fixture *f = *state;
	char err[256], want[128];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	db_close(f->db);
	f->db = NULL;
	raw_exec(f->path, "PRAGMA user_version = 999");
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), -1);
	assert_null(f->db);
	snprintf(want, sizeof want,
	         "database schema version 999 is newer than this chatd (%d)",
	         db_schema_version());
	assert_string_equal(err, want);
}

static void
test_db_open_refuses_file_that_is_not_a_database(void **state)
{
	struct fixture *f = *state;
	char err[256];
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database at all\n", fp);
	fclose(fp);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), -1);
	assert_null(f->db);
	assert_non_null(strstr(err, "is not a database"));
	assert_non_null(strstr(err, f->path));
}

static void
test_db_open_reports_unwritable_directory(void **state)
{
	struct fixture *f = *state;
	char err[256], path[128];

	if (geteuid() == 0) {
		/* root writes anywhere: use a missing directory instead. */
		snprintf(path, sizeof path, "%s/missing/chat.db", f->dir);
	} else {
		snprintf(path, sizeof path, "%s/sub", f->dir);
		assert_int_equal(mkdir(path, 0500), 0);
		snprintf(path, sizeof path, "%s/sub/chat.db", f->dir);
	}
	assert_int_equal(db_open(&f->db, path, err, sizeof err), -1);
	assert_null(f->db);
	assert_non_null(strstr(err, "cannot open database"));
	assert_non_null(strstr(err, path));
}

static void
test_db_migrations_are_numbered_from_one(void **state)
{
	(void)state;
	assert_true(db_migrations_count >= 1);
	for (size_t i = 0; i < db_migrations_count; i++)
		assert_int_equal(db_migrations[i].version, (int)i + 1);
	assert_int_equal(db_schema_version(), (int)db_migrations_count);
}

static void
test_db_rollback_undoes_transaction(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int64_t id;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(db_rollback(f->db), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, NULL, 0), 1);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &id), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(user_by_name(f->db, "bob", NULL, NULL, 0), 0);
}

static void
test_db_savepoint_inside_transaction_rolls_back_only_itself(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int64_t id;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(db_savepoint(f->db), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &id), 0);
	assert_int_equal(db_rollback_to(f->db), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, NULL, 0), 0);
	assert_int_equal(user_by_name(f->db, "bob", NULL, NULL, 0), 1);
}

static void
test_db_step_refuses_unbound_parameter(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct db_stmt *st;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	st = db_prepare(f->db, "SELECT :a + :b");
	assert_non_null(st);
	db_bind_int64(st, ":a", 1);
	assert_int_equal(db_step(st), -1);
	db_reset(st);
	db_bind_int64(st, ":a", 1);
	db_bind_int64(st, ":b", 2);
	assert_int_equal(db_step(st), DB_ROW);
	assert_int_equal(db_column_int64(st, 0), 3);
	db_reset(st);
	/* Bindings are cleared by the reset. */
	assert_int_equal(db_step(st), -1);
	db_reset(st);
}

static void
test_db_step_refuses_unknown_parameter_name(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct db_stmt *st;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	st = db_prepare(f->db, "SELECT :a");
	assert_non_null(st);
	assert_int_equal(db_bind_int64(st, ":nope", 1), -1);
	db_bind_int64(st, ":a", 1);
	assert_int_equal(db_step(st), -1);
	db_reset(st);
}

static void
test_db_prepare_caches_statement_per_call_site(void **state)
{
	struct fixture *f = *state;
	static const char sql[] = "SELECT 1";
	char err[256];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_ptr_equal(db_prepare(f->db, sql), db_prepare(f->db, sql));
	assert_null(db_prepare(f->db, "SELECT FROM WHERE"));
}

static void
test_db_max_seq_survives_room_delete(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct room r;
	struct message m = {0};
	int64_t uid;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &uid), 0);
	assert_int_equal(room_create(f->db, "a", ROOM_PUBLIC, 1, &r), 0);
	m.id = 7;
	m.room_id = r.id;
	m.user_id = uid;
	m.text = "hi";
	m.text_len = 2;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
	assert_int_equal(db_max_seq(f->db), 7);
	assert_int_equal(room_delete(f->db, r.id), 0);
	assert_int_equal(db_max_seq(f->db), 7);
	db_close(f->db);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_max_seq(f->db), 7);
}

/* The synchronous setting of db, as a number (0 OFF, 1 NORMAL, 2 FULL). */
static int64_t
synchronous_of(struct db *db)
{
	struct db_stmt *st = db_prepare(db, "PRAGMA synchronous");
	int64_t v;

	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	v = db_column_int64(st, 0);
	db_reset(st);
	return v;
}

static void
test_db_durability_sets_synchronous(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(synchronous_of(f->db), 2); /* the CLI's default */
	assert_int_equal(db_set_durability(f->db, DB_DURABILITY_NORMAL), 0);
	assert_int_equal(synchronous_of(f->db), 1);
	assert_int_equal(db_set_durability(f->db, DB_DURABILITY_FULL), 0);
	assert_int_equal(synchronous_of(f->db), 2);
}

static void
test_db_checkpointer_copies_wal_into_database(void **state)
{
	struct fixture *f = *state;
	struct db_stmt *st;
	struct stat sb;
	char err[256];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_checkpointer_start(f->db), 0);
	st = db_prepare(f->db, "CREATE TABLE t(x)");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_DONE);
	db_reset(st);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size < 1000000);
	/* 6 MB in six commits: past the 1000-page (4 MiB) threshold */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(db_begin(f->db), 0);
		st = db_prepare(f->db,
		    "INSERT INTO t VALUES (randomblob(1000000))");
		assert_non_null(st);
		assert_int_equal(db_step(st), DB_DONE);
		db_reset(st);
		assert_int_equal(db_commit(f->db), 0);
	}
	/* the thread signals each run's end (at most 60 s) */
	assert_true(db_checkpoints_wait(f->db, 1, 60000));
	/* the pages reached the database file itself, not only the WAL */
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size > 4000000);
	db_close(f->db);
	f->db = NULL;
	/* and what was written is all there after a reopen */
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	st = db_prepare(f->db, "SELECT count(*), sum(length(x)) FROM t");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_int_equal(db_column_int64(st, 0), 6);
	assert_int_equal(db_column_int64(st, 1), 6000000);
	db_reset(st);
}

/* The WAL header's checkpoint sequence number: it goes up each time the
 * WAL restarts from the top (SQLite's file format, bytes 12-15). */
static uint32_t
wal_restarts(const char *db_path)
{
	char path[160];
	unsigned char h[16];
	FILE *f;

	snprintf(path, sizeof path, "%s-wal", db_path);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
	fclose(f);
	return (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 |
	       (uint32_t)h[14] << 8 | h[15];
}

/* Opens f->path with durability normal and a checkpoint thread that lets
 * the WAL restart every restart_frames frames, and creates table t. */
static void
ckpt_open(struct fixture *f, int restart_frames)
{
	struct db_stmt *st;
	char err[256];

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_set_durability(f->db, DB_DURABILITY_NORMAL), 0);
	db_checkpointer_restart_frames(f->db, restart_frames);
	assert_int_equal(db_checkpointer_start(f->db), 0);
	st = db_prepare(f->db, "CREATE TABLE t(x)");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_DONE);
	db_reset(st);
}

static void
insert_blob(struct db *db, int bytes)
{
	struct db_stmt *st = db_prepare(db, "INSERT INTO t VALUES (randomblob(:n))");

	assert_non_null(st);
	assert_int_equal(db_begin(db), 0);
	db_bind_int64(st, ":n", bytes);
	assert_int_equal(db_step(st), DB_DONE);
	db_reset(st);
	assert_int_equal(db_commit(db), 0);
}

static void
test_db_checkpointer_restarts_wal_under_steady_writes(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, now;
	uint32_t r0;
	int restarted = 0;

	/* 2000 frames (8 MiB) rather than 256 MiB: the same mechanism */
	ckpt_open(f, 2000);
	r0 = wal_restarts(f->path);
	/* Commit without pause, as a busy server does: the WAL must still
	 * start over once the checkpoint thread has copied it (otherwise it
	 * grows for as long as the writes go on). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		insert_blob(f->db, 2000);
		restarted = wal_restarts(f->path) != r0;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (!restarted && now.tv_sec - t0.tv_sec < 20);
	assert_true(restarted);
	assert_true(db_checkpoints(f->db) > 0);
}

/* Copies the file src to dst. */
static void
copy_file(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
	char buf[65536];
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* A copy of the database and WAL files taken as they are after commits
 * that ran while the checkpoint thread copied and restarted the WAL (what
 * a kill -9 leaves) holds every commit, and is whole. (It did not catch,
 * reliably, the WAL allocation through SQLite's size hint that session 3
 * tried and took out: the hint's fallback writes a byte per block, which
 * overwrote frames the loop had just appended, and lost commits. The
 * kill -9 test of durability.test.mjs did, in CI.) */
static void
test_db_crash_image_during_checkpoints_has_every_commit(void **state)
{
	struct fixture *f = *state;
	struct db_stmt *st;
	struct timespec t0, now;
	char err[256], wal[TMPDB_PATH_MAX + 8], copy[100], copy_wal[128];
	int64_t n = 0;

	ckpt_open(f, 2000);
	/* commits without pause across three runs of the thread */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		insert_blob(f->db, 2000);
		n++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (db_checkpoints(f->db) < 3 && now.tv_sec - t0.tv_sec < 30);
	assert_true(db_checkpoints(f->db) >= 3);

	snprintf(wal, sizeof wal, "%s-wal", f->path);
	snprintf(copy, sizeof copy, "%s/copy.db", f->dir);
	snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);
	copy_file(f->path, copy);
	copy_file(wal, copy_wal);
	db_close(f->db);
	f->db = NULL;
	assert_int_equal(db_open(&f->db, copy, err, sizeof err), 0);
	st = db_prepare(f->db, "SELECT count(*), sum(length(x)) FROM t");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_int_equal(db_column_int64(st, 0), n);
	assert_int_equal(db_column_int64(st, 1), n * 2000);
	db_reset(st);
	assert_int_equal(db_check(f->db), 0);
	db_close(f->db);
	f->db = NULL;
	unlink(copy);
	unlink(copy_wal);
	snprintf(copy_wal, sizeof copy_wal, "%s-shm", copy);
	unlink(copy_wal);
}

/* Milliseconds on the monotonic clock. */
static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_db_begin_is_busy_at_once_while_another_connection_writes(void **state)
{
	struct fixture *f = *state;
	struct db *other;
	char err[256];
	int64_t t0, id;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_checkpointer_start(f->db), 0);
	db_set_busy_timeout(f->db, 0);
	assert_int_equal(db_open(&other, f->path, err, sizeof err), 0);
	assert_int_equal(db_begin(other), 0);
	assert_int_equal(user_create(other, "ann", "h", 1, &id), 0);

	/* No wait for the 5 s of db_open's busy timeout: busy at once. */
	t0 = mono_ms();
	assert_int_equal(db_begin(f->db), DB_BUSY);
	assert_true(mono_ms() - t0 < 1000);
	assert_int_equal(db_busy(f->db), 1);
	/* Nothing is open: a second try is busy again, not "within a
	 * transaction"; reads go on (WAL), seeing the last commit. */
	assert_int_equal(db_begin(f->db), DB_BUSY);
	assert_int_equal(db_check(f->db), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, NULL, 0), 1);

	assert_int_equal(db_commit(other), 0);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &id), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, NULL, 0), 0);
	db_close(other);
}

static void
test_db_busy_tells_a_held_lock_from_other_failures(void **state)
{
	struct fixture *f = *state;
	struct db *other;
	struct db_stmt *st;
	char err[256];
	int64_t id;

	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	db_set_busy_timeout(f->db, 0);
	assert_int_equal(db_open(&other, f->path, err, sizeof err), 0);
	assert_int_equal(db_begin(other), 0);

	/* A write outside a transaction (what the HTTP API does). */
	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), -1);
	assert_int_equal(db_busy(f->db), 1);
	/* A failure of our own is not busy. */
	st = db_prepare(f->db, "SELECT :x");
	assert_non_null(st);
	assert_int_equal(db_step(st), -1);
	db_reset(st);
	assert_int_equal(db_busy(f->db), 0);

	assert_int_equal(db_rollback(other), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	db_close(other);
}

static void
test_db_close_null_is_noop(void **state)
{
	(void)state;
	db_close(NULL);
	assert_int_equal(db_check(NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_db_open_creates_database_at_latest_version),
	    T(test_db_open_uses_wal_mode),
	    T(test_db_open_twice_is_idempotent),
	    T(test_db_epoch_is_hex_and_stable_across_reopen),
	    T(test_db_new_epoch_changes_it_durably),
	    T(test_db_open_refuses_newer_schema),
	    T(test_db_open_refuses_file_that_is_not_a_database),
	    T(test_db_open_reports_unwritable_directory),
	    T(test_db_migrations_are_numbered_from_one),
	    T(test_db_rollback_undoes_transaction),
	    T(test_db_savepoint_inside_transaction_rolls_back_only_itself),
	    T(test_db_step_refuses_unbound_parameter),
	    T(test_db_step_refuses_unknown_parameter_name),
	    T(test_db_prepare_caches_statement_per_call_site),
	    T(test_db_max_seq_survives_room_delete),
	    T(test_db_durability_sets_synchronous),
	    T(test_db_checkpointer_copies_wal_into_database),
	    T(test_db_checkpointer_restarts_wal_under_steady_writes),
	    T(test_db_crash_image_during_checkpoints_has_every_commit),
	    T(test_db_begin_is_busy_at_once_while_another_connection_writes),
	    T(test_db_busy_tells_a_held_lock_from_other_failures),
	    T(test_db_close_null_is_noop),
#undef T
	};

	log_setup(LOG_ERROR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
