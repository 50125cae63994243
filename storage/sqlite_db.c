/* storage/sqlite_db.c — the SQLite connection: open, migrate, statements, commits */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chatd/log.h"
#include "chatd/xmalloc.h"
#include "storage/db.h"
#include "storage/db_int.h"
#include "storage/storage.h"

/* How long a statement of the admin CLI waits for another process (the
 * server, another command) to let go of a lock before giving up with
 * SQLITE_BUSY. The server's loop waits for nothing (db_set_busy_timeout
 * 0): it retries from a timer instead (chatd/chat.c). */
#define DB_BUSY_TIMEOUT_MS 5000

/* Statements slower than this many ms are logged (db_set_slow_ms). */
static int db_slow_ms = 200;
/* The version db_open migrates to; 0: the latest (db_set_migrate_limit). */
static int db_migrate_limit;

struct db_stmt {
	int kind; /* DB_KIND_SQLITE: first, see storage/db_int.h */
	sqlite3_stmt *stmt;
	struct db *db;
	const char *sql;  /* the caller's literal: the cache key */
	const char *func; /* who prepared it, for error messages */
	uint64_t bound;   /* bit i-1: parameter i bound since the last reset */
	uint64_t all;     /* the bits of every parameter */
	int bind_err;
	int running; /* stepped since the last reset */
};

/* WAL pages (4 KiB) after which a commit asks the checkpointer to run:
 * SQLite's own automatic checkpoint uses the same figure. */
#define DB_CHECKPOINT_PAGES 1000
/* ...but it runs at most this often: each run fsyncs the WAL and the
 * database file, which costs ~5 ms of CPU on a virtio disk, and a page
 * changed by many commits in between is copied once. At one commit per
 * message (a quiet server) the WAL grows by ~4 pages a message. */
#define DB_CHECKPOINT_INTERVAL_MS 1000
/* Ungated passes after the first, at most, until one finds no more than
 * DB_CHECKPOINT_TAIL new frames (see db_ckpt_main). */
#define DB_CHECKPOINT_CATCH_UP 4
#define DB_CHECKPOINT_TAIL 64
/* A run lets the WAL restart from the top (its gated pass) once the WAL
 * holds this many frames (4 KiB pages: 256 MiB), or when the last restart
 * is this old: each restart costs the loop an fsync of the WAL header
 * (see db_ckpt_main). */
#define DB_RESTART_FRAMES 65536
#define DB_RESTART_MS 60000

/* The checkpoint thread: its own connection copies the WAL back into the
 * database file (and fsyncs it) so that the loop thread never does. */
struct db_ckpt {
	pthread_t thread;
	/* The gate: the loop's write transactions and a run's last pass
	 * take turns (db_gate_*); gmu guards the three flags. */
	pthread_mutex_t gmu;
	pthread_cond_t gcv;
	int loop_in, ckpt_wants, ckpt_in;
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* wakes the thread (wanted, stop) */
	pthread_cond_t done; /* a run ended (db_checkpoints_wait) */
	sqlite3 *h;
	int wanted; /* a commit left DB_CHECKPOINT_PAGES or more in the WAL */
	int stop;
	int restart_frames;      /* DB_RESTART_FRAMES, or a test's figure */
	struct timespec restart; /* CLOCK_MONOTONIC: the last gated pass */
	uint64_t runs; /* checkpoints done (tests, metrics) */
};

struct db {
	int kind; /* DB_KIND_SQLITE: first, see storage/db_int.h */
	sqlite3 *h;
	struct db_stmt **stmts;
	size_t nstmts, capstmts;
	char epoch[EPOCH_LEN + 1];
	struct db_ckpt *ckpt; /* NULL: SQLite checkpoints on commit */
	int gated;            /* the loop is in the gate (db_gate_enter) */
	int busy;             /* the last failure was SQLITE_BUSY/LOCKED */
	int restart_frames;   /* for the next db_checkpointer_start; 0: default */
	struct db_budget *budget; /* a reader connection's (db_open_reader) */
};

/* 1 if rc says another connection holds a lock the statement needs: a
 * retry later may succeed. */
static int
db_rc_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* Looks up or compiles the statement for the literal sql. */
struct db_stmt *
sqlite_db_prepare_at(struct db *db, const char *sql, const char *func)
{
	struct db_stmt *st;
	sqlite3_stmt *stmt;
	int n, rc;

	for (size_t i = 0; i < db->nstmts; i++)
		if (db->stmts[i]->sql == sql)
			return db->stmts[i];

	if ((rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
	                             &stmt, NULL)) != SQLITE_OK) {
		db->busy = db_rc_busy(rc);
		log_error("%s: prepare: %s: %s", func, sqlite3_errmsg(db->h),
		          sql);
		return NULL;
	}
	n = sqlite3_bind_parameter_count(stmt);
	if (n > 64) {
		log_error("%s: prepare: more than 64 parameters", func);
		sqlite3_finalize(stmt);
		return NULL;
	}
	st = xcalloc(1, sizeof *st);
	st->stmt = stmt;
	st->db = db;
	st->sql = sql;
	st->func = func;
	st->all = n == 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1;
	if (db->nstmts == db->capstmts) {
		db->capstmts = db->capstmts ? db->capstmts * 2 : 32;
		db->stmts =
		    xrealloc(db->stmts, db->capstmts * sizeof *db->stmts);
	}
	db->stmts[db->nstmts++] = st;
	return st;
}

