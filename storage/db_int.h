/* storage/db_int.h — the two backends behind storage/db.h: SQLite
 * (storage/sqlite_db.c) and PostgreSQL (storage/pg_db.c). Only
 * storage/db.c, which dispatches between them, and the two backends
 * include it. */
#ifndef CHATD_STORAGE_DB_INT_H
#define CHATD_STORAGE_DB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"

/* The first member of both backends' struct db and struct db_stmt (a
 * pointer to a struct points to its first member: C11 6.7.2.1). SQLite
 * is 0, so a zeroed struct is SQLite's. */
enum db_kind { DB_KIND_SQLITE = 0, DB_KIND_PG = 1 };

static inline int
db_is_pg(const struct db *db)
{
	return *(const int *)(const void *)db == DB_KIND_PG;
}

static inline int
db_stmt_is_pg(const struct db_stmt *st)
{
	return *(const int *)(const void *)st == DB_KIND_PG;
}

/* Each backend implements these with the contract of the db_ function
 * of the same name in storage/db.h or storage/storage.h. */
#define DB_BACKEND_API(p)                                                      \
	struct db_stmt *p##_prepare_at(struct db *db, const char *sql,         \
	                               const char *func);                      \
	int p##_bind_int64(struct db_stmt *st, const char *name, int64_t v);   \
	int p##_bind_text(struct db_stmt *st, const char *name, const char *s, \
	                  ptrdiff_t len);                                      \
	int p##_bind_blob(struct db_stmt *st, const char *name, const void *v, \
	                  size_t len);                                         \
	int p##_bind_null(struct db_stmt *st, const char *name);               \
	int p##_step(struct db_stmt *st);                                      \
	void p##_reset(struct db_stmt *st);                                    \
	int64_t p##_column_int64(struct db_stmt *st, int col);                 \
	int p##_column_is_null(struct db_stmt *st, int col);                   \
	const char *p##_column_text(struct db_stmt *st, int col, size_t *len); \
	const void *p##_column_blob(struct db_stmt *st, int col, size_t *len); \
	int p##_changes(struct db *db);                                        \
	int p##_begin(struct db *db);                                          \
	void p##_set_busy_timeout(struct db *db, int ms);                      \
	int p##_busy(struct db *db);                                           \
	int p##_begin_read(struct db *db);                                     \
	int p##_commit(struct db *db);                                         \
	int p##_rollback(struct db *db);                                       \
	int p##_savepoint(struct db *db);                                      \
	int p##_release(struct db *db);                                        \
	int p##_rollback_to(struct db *db);                                    \
	const char *p##_epoch(struct db *db);                                  \
	int p##_new_epoch(struct db *db);                                      \
	int64_t p##_max_seq(struct db *db);                                    \
	int64_t p##_data_version(struct db *db);                               \
	int p##_check(struct db *db);                                          \
	int p##_open(struct db **out, const char *path, char *err,             \
	             size_t errlen);                                           \
	void p##_close(struct db *db);                                         \
	int p##_open_reader(struct db *db, struct db **out);                   \
	void p##_budget_start(struct db *db, int ms);                          \
	int p##_budget_exceeded(struct db *db);                                \
	void p##_cancel(struct db *db)

DB_BACKEND_API(sqlite_db);
DB_BACKEND_API(pg_db);

/* PostgreSQL only (storage/storage.h's db_seq_next ...). */
int64_t pg_db_seq_next(struct db *db);
int pg_db_seq_sync(struct db *db);
int pg_db_room_lock(struct db *db, int64_t room_id, int wait,
                    int64_t *last_seq);

/* SQLite only (PostgreSQL has its own answers in storage/db.c). */
int sqlite_db_set_durability(struct db *db, enum db_durability d);
int sqlite_db_checkpointer_start(struct db *db);
void sqlite_db_checkpointer_restart_frames(struct db *db, int frames);
uint64_t sqlite_db_checkpoints(struct db *db);
int sqlite_db_checkpoints_wait(struct db *db, uint64_t n, int timeout_ms);
int sqlite_db_backup(struct db *db, const char *dest, char *err,
                     size_t errlen);

#endif
