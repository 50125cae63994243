/* storage/user.c — accounts (the users table) */
#include <stdio.h>
#include <string.h>

#include "chatd/log.h"
#include "storage/db.h"
#include "storage/storage.h"

/* Copies a users row (id, username, created_at at col..col+2) to out. */
static void
user_row(struct db_stmt *st, int col, struct user *out)
{
	size_t len;
	const char *name = db_column_text(st, col + 1, &len);

	memset(out, 0, sizeof *out);
	out->id = db_column_int64(st, col);
	if (name != NULL) {
		if (len > USERNAME_MAX)
			len = USERNAME_MAX;
		memcpy(out->username, name, len);
	}
	out->created_at = db_column_int64(st, col + 2);
}

int
user_create(struct db *db, const char *username, const char *pwhash,
            int64_t now, int64_t *id)
{
	struct db_stmt *st =
	    db_prepare(db, "INSERT INTO users (username, pwhash, created_at)"
	                   " VALUES (:username, :pwhash, :now)"
	                   " ON CONFLICT (username) DO NOTHING RETURNING id");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":username", username, -1);
	db_bind_text(st, ":pwhash", pwhash, -1);
	db_bind_int64(st, ":now", now);
	rc = db_step(st);
	if (rc == DB_ROW) {
		if (id != NULL)
			*id = db_column_int64(st, 0);
		ret = 0;
	} else if (rc == DB_DONE)
		ret = 1;
	db_reset(st);
	return ret;
}

int
user_by_name(struct db *db, const char *username, struct user *out,
             char *pwhash, size_t pwhash_len)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT id, username, created_at, pwhash FROM users"
	                   " WHERE username = :username AND deleted = 0");
	const char *h;
	size_t len;
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":username", username, -1);
	rc = db_step(st);
	if (rc == DB_ROW) {
		if (out != NULL)
			user_row(st, 0, out);
		if (pwhash != NULL && pwhash_len > 0) {
			h = db_column_text(st, 3, &len);
			if (h == NULL || len >= pwhash_len) {
				log_error("%s: password hash does not fit",
				          __func__);
				goto out;
			}
			memcpy(pwhash, h, len);
			pwhash[len] = '\0';
		}
		ret = 0;
	} else if (rc == DB_DONE)
		ret = 1;
out:
	db_reset(st);
	return ret;
}

int
user_by_id(struct db *db, int64_t id, struct user *out)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT id, username, created_at FROM users"
	                   " WHERE id = :id AND deleted = 0");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	rc = db_step(st);
	if (rc == DB_ROW) {
		if (out != NULL)
			user_row(st, 0, out);
		ret = 0;
	} else if (rc == DB_DONE)
		ret = 1;
	db_reset(st);
	return ret;
}

int
user_set_password(struct db *db, int64_t id, const char *pwhash)
{
	struct db_stmt *st = db_prepare(
	    db,
	    "UPDATE users SET pwhash = :pwhash WHERE id = :id AND deleted = 0");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":pwhash", pwhash, -1);
	db_bind_int64(st, ":id", id);
	rc = db_step(st);
	if (rc == DB_DONE)
		ret = db_changes(db) == 0 ? 1 : 0;
	db_reset(st);
	return ret;
}

int
user_delete(struct db *db, int64_t id)
{
	struct db_stmt *mark =
	    db_prepare(db, "UPDATE users SET deleted = 1, pwhash = ''"
	                   " WHERE id = :id AND deleted = 0");
	struct db_stmt *sessions =
	    db_prepare(db, "DELETE FROM sessions WHERE user_id = :id");
	struct db_stmt *members =
	    db_prepare(db, "DELETE FROM members WHERE user_id = :id");
	/* Uploads not yet sent go; attached files stay with the messages. */
	struct db_stmt *files = db_prepare(
	    db, "DELETE FROM files WHERE user_id = :id AND message_id IS NULL");

	if (mark == NULL || sessions == NULL || members == NULL ||
	    files == NULL)
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	if (db_run_id(mark, id) == -1)
		goto fail;
	if (db_changes(db) == 0) {
		db_release(db);
		return 1;
	}
	if (db_run_id(sessions, id) == -1 || db_run_id(members, id) == -1 ||
	    db_run_id(files, id) == -1 || admin_changed(db) == -1)
		goto fail;
	return db_release(db);
fail:
	db_rollback_to(db);
	return -1;
}

static int user_rows(struct db_stmt *st, user_cb cb, void *arg);

int
user_list(struct db *db, user_cb cb, void *arg)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT id, username, created_at FROM users"
	                   " WHERE deleted = 0 ORDER BY username");

	if (st == NULL)
		return -1;
	return user_rows(st, cb, arg);
}

/* Calls cb with each row of st (id, username, created_at); resets st.
 * 0 or -1. */
static int
user_rows(struct db_stmt *st, user_cb cb, void *arg)
{
	struct user u;
	int rc;

	while ((rc = db_step(st)) == DB_ROW) {
		user_row(st, 0, &u);
		if (cb(arg, &u) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
user_prefix(struct db *db, const char *prefix, int limit, user_cb cb, void *arg)
{
	/* A range of the UNIQUE index on username: every name is made of
	 * [a-z0-9_.-], all below 0x7f, so the names starting with p are
	 * those in [p, p || 0x7f). */
	struct db_stmt *st = db_prepare(
	    db, "SELECT id, username, created_at FROM users"
	        " WHERE username >= :lo AND username < :hi AND deleted = 0"
	        " ORDER BY username LIMIT :limit");
	char hi[USERNAME_MAX + 2];

	if (st == NULL)
		return -1;
	snprintf(hi, sizeof hi, "%.*s\x7f", USERNAME_MAX, prefix);
	db_bind_text(st, ":lo", prefix, -1);
	db_bind_text(st, ":hi", hi, -1);
	db_bind_int64(st, ":limit", limit);
	return user_rows(st, cb, arg);
}