/* The index of parameter name, recording a bind error if there is none. */
static int
db_param(struct db_stmt *st, const char *name)
{
	int i = sqlite3_bind_parameter_index(st->stmt, name);

	if (i == 0) {
		log_error("%s: no parameter %s in: %s", st->func, name,
		          st->sql);
		st->bind_err = 1;
	}
	return i;
}

/* Records the outcome of a sqlite3_bind_* call on parameter i. */
static int
db_bound(struct db_stmt *st, int i, int rc)
{
	if (rc != SQLITE_OK) {
		log_error("%s: bind: %s", st->func, sqlite3_errstr(rc));
		st->bind_err = 1;
		return -1;
	}
	st->bound |= (uint64_t)1 << (i - 1);
	return 0;
}

int
sqlite_db_bind_int64(struct db_stmt *st, const char *name, int64_t v)
{
	int i = db_param(st, name);

	if (i == 0)
		return -1;
	return db_bound(st, i, sqlite3_bind_int64(st->stmt, i, v));
}

int
sqlite_db_bind_text(struct db_stmt *st, const char *name, const char *s, ptrdiff_t len)
{
	int i = db_param(st, name);

	if (i == 0)
		return -1;
	if (s == NULL)
		return db_bound(st, i, sqlite3_bind_null(st->stmt, i));
	if (len < 0)
		len = (ptrdiff_t)strlen(s);
	return db_bound(st, i,
	                sqlite3_bind_text64(st->stmt, i, s, (sqlite3_uint64)len,
	                                    SQLITE_TRANSIENT, SQLITE_UTF8));
}

int
sqlite_db_bind_blob(struct db_stmt *st, const char *name, const void *p, size_t len)
{
	int i = db_param(st, name);

	if (i == 0)
		return -1;
	return db_bound(st, i,
	                sqlite3_bind_blob64(st->stmt, i, p, (sqlite3_uint64)len,
	                                    SQLITE_TRANSIENT));
}

int
sqlite_db_bind_null(struct db_stmt *st, const char *name)
{
	int i = db_param(st, name);

	if (i == 0)
		return -1;
	return db_bound(st, i, sqlite3_bind_null(st->stmt, i));
}

void
db_set_slow_ms(int ms)
{
	db_slow_ms = ms;
}

/* A monotonic clock in milliseconds, for the slow-statement log. */
static double
db_clock_ms(void)
{
	struct timespec ts;

	/* Coarse (a few ms, read from the vDSO without a syscall): enough
	 * for a threshold of tens of ms, and it is read twice per step. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* sqlite3_step, logging a step slower than db_slow_ms. */
static int
db_step_timed(struct db_stmt *st)
{
	double t0, ms;
	int rc;

	if (db_slow_ms <= 0)
		return sqlite3_step(st->stmt);
	t0 = db_clock_ms();
	rc = sqlite3_step(st->stmt);
	ms = db_clock_ms() - t0;
	if (ms >= db_slow_ms)
		log_warn("%s: slow statement (%.0f ms): %s", st->func, ms,
		         st->sql);
	return rc;
}

static int db_budget_spent(struct db *db, int rc);

/* Runs the statement one step. */
int
sqlite_db_step(struct db_stmt *st)
{
	int rc;

	if (!st->running) {
		if (st->bind_err || st->bound != st->all)
			st->db->busy = 0; /* a failure of ours, not a lock */
		if (st->bind_err)
			return -1;
		if (st->bound != st->all) {
			log_error("%s: unbound parameter in: %s", st->func,
			          st->sql);
			return -1;
		}
		st->running = 1;
	}
	rc = db_step_timed(st);
	switch (rc) {
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	case SQLITE_CONSTRAINT:
		return DB_CONSTRAINT;
	default:
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			return DB_CONSTRAINT;
		if (db_budget_spent(st->db, rc)) {
			log_debug("%s: out of time: %s", st->func, st->sql);
			return -1;
		}
		st->db->busy = db_rc_busy(rc);
		if (st->db->busy)
			log_warn("%s: %s (another process holds it)", st->func,
			         sqlite3_errmsg(st->db->h));
		else
			log_error("%s: %s", st->func,
			          sqlite3_errmsg(st->db->h));
		return -1;
	}
}

void
sqlite_db_reset(struct db_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st->stmt);
	sqlite3_clear_bindings(st->stmt);
	st->bound = 0;
	st->bind_err = 0;
	st->running = 0;
}

