/* storage/session.c — login tokens (the sessions table), by SHA-256 hash */
#include <string.h>

#include "storage/db.h"
#include "storage/storage.h"

int
session_create(struct db *db, const uint8_t hash[32], int64_t user_id,
               int64_t now, int64_t expires_at)
{
	struct db_stmt *st = db_prepare(
	    db,
	    "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)"
	    " VALUES (:hash, :user_id, :now, :expires_at)");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_blob(st, ":hash", hash, 32);
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":now", now);
	db_bind_int64(st, ":expires_at", expires_at);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
session_lookup(struct db *db, const uint8_t hash[32], int64_t now,
               struct user *out)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT u.id, u.username, u.created_at"
	                   " FROM sessions s JOIN users u ON u.id = s.user_id"
	                   " WHERE s.token_hash = :hash AND s.expires_at > :now"
	                   " AND u.deleted = 0");
	const char *name;
	size_t len;
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_blob(st, ":hash", hash, 32);
	db_bind_int64(st, ":now", now);
	rc = db_step(st);
	if (rc == DB_ROW) {
		if (out != NULL) {
			memset(out, 0, sizeof *out);
			out->id = db_column_int64(st, 0);
			name = db_column_text(st, 1, &len);
			if (name != NULL)
				memcpy(out->username, name,
				       len > USERNAME_MAX ? USERNAME_MAX : len);
			out->created_at = db_column_int64(st, 2);
		}
		ret = 0;
	} else if (rc == DB_DONE)
		ret = 1;
	db_reset(st);
	return ret;
}

int
session_expires(struct db *db, const uint8_t hash[32], int64_t *expires_at)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT expires_at FROM sessions WHERE token_hash = :hash");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_blob(st, ":hash", hash, 32);
	rc = db_step(st);
	if (rc == DB_ROW) {
		*expires_at = db_column_int64(st, 0);
		ret = 0;
	} else if (rc == DB_DONE) {
		ret = 1;
	}
	db_reset(st);
	return ret;
}

int
session_delete(struct db *db, const uint8_t hash[32])
{
	struct db_stmt *st =
	    db_prepare(db, "DELETE FROM sessions WHERE token_hash = :hash");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_blob(st, ":hash", hash, 32);
	rc = db_step(st);
	if (rc == DB_DONE)
		ret = db_changes(db) == 0 ? 1 : 0;
	db_reset(st);
	return ret;
}

int
session_prune(struct db *db, int64_t now)
{
	struct db_stmt *st =
	    db_prepare(db, "DELETE FROM sessions WHERE expires_at <= :now");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":now", now);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}
