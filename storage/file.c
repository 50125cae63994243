/* storage/file.c — file attachments' metadata (the files table) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/xmalloc.h"
#include "storage/db.h"
#include "storage/storage.h"

#define FILE_COLUMNS                                                           \
	"id, room_id, user_id, message_id, name, type, size, hash, "           \
	"created_at"

/* Copies text column col into buf of size bytes (truncating). */
static void
file_text(struct db_stmt *st, int col, char *buf, size_t size)
{
	size_t len = 0;
	const char *s = db_column_text(st, col, &len);

	if (s == NULL)
		len = 0;
	if (len >= size)
		len = size - 1;
	memcpy(buf, s ? s : "", len);
	buf[len] = '\0';
}

/* Fills f from a row of FILE_COLUMNS. */
static void
file_row_read(struct db_stmt *st, struct file_row *f)
{
	memset(f, 0, sizeof *f);
	file_text(st, 0, f->id, sizeof f->id);
	f->room_id = db_column_int64(st, 1);
	f->user_id = db_column_int64(st, 2);
	f->message_id = db_column_is_null(st, 3) ? 0 : db_column_int64(st, 3);
	file_text(st, 4, f->name, sizeof f->name);
	file_text(st, 5, f->type, sizeof f->type);
	f->size = db_column_int64(st, 6);
	file_text(st, 7, f->hash, sizeof f->hash);
	f->created_at = db_column_int64(st, 8);
}

/* Runs a SELECT of FILE_COLUMNS, calling cb for each row. 0 or -1. */
static int
file_each(struct db_stmt *st, file_cb cb, void *arg)
{
	struct file_row f;
	int rc;

	while ((rc = db_step(st)) == DB_ROW) {
		file_row_read(st, &f);
		if (cb != NULL && cb(arg, &f) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
file_insert(struct db *db, const struct file_row *f)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO files (" FILE_COLUMNS ") VALUES (:id, :room,"
	        " :user, NULL, :name, :type, :size, :hash, :now)");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":id", f->id, -1);
	db_bind_int64(st, ":room", f->room_id);
	db_bind_int64(st, ":user", f->user_id);
	db_bind_text(st, ":name", f->name, -1);
	db_bind_text(st, ":type", f->type, -1);
	db_bind_int64(st, ":size", f->size);
	db_bind_text(st, ":hash", f->hash, -1);
	db_bind_int64(st, ":now", f->created_at);
	rc = db_step(st);
	db_reset(st);
	if (rc == DB_CONSTRAINT)
		return 1;
	return rc == DB_DONE ? 0 : -1;
}

int
file_get(struct db *db, const char *id, struct file_row *out)
{
	struct db_stmt *st = db_prepare(
	    /* A private room is kind 0 with private = 1: ROOM_PRIVATE. */
	    db, "SELECT " FILE_COLUMNS ","
	        " (SELECT CASE WHEN private = 0 THEN kind ELSE 2 END"
	        " FROM rooms WHERE rooms.id = files.room_id)"
	        " FROM files WHERE id = :id");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":id", id, -1);
	rc = db_step(st);
	if (rc == DB_ROW) {
		file_row_read(st, out);
		out->room_kind = (int)db_column_int64(st, 9);
	}
	db_reset(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

int
file_attach(struct db *db, const char *const *ids, size_t n, int64_t user_id,
            int64_t room_id, int64_t message_id)
{
	struct db_stmt *st = db_prepare(
	    db, "UPDATE files SET message_id = :msg, pos = :pos"
	        " WHERE id = :id AND user_id = :user AND room_id = :room"
	        " AND message_id IS NULL");
	int rc;

	if (st == NULL)
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		db_bind_int64(st, ":msg", message_id);
		db_bind_int64(st, ":pos", (int64_t)i);
		db_bind_text(st, ":id", ids[i], -1);
		db_bind_int64(st, ":user", user_id);
		db_bind_int64(st, ":room", room_id);
		rc = db_step(st);
		db_reset(st);
		if (rc != DB_DONE)
			goto fail;
		/* A repeated id finds its row attached already: 0 rows. */
		if (db_changes(db) == 0) {
			db_rollback_to(db);
			return 1;
		}
	}
	return db_release(db);
fail:
	db_rollback_to(db);
	return -1;
}

int
file_list_message(struct db *db, int64_t message_id, file_cb cb, void *arg)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT " FILE_COLUMNS " FROM files WHERE message_id = :msg"
	        " ORDER BY pos");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":msg", message_id);
	return file_each(st, cb, arg);
}