int64_t
sqlite_db_column_int64(struct db_stmt *st, int col)
{
	return sqlite3_column_int64(st->stmt, col);
}

int
sqlite_db_column_is_null(struct db_stmt *st, int col)
{
	return sqlite3_column_type(st->stmt, col) == SQLITE_NULL;
}

const char *
sqlite_db_column_text(struct db_stmt *st, int col, size_t *len)
{
	const char *s;

	if (sqlite3_column_type(st->stmt, col) == SQLITE_NULL) {
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	s = (const char *)sqlite3_column_text(st->stmt, col);
	if (len != NULL)
		*len = (size_t)sqlite3_column_bytes(st->stmt, col);
	return s != NULL ? s : "";
}

const void *
sqlite_db_column_blob(struct db_stmt *st, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(st->stmt, col);

	if (len != NULL)
		*len = (size_t)sqlite3_column_bytes(st->stmt, col);
	return p;
}

int
sqlite_db_changes(struct db *db)
{
	return sqlite3_changes(db->h);
}

/* Runs a statement that returns no rows (BEGIN, COMMIT ...). 0 or -1. */
static int
db_run(struct db *db, const char *sql, const char *func)
{
	struct db_stmt *st = db_prepare_at(db, sql, func);
	int rc;

	if (st == NULL)
		return -1;
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

/* The gate between the loop's write transactions and the checkpoint
 * thread's gated pass: one side at a time, and the thread first once it
 * asks. (A mutex alone let a loop that commits back to back take it
 * again before the woken thread ran: on one core, the thread starved.) */
static void
db_gate_enter(struct db_ckpt *ck, int thread)
{
	pthread_mutex_lock(&ck->gmu);
	if (thread) {
		ck->ckpt_wants = 1;
		while (ck->loop_in)
			pthread_cond_wait(&ck->gcv, &ck->gmu);
		ck->ckpt_wants = 0;
		ck->ckpt_in = 1;
	} else {
		while (ck->ckpt_wants || ck->ckpt_in)
			pthread_cond_wait(&ck->gcv, &ck->gmu);
		ck->loop_in = 1;
	}
	pthread_mutex_unlock(&ck->gmu);
}

static void
db_gate_exit(struct db_ckpt *ck, int thread)
{
	pthread_mutex_lock(&ck->gmu);
	if (thread)
		ck->ckpt_in = 0;
	else
		ck->loop_in = 0;
	pthread_cond_broadcast(&ck->gcv);
	pthread_mutex_unlock(&ck->gmu);
}

/* Lets the checkpoint thread have the gate once no write transaction is
 * open (see db_ckpt_main). */
static void
db_gate_leave(struct db *db)
{
	if (db->gated && sqlite3_get_autocommit(db->h)) {
		db->gated = 0;
		db_gate_exit(db->ckpt, 0);
	}
}

/* Starts the server's write transaction; IMMEDIATE so that it takes the
 * write lock up front (and never deadlocks with another writer such as
 * the admin CLI). Busy is not an error here: it is not logged, the
 * caller retries. */
int
sqlite_db_begin(struct db *db)
{
	struct db_stmt *st;
	int rc, ret = 0;

	if (db->ckpt != NULL && !db->gated) {
		db_gate_enter(db->ckpt, 0);
		db->gated = 1;
	}
	if ((st = db_prepare(db, "BEGIN IMMEDIATE")) == NULL) {
		ret = db->busy ? DB_BUSY : -1;
	} else {
		rc = sqlite3_step(st->stmt);
		if (rc != SQLITE_DONE) {
			db->busy = db_rc_busy(rc);
			ret = db->busy ? DB_BUSY : -1;
			if (!db->busy)
				log_error("%s: %s", __func__,
				          sqlite3_errmsg(db->h));
		}
		db_reset(st);
	}
	/* Busy or not, a failed BEGIN lets go of the gate. */
	db_gate_leave(db);
	return ret;
}

void
sqlite_db_set_busy_timeout(struct db *db, int ms)
{
	sqlite3_busy_timeout(db->h, ms);
}

int
sqlite_db_busy(struct db *db)
{
	return db->busy;
}

/* A read transaction: one snapshot for everything read until
 * db_rollback (deferred: never takes the write lock). */
int
sqlite_db_begin_read(struct db *db)
{
	return db_run(db, "BEGIN DEFERRED", __func__);
}

/* Commits; on failure the transaction stays open for db_rollback. */
int
sqlite_db_commit(struct db *db)
{
	int rc = db_run(db, "COMMIT", __func__);

	db_gate_leave(db);
	return rc;
}

int
sqlite_db_rollback(struct db *db)
{
	int rc = 0;

	/* autocommit: SQLite rolled it back already */
	if (!sqlite3_get_autocommit(db->h))
		rc = db_run(db, "ROLLBACK", __func__);
	db_gate_leave(db);
	return rc;
}

int
sqlite_db_savepoint(struct db *db)
{
	return db_run(db, "SAVEPOINT chatd", __func__);
}

int
sqlite_db_release(struct db *db)
{
	return db_run(db, "RELEASE chatd", __func__);
}

/* Undoes everything since the savepoint and ends it. */
int
sqlite_db_rollback_to(struct db *db)
{
	if (sqlite3_get_autocommit(db->h))
		return -1; /* an error rolled back the whole transaction */
	if (db_run(db, "ROLLBACK TO chatd", __func__) == -1)
		return -1;
	return db_run(db, "RELEASE chatd", __func__);
}

/* Reads the epoch from meta into db->epoch. 0 or -1. */
static int
db_load_epoch(struct db *db)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT value FROM meta WHERE key = 'epoch'");
	const char *s;
	size_t len = 0;
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	rc = db_step(st);
	if (rc == DB_ROW) {
		s = db_column_text(st, 0, &len);
		if (s != NULL && len == EPOCH_LEN) {
			memcpy(db->epoch, s, EPOCH_LEN);
			db->epoch[EPOCH_LEN] = '\0';
			ret = 0;
		} else
			log_error("%s: malformed epoch", __func__);
	} else if (rc == DB_DONE)
		log_error("%s: no epoch", __func__);
	db_reset(st);
	return ret;
}

const char *
sqlite_db_epoch(struct db *db)
{
	return db->epoch;
}

int
sqlite_db_new_epoch(struct db *db)
{
	char old[EPOCH_LEN + 1];

	memcpy(old, db->epoch, sizeof old);
	if (db_run(db,
	           "UPDATE meta SET value = lower(hex(randomblob(16)))"
	           " WHERE key = 'epoch'",
	           __func__) == -1)
		return -1;
	if (db_load_epoch(db) == -1) {
		memcpy(db->epoch, old, sizeof old);
		return -1;
	}
	return 0;
}

int64_t
sqlite_db_max_seq(struct db *db)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT max(coalesce((SELECT max(seq) FROM messages), 0),"
	        " coalesce((SELECT max(last_seq) FROM rooms), 0),"
	        " coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	        " WHERE key = 'seq_floor'), 0))");
	int64_t v = -1;

	if (st == NULL)
		return -1;
	if (db_step(st) == DB_ROW)
		v = db_column_int64(st, 0);
	db_reset(st);
	return v;
}

