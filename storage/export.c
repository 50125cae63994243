/* storage/export.c — reading the whole database out, row by row */
#include <stdlib.h>
#include <string.h>

#include "storage/db.h"
#include "storage/storage.h"

/* Rows a message export selects, in export_message_row's order. */
#define EXPORT_MESSAGE_COLUMNS                                                 \
	"SELECT m.id, m.seq, m.room_id, m.user_id, r.name, u.username,"        \
	" m.text, m.ts, m.edited_ts, m.deleted, m.client_msg_id,"              \
	" (SELECT d.username FROM users d WHERE d.id = m.deleted_by),"         \
	" m.reply_to, m.mentions, m.mention_room, m.reacted, m.files"          \
	" FROM messages m JOIN rooms r ON r.id = m.room_id"                    \
	" JOIN users u ON u.id = m.user_id"

/* Copies at most max bytes of column col into out (NUL-terminated). */
static void
export_text(struct db_stmt *st, int col, char *out, size_t max)
{
	size_t len;
	const char *s = db_column_text(st, col, &len);

	if (s == NULL)
		len = 0;
	if (len > max)
		len = max;
	memcpy(out, s ? s : "", len);
	out[len] = '\0';
}

int
export_meta(struct db *db, int64_t *seq_floor)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT CAST(value AS BIGINT) FROM meta"
	                   " WHERE key = :key");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":key", "seq_floor", -1);
	rc = db_step(st);
	*seq_floor = rc == DB_ROW ? db_column_int64(st, 0) : 0;
	db_reset(st);
	return rc == DB_ROW || rc == DB_DONE ? 0 : -1;
}

int
export_users(struct db *db, export_user_cb cb, void *arg)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT id, username, pwhash, created_at, deleted FROM users"
	        " ORDER BY id");
	struct export_user u;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		u.id = db_column_int64(st, 0);
		export_text(st, 1, u.username, USERNAME_MAX);
		u.pwhash = db_column_text(st, 2, NULL);
		u.created_at = db_column_int64(st, 3);
		u.deleted = db_column_int64(st, 4) != 0;
		if (cb(arg, &u) != 0)
			break;
	}
	db_reset(st);
	return rc == -1 ? -1 : 0;
}

int
export_members(struct db *db, export_member_cb cb, void *arg)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT r.name, u.username, m.read_seq, m.joined_at,"
	                   " m.role, m.notify"
	                   " FROM members m JOIN rooms r ON r.id = m.room_id"
	                   " JOIN users u ON u.id = m.user_id"
	                   " ORDER BY r.name, u.username");
	struct export_member m;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		export_text(st, 0, m.room, ROOMNAME_MAX);
		export_text(st, 1, m.username, USERNAME_MAX);
		m.read_seq = db_column_int64(st, 2);
		m.joined_at = db_column_int64(st, 3);
		m.role = (int)db_column_int64(st, 4);
		m.notify = (int)db_column_int64(st, 5);
		if (cb(arg, &m) != 0)
			break;
	}
	db_reset(st);
	return rc == -1 ? -1 : 0;
}

int
export_bans(struct db *db, export_ban_cb cb, void *arg)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT r.name, u.username, b.created_at"
	                   " FROM bans b JOIN rooms r ON r.id = b.room_id"
	                   " JOIN users u ON u.id = b.user_id"
	                   " ORDER BY r.name, u.username");
	struct export_ban b;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		export_text(st, 0, b.room, ROOMNAME_MAX);
		export_text(st, 1, b.username, USERNAME_MAX);
		b.created_at = db_column_int64(st, 2);
		if (cb(arg, &b) != 0)
			break;
	}
	db_reset(st);
	return rc == -1 ? -1 : 0;
}

/* Steps a message export statement, calling cb with each row. */
static int
export_message_rows(struct db *db, struct db_stmt *st, export_message_cb cb,
                    void *arg)
{
	struct message m;
	char *buf = NULL;
	size_t cap = 0;
	int rc;

	while ((rc = db_step(st)) == DB_ROW) {
		memset(&m, 0, sizeof m);
		m.id = db_column_int64(st, 0);
		m.seq = db_column_int64(st, 1);
		m.room_id = db_column_int64(st, 2);
		m.user_id = db_column_int64(st, 3);
		export_text(st, 4, m.room, ROOMNAME_MAX);
		export_text(st, 5, m.username, USERNAME_MAX);
		m.text = db_column_text(st, 6, &m.text_len);
		m.ts = db_column_int64(st, 7);
		m.edited_ts = db_column_int64(st, 8);
		m.deleted = db_column_int64(st, 9) != 0;
		export_text(st, 11, m.deleted_by, USERNAME_MAX);
		if (!m.deleted) {
			m.reply_to = db_column_int64(st, 12);
			m.mentions = db_column_text(st, 13, &m.mentions_len);
			m.mention_room = db_column_int64(st, 14) != 0;
			m.files = db_column_text(st, 16, &m.files_len);
		}
		if (!m.deleted && db_column_int64(st, 15) != 0) {
			if (reaction_list(db, m.id, &buf, &cap,
			                  &m.reactions_len) != 0) {
				rc = -1;
				break;
			}
			m.reactions = m.reactions_len > 0 ? buf : NULL;
		}
		if (cb(arg, &m, db_column_text(st, 10, NULL)) != 0)
			break;
	}
	db_reset(st);
	free(buf);
	return rc == -1 ? -1 : 0;
}

int
export_messages(struct db *db, int64_t room_id, int64_t since, int64_t until,
                export_message_cb cb, void *arg)
{
	/* Two statements so that a one-room export walks that room's
	 * index (room_id, id) and the full one the table in id order. */
	struct db_stmt *st =
	    room_id > 0
	        ? db_prepare(db, EXPORT_MESSAGE_COLUMNS
	                     " WHERE m.room_id = :room AND m.seq > :since"
	                     " AND m.ts <= :until ORDER BY m.id")
	        : db_prepare(db, EXPORT_MESSAGE_COLUMNS
	                     " WHERE m.seq > :since AND m.ts <= :until"
	                     " ORDER BY m.id");

	if (st == NULL)
		return -1;
	if (room_id > 0)
		db_bind_int64(st, ":room", room_id);
	db_bind_int64(st, ":since", since < 0 ? -1 : since);
	db_bind_int64(st, ":until", until < 0 ? INT64_MAX : until);
	return export_message_rows(db, st, cb, arg);
}