/* Deletes the rows a SELECT of FILE_COLUMNS found (ids copied first:
 * cb may look at other rows). 0 or -1. */
static int
file_delete_found(struct db *db, struct db_stmt *sel, file_cb cb, void *arg)
{
	struct db_stmt *del =
	    db_prepare(db, "DELETE FROM files WHERE id = :id");
	struct file_row *rows = NULL, f;
	size_t n = 0, cap = 0;
	int rc, ret = 0;

	if (del == NULL || db_savepoint(db) == -1) {
		db_reset(sel);
		return -1;
	}
	while ((rc = db_step(sel)) == DB_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			rows = xrealloc(rows, cap * sizeof *rows);
		}
		file_row_read(sel, &f);
		rows[n++] = f;
	}
	db_reset(sel);
	if (rc != DB_DONE)
		ret = -1;
	for (size_t i = 0; i < n && ret == 0; i++) {
		db_bind_text(del, ":id", rows[i].id, -1);
		rc = db_step(del);
		db_reset(del);
		if (rc != DB_DONE)
			ret = -1;
	}
	if (ret == 0)
		ret = db_release(db);
	else
		db_rollback_to(db);
	for (size_t i = 0; i < n && ret == 0 && cb != NULL; i++)
		cb(arg, &rows[i]);
	free(rows);
	return ret;
}

int
file_delete_message(struct db *db, int64_t message_id, file_cb cb, void *arg)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT " FILE_COLUMNS " FROM files WHERE message_id = :msg");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":msg", message_id);
	return file_delete_found(db, st, cb, arg);
}

int
file_sweep(struct db *db, int64_t cutoff, file_cb cb, void *arg)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT " FILE_COLUMNS " FROM files WHERE message_id IS NULL"
	        " AND created_at < :cutoff");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":cutoff", cutoff);
	return file_delete_found(db, st, cb, arg);
}

int
file_hash_used(struct db *db, const char *hash)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT 1 FROM files WHERE hash = :hash LIMIT 1");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":hash", hash, -1);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

int
file_counts(struct db *db, int64_t *files, int64_t *attached, int64_t *bytes)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT count(*), count(message_id),"
	        " (SELECT coalesce(sum(size), 0) FROM"
	        " (SELECT max(size) AS size FROM files GROUP BY hash) AS h)"
	        " FROM files");
	int rc;

	if (st == NULL)
		return -1;
	rc = db_step(st);
	if (rc == DB_ROW) {
		*files = db_column_int64(st, 0);
		*attached = db_column_int64(st, 1);
		*bytes = db_column_int64(st, 2);
	}
	db_reset(st);
	return rc == DB_ROW ? 0 : -1;
}

int
file_list_all(struct db *db, file_cb cb, void *arg)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT " FILE_COLUMNS " FROM files ORDER BY id");

	if (st == NULL)
		return -1;
	return file_each(st, cb, arg);
}

int
file_list_export(struct db *db, int64_t room_id, int64_t since, int64_t until,
    file_cb cb, void *arg)
{
	/* The CASTs: PostgreSQL would type :until by its first use, an
	 * integer beside 0, too small for a time in ms. */
	struct db_stmt *st = db_prepare(
	    db, "SELECT f.id, f.room_id, f.user_id, f.message_id, f.name,"
	        " f.type, f.size, f.hash, f.created_at, f.pos, r.name,"
	        " u.username FROM files f JOIN messages m ON m.id = f.message_id"
	        " JOIN rooms r ON r.id = f.room_id JOIN users u ON u.id = f.user_id"
	        " WHERE m.deleted = 0"
	        " AND (CAST(:room AS BIGINT) = 0 OR f.room_id = :room)"
	        " AND m.seq > :since"
	        " AND (CAST(:until AS BIGINT) < 0 OR m.ts <= :until)"
	        " ORDER BY f.message_id, f.pos");
	struct file_row f;
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room", room_id);
	db_bind_int64(st, ":since", since < 0 ? 0 : since);
	db_bind_int64(st, ":until", until);
	while ((rc = db_step(st)) == DB_ROW) {
		file_row_read(st, &f);
		f.pos = db_column_int64(st, 9);
		file_text(st, 10, f.room, sizeof f.room);
		file_text(st, 11, f.username, sizeof f.username);
		if (cb(arg, &f) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}