int64_t
sqlite_db_data_version(struct db *db)
{
	struct db_stmt *st = db_prepare(db, "PRAGMA data_version");
	int64_t v = -1;

	if (st == NULL)
		return -1;
	if (db_step(st) == DB_ROW)
		v = db_column_int64(st, 0);
	db_reset(st);
	return v;
}

int
sqlite_db_check(struct db *db)
{
	struct db_stmt *st;
	int rc;

	if (db == NULL)
		return -1;
	st = db_prepare(db, "SELECT count(*) FROM meta");
	if (st == NULL)
		return -1;
	rc = db_step(st);
	db_reset(st);
	return rc == DB_ROW ? 0 : -1;
}

/* The value of PRAGMA user_version. 0 or -1 (err filled). */
static int
db_user_version(struct db *db, int *out)
{
	sqlite3_stmt *stmt;
	int rc;

	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &stmt, NULL) !=
	    SQLITE_OK)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Applies the pending migrations in one transaction. 0 or -1 (err). */
static int
db_migrate(struct db *db, const char *path, char *err, size_t errlen)
{
	char *msg = NULL;
	int have, want = db_migrate_limit > 0 ? db_migrate_limit :
	                                        db_schema_version();

	/* IMMEDIATE: two processes opening a new file at once queue up,
	 * and the second one then sees the first one's version. */
	if (sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	        SQLITE_OK ||
	    db_user_version(db, &have) == -1) {
		if (sqlite3_errcode(db->h) == SQLITE_NOTADB)
			snprintf(err, errlen, "%s is not a database", path);
		else
			snprintf(err, errlen, "cannot open database %s: %s",
			         path, sqlite3_errmsg(db->h));
		goto fail;
	}
	if (have > want) {
		snprintf(err, errlen,
		         "database schema version %d is newer "
		         "than this chatd (%d)",
		         have, want);
		goto fail;
	}
	for (size_t i = 0; i < db_migrations_count; i++) {
		if (db_migrations[i].version <= have ||
		    db_migrations[i].version > want)
			continue;
		if (sqlite3_exec(db->h, db_migrations[i].sql, NULL, NULL,
		                 &msg) != SQLITE_OK) {
			snprintf(err, errlen, "migration %d of %s failed: %s",
			         db_migrations[i].version, path,
			         msg ? msg : sqlite3_errmsg(db->h));
			sqlite3_free(msg);
			goto fail;
		}
		log_info("%s: %s: applied migration %d", __func__, path,
		         db_migrations[i].version);
	}
	if (db_user_version(db, &have) == -1 || have != want) {
		snprintf(err, errlen,
		         "migrations of %s left version %d, not "
		         "%d",
		         path, have, want);
		goto fail;
	}
	if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot migrate %s: %s", path,
		         sqlite3_errmsg(db->h));
		goto fail;
	}
	return 0;
