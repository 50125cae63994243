/* storage/db.c — one storage interface, two backends: every db_ call of
 * storage/db.h and storage.h's connection functions goes to SQLite
 * (storage/sqlite_db.c) or PostgreSQL (storage/pg_db.c), chosen by what
 * db_open was given. The storage files above (user.c, message.c ...) are
 * written once against these wrappers; where the two dialects differ
 * they pass both texts (DB_SQL). */
#include <stdio.h>
#include <string.h>

#include "chatd/log.h"
#include "storage/db.h"
#include "storage/db_int.h"
#include "storage/storage.h"

/* Calls backend function f of db (a struct db * or struct db_stmt *). */
#define DB_CALL(is_pg, f, ...)                                                 \
	((is_pg) ? pg_db_##f(__VA_ARGS__) : sqlite_db_##f(__VA_ARGS__))
#define DB_ON(db, f, ...) DB_CALL(db_is_pg(db), f, __VA_ARGS__)
#define DB_ST(st, f, ...) DB_CALL(db_stmt_is_pg(st), f, __VA_ARGS__)

int
db_url_is_pg(const char *path)
{
	return strncmp(path, "postgres://", 11) == 0 ||
	       strncmp(path, "postgresql://", 13) == 0;
}

int
db_open(struct db **out, const char *path, char *err, size_t errlen)
{
	return db_url_is_pg(path) ? pg_db_open(out, path, err, errlen)
	                          : sqlite_db_open(out, path, err, errlen);
}

int
db_is_postgres(struct db *db)
{
	return db_is_pg(db);
}

void
db_close(struct db *db)
{
	if (db != NULL)
		DB_ON(db, close, db);
}

struct db_stmt *
db_prepare_at(struct db *db, const char *sql, const char *func)
{
	return DB_ON(db, prepare_at, db, sql, func);
}

int
db_bind_int64(struct db_stmt *st, const char *name, int64_t v)
{
	return DB_ST(st, bind_int64, st, name, v);
}

int
db_bind_text(struct db_stmt *st, const char *name, const char *s, ptrdiff_t len)
{
	return DB_ST(st, bind_text, st, name, s, len);
}

int
db_bind_blob(struct db_stmt *st, const char *name, const void *p, size_t len)
{
	return DB_ST(st, bind_blob, st, name, p, len);
}

int
db_bind_null(struct db_stmt *st, const char *name)
{
	return DB_ST(st, bind_null, st, name);
}

int
db_step(struct db_stmt *st)
{
	return DB_ST(st, step, st);
}

void
db_reset(struct db_stmt *st)
{
	if (st != NULL)
		DB_ST(st, reset, st);
}

int64_t
db_column_int64(struct db_stmt *st, int col)
{
	return DB_ST(st, column_int64, st, col);
}

int
db_column_is_null(struct db_stmt *st, int col)
{
	return DB_ST(st, column_is_null, st, col);
}

const char *
db_column_text(struct db_stmt *st, int col, size_t *len)
{
	return DB_ST(st, column_text, st, col, len);
}

const void *
db_column_blob(struct db_stmt *st, int col, size_t *len)
{
	return DB_ST(st, column_blob, st, col, len);
}

int
db_changes(struct db *db)
{
	return DB_ON(db, changes, db);
}

int
db_begin(struct db *db)
{
	return DB_ON(db, begin, db);
}

void
db_set_busy_timeout(struct db *db, int ms)
{
	DB_ON(db, set_busy_timeout, db, ms);
}

int
db_busy(struct db *db)
{
	return DB_ON(db, busy, db);
}

int
db_begin_read(struct db *db)
{
	return DB_ON(db, begin_read, db);
}

int
db_commit(struct db *db)
{
	return DB_ON(db, commit, db);
}

int
db_rollback(struct db *db)
{
	return DB_ON(db, rollback, db);
}

int
db_savepoint(struct db *db)
{
	return DB_ON(db, savepoint, db);
}

int
db_release(struct db *db)
{
	return DB_ON(db, release, db);
}

int
db_rollback_to(struct db *db)
{
	return DB_ON(db, rollback_to, db);
}

const char *
db_epoch(struct db *db)
{
	return DB_ON(db, epoch, db);
}

int
db_new_epoch(struct db *db)
{
	return DB_ON(db, new_epoch, db);
}

int64_t
db_max_seq(struct db *db)
{
	int64_t v = DB_ON(db, max_seq, db);

	/* The caller adds 1: never past INT64_MAX. */
	if (v > SEQ_MAX) {
		log_error("%s: the database holds seq %lld, above %lld: no "
		          "more changes can be stored",
		          __func__, (long long)v, (long long)SEQ_MAX);
		v = SEQ_MAX;
	}
	return v;
}

int64_t
db_data_version(struct db *db)
{
	return DB_ON(db, data_version, db);
}

int
db_check(struct db *db)
{
	if (db == NULL)
		return -1;
	return DB_ON(db, check, db);
}

int
db_open_reader(struct db *db, struct db **out)
{
	return DB_ON(db, open_reader, db, out);
}

void
db_budget_start(struct db *db, int ms)
{
	DB_ON(db, budget_start, db, ms);
}

int
db_budget_exceeded(struct db *db)
{
	return DB_ON(db, budget_exceeded, db);
}

void
db_cancel(struct db *db)
{
	DB_ON(db, cancel, db);
}

/* SQLite's WAL and file machinery: PostgreSQL commits and checkpoints on
 * its own server, and is backed up with pg_dump. */

int
db_set_durability(struct db *db, enum db_durability d)
{
	return db_is_pg(db) ? 0 : sqlite_db_set_durability(db, d);
}

int
db_checkpointer_start(struct db *db)
{
	return db_is_pg(db) ? 0 : sqlite_db_checkpointer_start(db);
}

void
db_checkpointer_restart_frames(struct db *db, int frames)
{
	if (!db_is_pg(db))
		sqlite_db_checkpointer_restart_frames(db, frames);
}

uint64_t
db_checkpoints(struct db *db)
{
	return db_is_pg(db) ? 0 : sqlite_db_checkpoints(db);
}

int
db_checkpoints_wait(struct db *db, uint64_t n, int timeout_ms)
{
	return db_is_pg(db) ? 0
	                    : sqlite_db_checkpoints_wait(db, n, timeout_ms);
}

int
db_backup(struct db *db, const char *dest, char *err, size_t errlen)
{
	if (db_is_pg(db)) {
		snprintf(err, errlen, "a PostgreSQL database is backed up "
		                      "with pg_dump (docs/cluster.md)");
		return -1;
	}
	return sqlite_db_backup(db, dest, err, errlen);
}

int64_t
db_seq_next(struct db *db)
{
	return db_is_pg(db) ? pg_db_seq_next(db) : -1;
}

int
db_seq_sync(struct db *db)
{
	return db_is_pg(db) ? pg_db_seq_sync(db) : 0;
}

int
db_room_lock(struct db *db, int64_t room_id, int wait, int64_t *last_seq)
{
	return db_is_pg(db) ? pg_db_room_lock(db, room_id, wait, last_seq) : -1;
}

/* The highest version of a set of migrations. */
static int
db_migrations_version(const struct migration *m, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		if (m[i].version > v)
			v = m[i].version;
	return v;
}

int
db_schema_version(void)
{
	return db_migrations_version(db_migrations, db_migrations_count);
}

int
db_pg_schema_version(void)
{
	return db_migrations_version(db_pg_migrations, db_pg_migrations_count);
}

/* Helpers over the wrappers, the same for both backends. */

int
db_run_id(struct db_stmt *st, int64_t id)
{
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
db_run_room_user(struct db *db, struct db_stmt *st, int64_t room_id,
                 int64_t user_id)
{
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	rc = db_step(st);
	db_reset(st);
	if (rc != DB_DONE)
		return -1;
	return db_changes(db) == 0 ? 1 : 0;
}

int
db_get_room_user(struct db_stmt *st, int64_t room_id, int64_t user_id,
                 int64_t *out)
{
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	rc = db_step(st);
	if (rc == DB_ROW) {
		if (out != NULL)
			*out = db_column_int64(st, 0);
		ret = 0;
	} else if (rc == DB_DONE)
		ret = 1;
	db_reset(st);
	return ret;
}