fail:
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

void
db_set_migrate_limit(int version)
{
	db_migrate_limit = version;
}

/* Sets the connection's pragmas. 0 or -1 (err). */
static int
db_configure(struct db *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *mode = NULL;
	int rc, wal = 0;

	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	/* The first statement reads the file: "not a database" shows here. */
	rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &stmt,
	                        NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			mode = (const char *)sqlite3_column_text(stmt, 0);
			wal = mode != NULL && strcmp(mode, "wal") == 0;
		}
		sqlite3_finalize(stmt);
	}
	if (rc != SQLITE_ROW) {
		if ((sqlite3_errcode(db->h) & 0xff) == SQLITE_NOTADB)
			snprintf(err, errlen, "%s is not a database", path);
		else
			snprintf(err, errlen, "cannot open database %s: %s",
			         path, sqlite3_errmsg(db->h));
		return -1;
	}
	if (!wal) {
		snprintf(err, errlen, "cannot put %s in WAL mode", path);
		return -1;
	}
	/* FULL: in WAL mode each commit is fsynced, so what chatd has
	 * acknowledged survives a power loss (NORMAL could lose it). */
	/* No mmap_size: reading through a mapping saved ~9 us of a 50 us
	 * history page (no pread per page-cache miss), but every page it
	 * touches then counts in chatd's RSS (hello's unread counts touch
	 * whole indexes: 1.9 -> 5 KiB per idle connection in the benchmark),
	 * and an I/O error becomes SIGBUS instead of SQLITE_IOERR. */
	if (sqlite3_exec(db->h,
	                 "PRAGMA synchronous = FULL;"
	                 "PRAGMA foreign_keys = ON;",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot configure %s: %s", path,
		         sqlite3_errmsg(db->h));
		return -1;
	}
	return 0;
}

int
sqlite_db_set_durability(struct db *db, enum db_durability d)
{
	const char *sql = d == DB_DURABILITY_FULL ? "PRAGMA synchronous = FULL"
	                                          : "PRAGMA synchronous = NORMAL";

	if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK) {
		log_error("%s: %s", __func__, sqlite3_errmsg(db->h));
		return -1;
	}
	return 0;
}

/* *ts = CLOCK_MONOTONIC now + ms (the clock of the thread's conditions). */
static void
db_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += ms % 1000 * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Milliseconds since t (CLOCK_MONOTONIC). */
static int64_t
db_elapsed_ms(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000 +
	       (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* One PASSIVE checkpoint: SQLITE_OK, SQLITE_BUSY or an error (logged). */
static int
db_ckpt_pass(struct db_ckpt *ck, int *log_pages, int *done)
{
	int rc = sqlite3_wal_checkpoint_v2(ck->h, NULL,
	                                   SQLITE_CHECKPOINT_PASSIVE,
	                                   log_pages, done);

	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warn("checkpoint: %s", sqlite3_errmsg(ck->h));
	return rc;
}

static void *
db_ckpt_main(void *arg)
{
	struct db_ckpt *ck = arg;
	struct timespec next = {0, 0}; /* CLOCK_MONOTONIC: no run before */
	int log_pages, done, rc;

	/* Below the loop thread (nice 10: about a tenth of a shared core):
	 * copying the WAL can wait, deliveries can't. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
		log_debug("checkpoint: setpriority: %s", strerror(errno));
	pthread_mutex_lock(&ck->mu);
	for (;;) {
		while (!ck->wanted && !ck->stop)
			pthread_cond_wait(&ck->cv, &ck->mu);
		while (!ck->stop && pthread_cond_timedwait(&ck->cv, &ck->mu,
		                                           &next) != ETIMEDOUT)
			;
		if (ck->stop)
			break;
		ck->wanted = 0;
		db_deadline(&next, DB_CHECKPOINT_INTERVAL_MS);
		pthread_mutex_unlock(&ck->mu);
		/* PASSIVE: copies what no reader still needs, never waits for
		 * the writer, who keeps committing meanwhile. */
		rc = db_ckpt_pass(ck, &log_pages, &done);
		/* But the writer restarts the WAL from the top only when a
		 * write transaction begins with every frame copied: under
		 * steady writes that never happens by itself, and the WAL
		 * grows for ever (each append to new blocks then waits on
		 * ext4's block allocation, which the fsync holds: 20-40 ms
		 * stalls). So now and then, after passes that copy what
		 * arrived during the one before (fewer each time), a last
		 * pass runs with the gate held, which keeps write
		 * transactions from beginning: the loop waits for a pass over
		 * a few frames and its two fsyncs (~3 ms at M 2000 msg/s).
		 * Then the loop's next commit restarts the WAL, and SQLite
		 * fsyncs the new WAL header in it: 9-16 ms on this VM's disk,
		 * a stall no thread of ours can take over (a write from this
		 * thread's connection would empty the loop's page cache). Hence not at
		 * every run, which made that stall the p99 of M at
		 * 2000 msg/s, but every DB_RESTART_FRAMES frames (256 MiB of
		 * WAL, ~8 s at 2000 msg/s) or DB_RESTART_MS. */
		if (rc == SQLITE_OK &&
		    (log_pages >= ck->restart_frames ||
		     db_elapsed_ms(&ck->restart) >= DB_RESTART_MS)) {
			for (int i = 0, prev = log_pages;
			     rc == SQLITE_OK && i < DB_CHECKPOINT_CATCH_UP;
			     i++) {
				rc = db_ckpt_pass(ck, &log_pages, &done);
				if (log_pages - prev <= DB_CHECKPOINT_TAIL)
					break;
				prev = log_pages;
			}
			if (rc == SQLITE_OK) {
				db_gate_enter(ck, 1);
				rc = db_ckpt_pass(ck, &log_pages, &done);
				db_gate_exit(ck, 1);
				clock_gettime(CLOCK_MONOTONIC, &ck->restart);
			}
		}
		pthread_mutex_lock(&ck->mu);
		ck->runs++;
		pthread_cond_broadcast(&ck->done);
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

/* sqlite3_wal_hook: runs on the loop thread after each commit. */
static int
db_wal_hook(void *arg, sqlite3 *h, const char *name, int pages)
{
	struct db_ckpt *ck = arg;

	(void)h, (void)name;
	if (pages >= DB_CHECKPOINT_PAGES) {
		pthread_mutex_lock(&ck->mu);
		if (!ck->wanted) {
			ck->wanted = 1;
			pthread_cond_signal(&ck->cv);
		}
		pthread_mutex_unlock(&ck->mu);
	}
	return SQLITE_OK;
}

/* Frees a checkpointer whose thread is not running (joined, or never
 * started). */
static void
db_ckpt_free(struct db_ckpt *ck)
{
	pthread_cond_destroy(&ck->cv);
	pthread_cond_destroy(&ck->done);
	pthread_mutex_destroy(&ck->mu);
	pthread_cond_destroy(&ck->gcv);
	pthread_mutex_destroy(&ck->gmu);
	if (sqlite3_close(ck->h) != SQLITE_OK)
		log_error("checkpoint: close: %s", sqlite3_errmsg(ck->h));
	free(ck);
}

int
sqlite_db_checkpointer_start(struct db *db)
{
	struct db_ckpt *ck;
	const char *path = sqlite3_db_filename(db->h, "main");

	if (db->ckpt != NULL)
		return 0;
	ck = xcalloc(1, sizeof *ck);
	/* The connection knows the file is in WAL mode once it has read it:
	 * until then a checkpoint is a no-op. */
	if (sqlite3_open_v2(path, &ck->h,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK ||
	    sqlite3_exec(ck->h, "PRAGMA journal_mode = WAL", NULL, NULL,
	                 NULL) != SQLITE_OK) {
		log_error("%s: %s", __func__,
		          ck->h ? sqlite3_errmsg(ck->h) : "out of memory");
		sqlite3_close(ck->h);
		free(ck);
		return -1;
	}
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ck->cv, &ca);
		pthread_cond_init(&ck->done, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&ck->mu, NULL);
	pthread_mutex_init(&ck->gmu, NULL);
	pthread_cond_init(&ck->gcv, NULL);
	ck->restart_frames =
	    db->restart_frames > 0 ? db->restart_frames : DB_RESTART_FRAMES;
	clock_gettime(CLOCK_MONOTONIC, &ck->restart);
	if (pthread_create(&ck->thread, NULL, db_ckpt_main, ck) != 0) {
		log_error("%s: cannot start the thread", __func__);
		db_ckpt_free(ck);
		return -1;
	}
	db->ckpt = ck;
	/* Replaces SQLite's automatic checkpoint (which is a wal hook). */
	sqlite3_wal_hook(db->h, db_wal_hook, ck);
	return 0;
}

void
sqlite_db_checkpointer_restart_frames(struct db *db, int frames)
{
	db->restart_frames = frames;
}

uint64_t
sqlite_db_checkpoints(struct db *db)
{
	uint64_t n = 0;

	if (db->ckpt != NULL) {
		pthread_mutex_lock(&db->ckpt->mu);
		n = db->ckpt->runs;
		pthread_mutex_unlock(&db->ckpt->mu);
	}
	return n;
}

int
sqlite_db_checkpoints_wait(struct db *db, uint64_t n, int timeout_ms)
{
	struct db_ckpt *ck = db->ckpt;
	struct timespec until;
	int ok;

	if (ck == NULL)
		return 0;
	db_deadline(&until, timeout_ms);
	pthread_mutex_lock(&ck->mu);
	while (ck->runs < n &&
	       pthread_cond_timedwait(&ck->done, &ck->mu, &until) != ETIMEDOUT)
		;
	ok = ck->runs >= n;
	pthread_mutex_unlock(&ck->mu);
	return ok;
}

/* Stops and joins the checkpoint thread; SQLite checkpoints on commit
 * again. */
static void
db_checkpointer_stop(struct db *db)
{
	struct db_ckpt *ck = db->ckpt;

	if (ck == NULL)
		return;
	sqlite3_wal_autocheckpoint(db->h, DB_CHECKPOINT_PAGES);
	/* A transaction still open lets go of the gate first: the thread
	 * may be waiting for it, and would never see stop. */
	if (db->gated) {
		db->gated = 0;
		db_gate_exit(ck, 0);
	}
	pthread_mutex_lock(&ck->mu);
	ck->stop = 1;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->thread, NULL);
	db_ckpt_free(ck);
	db->ckpt = NULL;
}

int
sqlite_db_open(struct db **out, const char *path, char *err, size_t errlen)
{
	struct db *db;
	int rc;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	/* No memory statistics: they take a global mutex around every
	 * allocation SQLite makes. Only possible before initialization (a
	 * later call fails harmlessly). */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	db = xcalloc(1, sizeof *db);
	rc = sqlite3_open_v2(path, &db->h,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                         SQLITE_OPEN_NOMUTEX,
	                     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
		         db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
		goto fail;
	}
	if (db_configure(db, path, err, errlen) == -1 ||
	    db_migrate(db, path, err, errlen) == -1)
		goto fail;
	if (db_load_epoch(db) == -1) {
		snprintf(err, errlen, "%s has no valid epoch", path);
		goto fail;
	}
	*out = db;
	return 0;
fail:
	db_close(db);
	return -1;
}

void
sqlite_db_close(struct db *db)
{
	if (db == NULL)
		return;
	db_checkpointer_stop(db);
	for (size_t i = 0; i < db->nstmts; i++) {
		sqlite3_finalize(db->stmts[i]->stmt);
		free(db->stmts[i]);
	}
	free(db->stmts);
	if (db->h != NULL && sqlite3_close(db->h) != SQLITE_OK)
		log_error("%s: %s", __func__, sqlite3_errmsg(db->h));
	free(db->budget);
	free(db);
}

/* 0 if PRAGMA integrity_check of h answers "ok", else -1. */
static int
db_integrity(sqlite3 *h)
{
	sqlite3_stmt *stmt;
	int ok = 0;

	if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &stmt, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") ==
		     0;
	sqlite3_finalize(stmt);
	return ok ? 0 : -1;
}

/* Copies the main database of src into the file path (created) in one
 * backup step: one read transaction, so the copy is one consistent
 * snapshot, and in WAL mode it never blocks the writer. 0 or -1 (err). */
static int
db_copy_into(sqlite3 *src, const char *path, char *err, size_t errlen)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *b;
	int rc;

	rc = sqlite3_open_v2(path, &dst,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                         SQLITE_OPEN_NOMUTEX,
	                     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot create %s: %s", path,
		         dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		sqlite3_close(dst);
		return -1;
	}
	sqlite3_busy_timeout(dst, DB_BUSY_TIMEOUT_MS);
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (b == NULL) {
		snprintf(err, errlen, "backup: %s", sqlite3_errmsg(dst));
		sqlite3_close(dst);
		return -1;
	}
	/* Busy or locked: another process holds a lock for a moment. */
	do {
		rc = sqlite3_backup_step(b, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(50);
	} while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "backup into %s: %s", path,
		         sqlite3_errstr(rc));
		sqlite3_close(dst);
		return -1;
	}
	if (db_integrity(dst) != 0) {
		snprintf(err, errlen, "the copy in %s fails integrity_check",
		         path);
		sqlite3_close(dst);
		return -1;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		snprintf(err, errlen, "cannot close %s", path);
		return -1;
	}
	return 0;
}

/* fsyncs a file, then its directory (so a rename in it is durable). */
static int
db_sync_path(const char *path)
{
	char dir[4096];
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fsync(fd) != 0)
		rc = -1;
	close(fd);
	snprintf(dir, sizeof dir, "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return rc;
	fsync(fd);
	close(fd);
	return rc;
}

int
sqlite_db_backup(struct db *db, const char *dest, char *err, size_t errlen)
{
	char tmp[4096], stale[4200];

	if (snprintf(tmp, sizeof tmp, "%s.tmp", dest) >= (int)sizeof tmp) {
		snprintf(err, errlen, "path too long: %s", dest);
		return -1;
	}
	/* Leftovers of an interrupted backup: a stale WAL would be replayed
	 * onto the new copy. */
	unlink(tmp);
	snprintf(stale, sizeof stale, "%s-wal", tmp);
	unlink(stale);
	snprintf(stale, sizeof stale, "%s-journal", tmp);
	unlink(stale);
	if (db_copy_into(db->h, tmp, err, errlen) == -1 ||
	    db_sync_path(tmp) == -1) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, dest) != 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, dest,
		         strerror(errno));
		unlink(tmp);
		return -1;
	}
	db_sync_path(dest);
	return 0;
}

int
db_copy_file(const char *src, const char *dest, char *err, size_t errlen)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *stmt = NULL;
	int rc, version = 0;

	if (access(src, R_OK) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", src,
		         strerror(errno));
		return -1;
	}
	rc = sqlite3_open_v2(src, &h,
	                     SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &stmt,
		                        NULL);
	if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
		version = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_OK || version <= 0) {
		snprintf(err, errlen, "%s is not a chatd database", src);
		sqlite3_close(h);
		return -1;
	}
	rc = db_copy_into(h, dest, err, errlen);
	sqlite3_close(h);
	if (rc == 0 && db_sync_path(dest) == -1) {
		snprintf(err, errlen, "cannot sync %s", dest);
		return -1;
	}
	return rc;
}

/* Reader connections: read-only, for threads other than the writer's, with
 * a time budget per job (db_open_reader, db_budget_*). */

/* How often (SQLite VM instructions) the budget is checked: ~tens of µs
 * of work between two reads of the clock. */
#define DB_BUDGET_STEPS 1000

/* The deadline of a reader's current job and what stopped it. */
struct db_budget {
	int64_t deadline_ns;  /* CLOCK_MONOTONIC; 0: none */
	int hit;              /* a statement was stopped since the start */
	atomic_int cancelled; /* db_cancel: every statement stops, for good */
};

/* CLOCK_MONOTONIC in ns (not the coarse clock: budgets of 1 ms exist). */
static int64_t
db_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* sqlite3_progress_handler: non-zero stops the running statement with
 * SQLITE_INTERRUPT once the job's deadline has passed or the connection
 * is cancelled. */
static int
db_budget_progress(void *arg)
{
	struct db_budget *b = arg;

	if (atomic_load_explicit(&b->cancelled, memory_order_relaxed) ||
	    (b->deadline_ns != 0 && db_now_ns() >= b->deadline_ns)) {
		b->hit = 1;
		return 1;
	}
	return 0;
}

/* 1 if rc is a statement stopped by the budget (the failure is the
 * caller's to report, not an error of the database). */
static int
db_budget_spent(struct db *db, int rc)
{
	return db->budget != NULL && db->budget->hit &&
	       (rc & 0xff) == SQLITE_INTERRUPT;
}

int
sqlite_db_open_reader(struct db *db, struct db **out)
{
	const char *path = sqlite3_db_filename(db->h, "main");
	struct db *r = xcalloc(1, sizeof *r);

	*out = NULL;
	/* Read-only and query_only: a bug that writes through it fails.
	 * WAL: it reads the last commit's snapshot and never blocks the
	 * writer. Same page cache size and no mmap, as db_configure says. */
	if (sqlite3_open_v2(path, &r->h,
	                    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK ||
	    sqlite3_exec(r->h, "PRAGMA query_only = ON", NULL, NULL, NULL) !=
	        SQLITE_OK) {
		log_error("%s: %s: %s", __func__, path,
		          r->h ? sqlite3_errmsg(r->h) : "out of memory");
		db_close(r);
		return -1;
	}
	sqlite3_extended_result_codes(r->h, 1);
	sqlite3_busy_timeout(r->h, DB_BUSY_TIMEOUT_MS);
	memcpy(r->epoch, db->epoch, sizeof r->epoch);
	r->budget = xcalloc(1, sizeof *r->budget);
	atomic_init(&r->budget->cancelled, 0);
	sqlite3_progress_handler(r->h, DB_BUDGET_STEPS, db_budget_progress,
	                         r->budget);
	*out = r;
	return 0;
}

void
sqlite_db_budget_start(struct db *db, int ms)
{
	if (db->budget == NULL)
		return;
	db->budget->hit = 0;
	db->budget->deadline_ns =
	    ms > 0 ? db_now_ns() + (int64_t)ms * 1000000 : 0;
}

int
sqlite_db_budget_exceeded(struct db *db)
{
	return db->budget != NULL && db->budget->hit;
}

void
sqlite_db_cancel(struct db *db)
{
	if (db->budget != NULL)
		atomic_store(&db->budget->cancelled, 1);
}
