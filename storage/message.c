/* storage/message.c — messages: send, edit, delete, paging, resync, search */
#include <stdlib.h>
#include <string.h>

#include "chatd/log.h"
#include "chatd/xmalloc.h"
#include "storage/db.h"
#include "storage/message_int.h"
#include "storage/storage.h"

/* The columns every message query selects, in message_row's order. */
/* Copies the text column col (at most max bytes) into name, NUL-ended. */
static void
message_name(struct db_stmt *st, int col, char *name, size_t max)
{
	const char *s;
	size_t len = 0;

	if ((s = db_column_text(st, col, &len)) != NULL)
		memcpy(name, s, len > max ? max : len);
	name[s != NULL ? (len > max ? max : len) : 0] = '\0';
}

/* Looks up one name (sql: one column, by :id) into name. */
static void
message_lookup(struct db_stmt *st, int64_t id, char *name, size_t max)
{
	name[0] = '\0';
	if (st == NULL)
		return;
	db_bind_int64(st, ":id", id);
	if (db_step(st) == DB_ROW)
		message_name(st, 0, name, max);
	db_reset(st);
}

/* Where message_row puts a message's reactions (one per loop). */
struct message_buf {
	char *s;
	size_t cap;
};

/* Fills m from a row of MESSAGE_COLUMNS or MESSAGE_COLUMNS_BARE; m->text
 * points into the row, m->reactions into buf (looked up only for a
 * message that has had some). m holds the previous row (zeroed before the
 * first): the room and user names are read again (from the row, or by
 * id for a bare row) only when the room or the author changes (a page is
 * one room, often a few authors). */
static void
message_row(struct db *db, struct db_stmt *st, struct message *m,
            struct message_buf *buf)
{
	int64_t room_id = db_column_int64(st, 2);
	int64_t user_id = db_column_int64(st, 3);
	int bare = db_column_is_null(st, 4);

	if (room_id != m->room_id || m->room[0] == '\0') {
		if (bare)
			message_lookup(db_prepare(db, "SELECT name FROM rooms"
			                              " WHERE id = :id"),
			               room_id, m->room, ROOMNAME_MAX);
		else
			message_name(st, 4, m->room, ROOMNAME_MAX);
	}
	if (user_id != m->user_id || m->username[0] == '\0') {
		if (bare)
			message_lookup(db_prepare(db, "SELECT username FROM users"
			                              " WHERE id = :id"),
			               user_id, m->username, USERNAME_MAX);
		else
			message_name(st, 5, m->username, USERNAME_MAX);
	}
	m->room_id = room_id;
	m->user_id = user_id;
	m->id = db_column_int64(st, 0);
	m->seq = db_column_int64(st, 1);
	m->text = db_column_text(st, 6, &m->text_len);
	m->ts = db_column_int64(st, 7);
	m->edited_ts = db_column_int64(st, 8);
	m->deleted = db_column_int64(st, 9) != 0;
	m->reply_to = db_column_int64(st, 11);
	m->mentions = db_column_text(st, 12, &m->mentions_len);
	m->mention_room = db_column_int64(st, 13) != 0;
	m->files = db_column_text(st, 15, &m->files_len);
	m->reactions = NULL;
	m->reactions_len = 0;
	m->mention_ids = NULL;
	m->nmention_ids = 0;
	/* Rare (a moderator's delete): looked up only when set. */
	if (db_column_is_null(st, 10))
		m->deleted_by[0] = '\0';
	else
		message_lookup(db_prepare(db, "SELECT username FROM users"
		                              " WHERE id = :id"),
		               db_column_int64(st, 10), m->deleted_by,
		               USERNAME_MAX);
	if (m->deleted) {
		m->text = NULL;
		m->text_len = 0;
		m->reply_to = 0;
		m->mentions = NULL;
		m->mentions_len = 0;
		m->mention_room = 0;
		m->files = NULL;
		m->files_len = 0;
		return;
	}
	if (db_column_int64(st, 14) != 0 &&
	    reaction_list(db, m->id, &buf->s, &buf->cap, &m->reactions_len) ==
	        0 &&
	    m->reactions_len > 0)
		m->reactions = buf->s;
}

/* Steps st, calling cb with each row until cb returns non-zero or max
 * rows were seen (max < 0: all); *rows counts the rows read, including
 * the one past max if there is one. cb may be NULL (just count). Resets
 * st. 0 or -1. */
int
message_each(struct db *db, struct db_stmt *st, int64_t max, message_cb cb,
             void *arg, int64_t *rows)
{
	struct message m;
	struct message_buf buf = {0};
	int64_t n = 0;
	int rc;

	memset(&m, 0, sizeof m);
	while ((rc = db_step(st)) == DB_ROW) {
		n++;
		if (max >= 0 && n > max)
			break;
		if (cb == NULL)
			continue;
		message_row(db, st, &m, &buf);
		if (cb(arg, &m) != 0)
			break;
	}
	db_reset(st);
	free(buf.s);
	if (rows != NULL)
		*rows = n;
	return rc == -1 || rc == DB_CONSTRAINT ? -1 : 0;
}

/* Copies len bytes of s (NULL: none) to *p, NUL-ended; returns the copy
 * and moves *p past it. */
static const char *
message_copy_str(char **p, const char *s, size_t len)
{
	char *out = *p;

	if (s == NULL)
		return NULL;
	memcpy(out, s, len);
	out[len] = '\0';
	*p += len + 1;
	return out;
}

struct message *
message_copy(const struct message *m)
{
	struct message *c = xmalloc(sizeof *c + m->text_len + 1 +
	                            m->mentions_len + 1 + m->reactions_len + 1 +
	                            m->files_len + 1);
	char *p = (char *)(c + 1);

	*c = *m;
	c->text = message_copy_str(&p, m->text, m->text_len);
	c->mentions = message_copy_str(&p, m->mentions, m->mentions_len);
	c->reactions = message_copy_str(&p, m->reactions, m->reactions_len);
	c->files = message_copy_str(&p, m->files, m->files_len);
	c->file_ids = NULL;
	c->nfile_ids = 0;
	c->mention_ids = NULL;
	c->nmention_ids = 0;
	return c;
}

void
message_free(struct message *m)
{
	free(m);
}

/* 1 if seq may be stored: 1..SEQ_MAX. A seq past SEQ_MAX means the
 * database already holds the highest one (a hand-edited file): refuse
 * rather than wrap or lose precision in clients. Logs a refusal. */
static int
message_seq_ok(const char *func, int64_t seq)
{
	if (seq >= 1 && seq <= SEQ_MAX)
		return 1;
	log_error("%s: seq %lld outside 1..%lld: not stored", func,
	          (long long)seq, (long long)SEQ_MAX);
	return 0;
}

/* Raises a room's last_seq to seq, and its msgs count for a new message
 * (the caller holds a savepoint). */
static int
message_bump_room(struct db *db, int64_t room_id, int64_t seq, int new_msg)
{
	struct db_stmt *st =
	    new_msg ? db_prepare2(db,
	                          "UPDATE rooms SET last_seq ="
	                          " max(last_seq, :seq), msgs = msgs + 1"
	                          " WHERE id = :id",
	                          "UPDATE rooms SET last_seq ="
	                          " greatest(last_seq, :seq), msgs = msgs + 1"
	                          " WHERE id = :id")
	            : db_prepare2(db,
	                          "UPDATE rooms SET last_seq ="
	                          " max(last_seq, :seq) WHERE id = :id",
	                          "UPDATE rooms SET last_seq ="
	                          " greatest(last_seq, :seq) WHERE id = :id");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":seq", seq);
	db_bind_int64(st, ":id", room_id);
	rc = db_step(st);
	db_reset(st);
	if (rc == DB_DONE && db_changes(db) == 1)
		return 0;
	log_error("%s: no room %lld", __func__, (long long)room_id);
	return -1;
}

/* Counts a new message as seen by its author, so that the room's msgs
 * going up leaves the author's unread count (room.c) as it was: one
 * members row, whatever the room's size. 0 or -1. */
static int
message_author_seen(struct db *db, int64_t room_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_prepare(db, "UPDATE members SET seen = seen + 1"
	                   " WHERE room_id = :room_id AND user_id = :user_id");

	return db_run_room_user(db, st, room_id, user_id) < 0 ? -1 : 0;
}

int
message_insert(struct db *db, const struct message *m,
               const char *client_msg_id)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO messages (id, seq, room_id, user_id, text, ts,"
	        " client_msg_id, reply_to, mentions, mention_room, files)"
	        " VALUES (:id, :id, :room_id, :user_id, :text, :ts, :cid,"
	        " :reply_to, :mentions, :mention_room, :files)"
	        " ON CONFLICT (user_id, client_msg_id)"
	        " WHERE client_msg_id IS NOT NULL DO NOTHING");
	int rc, inserted;

	if (st == NULL)
		return -1;
	if (m->text == NULL) {
		log_error("%s: message without text", __func__);
		return -1;
	}
	if (!message_seq_ok(__func__, m->id))
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	db_bind_int64(st, ":id", m->id);
	db_bind_int64(st, ":room_id", m->room_id);
	db_bind_int64(st, ":user_id", m->user_id);
	db_bind_text(st, ":text", m->text, (ptrdiff_t)m->text_len);
	db_bind_int64(st, ":ts", m->ts);
	db_bind_text(st, ":cid", client_msg_id, -1);
	if (m->reply_to > 0)
		db_bind_int64(st, ":reply_to", m->reply_to);
	else
		db_bind_null(st, ":reply_to");
	db_bind_text(st, ":mentions", m->mentions, (ptrdiff_t)m->mentions_len);
	db_bind_int64(st, ":mention_room", m->mention_room != 0);
	db_bind_text(st, ":files", m->files, (ptrdiff_t)m->files_len);
	rc = db_step(st);
	inserted = rc == DB_DONE && db_changes(db) == 1;
	db_reset(st);
	if (rc != DB_DONE) {
		if (rc == DB_CONSTRAINT)
			log_error("%s: message %lld violates a constraint",
			          __func__, (long long)m->id);
		goto fail;
	}
	if (!inserted) {
		db_release(db);
		return 1;
	}
	if (message_bump_room(db, m->room_id, m->id, 1) == -1 ||
	    message_author_seen(db, m->room_id, m->user_id) == -1 ||
	    (m->nmention_ids > 0 && mention_index(db, m) == -1))
		goto fail;
	if (m->nfile_ids > 0) {
		rc = file_attach(db, m->file_ids, m->nfile_ids, m->user_id,
		                 m->room_id, m->id);
		if (rc != 0) {
			db_rollback_to(db);
			return rc == 1 ? 2 : -1;
		}
	}
	return db_release(db);
fail:
	db_rollback_to(db);
	return -1;
}

int
message_by_client_id(struct db *db, int64_t user_id, const char *client_msg_id,
                     message_cb cb, void *arg)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT " MESSAGE_COLUMNS " FROM messages m" MESSAGE_JOINS
	        " WHERE m.user_id = :user_id AND m.client_msg_id = :cid");
	int64_t n;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":user_id", user_id);
	db_bind_text(st, ":cid", client_msg_id, -1);
	if (message_each(db, st, 1, cb, arg, &n) == -1)
		return -1;
	return n == 0 ? 1 : 0;
}

int
message_get(struct db *db, int64_t id, message_cb cb, void *arg)
{
	struct db_stmt *st = db_prepare(db, "SELECT " MESSAGE_COLUMNS
	                                    " FROM messages m" MESSAGE_JOINS
	                                    " WHERE m.id = :id");
	int64_t n;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	if (message_each(db, st, 1, cb, arg, &n) == -1)
		return -1;
	return n == 0 ? 1 : 0;
}

/* The room and author of a live message: 0, 1 if missing or deleted,
 * -1. */
static int
message_live_room(struct db *db, int64_t id, int64_t *room_id, int64_t *user_id)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT room_id, user_id FROM messages"
	                   " WHERE id = :id AND deleted = 0");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	rc = db_step(st);
	if (rc == DB_ROW) {
		*room_id = db_column_int64(st, 0);
		*user_id = db_column_int64(st, 1);
	}
	db_reset(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

/* Runs an UPDATE of one live message (already found) and bumps its room.
 * The caller has bound st; 0 or -1, with the savepoint ended either way. */
static int
message_change(struct db *db, struct db_stmt *st, int64_t room_id, int64_t seq)
{
	int rc = db_step(st);
	int changed = rc == DB_DONE && db_changes(db) == 1;

	db_reset(st);
	if (!changed || message_bump_room(db, room_id, seq, 0) == -1) {
		db_rollback_to(db);
		return -1;
	}
	return db_release(db);
}

/* A message going away stops counting as unread for the members who had
 * it unread: read_seq below it, not its author. 0 or -1. */
static int
message_unread_gone(struct db *db, int64_t room_id, int64_t user_id, int64_t id)
{
	struct db_stmt *st = db_prepare(
	    db, "UPDATE members SET seen = seen + 1 WHERE room_id = :room_id"
	        " AND user_id <> :user_id AND read_seq < :id");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":id", id);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
message_edit(struct db *db, int64_t id, const char *text, size_t len,
             int64_t seq, int64_t ts)
{
	struct message m;

	memset(&m, 0, sizeof m);
	m.id = id;
	m.text = text;
	m.text_len = len;
	m.seq = seq;
	m.edited_ts = ts;
	return message_replace(db, &m);
}

int
message_replace(struct db *db, const struct message *m)
{
	struct db_stmt *st = db_prepare(
	    db, "UPDATE messages SET text = :text, seq = :seq, edited_ts = :ts,"
	        " mentions = :mentions, mention_room = :mention_room"
	        " WHERE id = :id AND deleted = 0");
	struct message k = *m;
	int rc;

	if (st == NULL || m->text == NULL || !message_seq_ok(__func__, m->seq))
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	if ((rc = message_live_room(db, m->id, &k.room_id, &k.user_id)) != 0) {
		if (rc == 1)
			db_release(db);
		else
			db_rollback_to(db);
		return rc;
	}
	/* The count rows follow the new text (the author, found with the
	 * room, is needed to leave out self-mentions). */
	if (mention_index(db, &k) != 0) {
		db_rollback_to(db);
		return -1;
	}
	db_bind_text(st, ":text", m->text, (ptrdiff_t)m->text_len);
	db_bind_int64(st, ":seq", m->seq);
	db_bind_int64(st, ":ts", m->edited_ts);
	db_bind_text(st, ":mentions", m->mentions, (ptrdiff_t)m->mentions_len);
	db_bind_int64(st, ":mention_room", m->mention_room != 0);
	db_bind_int64(st, ":id", m->id);
	return message_change(db, st, k.room_id, m->seq);
}

int
message_delete(struct db *db, int64_t id, int64_t seq, int64_t by)
{
	/* The text goes NULL: the update trigger takes it out of search. */
	struct db_stmt *st = db_prepare(
	    db, "UPDATE messages SET text = NULL, files = NULL, deleted = 1,"
	        " seq = :seq,"
	        " deleted_by = nullif(:by, 0) WHERE id = :id AND deleted = 0");
	int64_t room_id = 0, user_id = 0;
	int rc;

	if (st == NULL || !message_seq_ok(__func__, seq))
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	if ((rc = message_live_room(db, id, &room_id, &user_id)) != 0) {
		if (rc == 1)
			db_release(db);
		else
			db_rollback_to(db);
		return rc;
	}
	if (message_unread_gone(db, room_id, user_id, id) == -1) {
		db_rollback_to(db);
		return -1;
	}
	db_bind_int64(st, ":seq", seq);
	db_bind_int64(st, ":by", by);
	db_bind_int64(st, ":id", id);
	return message_change(db, st, room_id, seq);
}

/* The newest page below :before in one statement (one read transaction:
 * half the locking of a separate query for where the page starts). The
 * subquery finds the id of the newest message the page leaves out, the
 * one after the :limit newest below :before; SQLite runs each such
 * uncorrelated subquery once per execution. The last column tells
 * whether it exists (has_more). */
#define MESSAGE_PAGE_FLOOR                                                     \
	"(SELECT id FROM messages WHERE room_id = :room_id AND id < :before"   \
	" ORDER BY id DESC LIMIT 1 OFFSET :limit)"

/* Steps a page statement whose column after MESSAGE_COLUMNS is has_more,
 * calling cb with each row. Resets st. 0 or -1. */
static int
message_page_back(struct db *db, struct db_stmt *st, message_cb cb, void *arg,
                  int *has_more)
{
	struct message m;
	struct message_buf buf = {0};
	int rc, first = 1;

	memset(&m, 0, sizeof m);
	while ((rc = db_step(st)) == DB_ROW) {
		if (first)
			*has_more =
			    db_column_int64(st, MESSAGE_NCOLUMNS) != 0;
		first = 0;
		message_row(db, st, &m, &buf);
		if (cb(arg, &m) != 0)
			break;
	}
	db_reset(st);
	free(buf.s);
	return rc == -1 || rc == DB_CONSTRAINT ? -1 : 0;
}

int
message_page(struct db *db, int64_t room_id, int64_t before, int64_t after,
             int limit, message_cb cb, void *arg, int *has_more)
{
	struct db_stmt *st = db_prepare(
	    db,
	    "SELECT " MESSAGE_COLUMNS_BARE " FROM messages m"
	    " WHERE m.room_id = :room_id AND m.id > :after AND m.id < :before"
	    " ORDER BY m.id LIMIT :limit");
	struct db_stmt *back = db_prepare(
	    db,
	    "SELECT " MESSAGE_COLUMNS_BARE ", " MESSAGE_PAGE_FLOOR " IS NOT NULL"
	    " FROM messages m"
	    " WHERE m.room_id = :room_id AND m.id < :before"
	    " AND m.id > coalesce(" MESSAGE_PAGE_FLOOR ", 0)"
	    " ORDER BY m.id LIMIT :limit");
	int64_t n;

	*has_more = 0;
	if (st == NULL || back == NULL)
		return -1;
	if (limit < 1)
		limit = 1;
	if (before > 0 || after < 0) {
		/* Backwards (before, or the newest): the page starts past
		 * the floor and is read forwards. */
		db_bind_int64(back, ":room_id", room_id);
		db_bind_int64(back, ":before", before > 0 ? before : INT64_MAX);
		db_bind_int64(back, ":limit", limit);
		return message_page_back(db, back, cb, arg, has_more);
	}
	/* Forwards: one row more than the page tells whether there is more. */
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":after", after);
	db_bind_int64(st, ":before", INT64_MAX);
	db_bind_int64(st, ":limit", (int64_t)limit + 1);
	if (message_each(db, st, limit, cb, arg, &n) == -1)
		return -1;
	*has_more = n > limit;
	return 0;
}

int
message_page_around(struct db *db, int64_t room_id, int64_t around, int limit,
                    message_cb cb, void *arg, int *before, int *after)
{
	/* The first id the page leaves out below: the one past the
	 * (limit - 1) / 2 nearest below around. */
	struct db_stmt *floor = db_prepare(
	    db, "SELECT id FROM messages WHERE room_id = :room_id"
	        " AND id < :around ORDER BY id DESC LIMIT 1 OFFSET :below");
	struct db_stmt *st = db_prepare(
	    db, "SELECT " MESSAGE_COLUMNS_BARE " FROM messages m"
	        " WHERE m.room_id = :room_id AND m.id > :floor"
	        " ORDER BY m.id LIMIT :limit");
	int64_t low = 0, n;
	int rc;

	*before = *after = 0;
	if (floor == NULL || st == NULL)
		return -1;
	if (limit < 1)
		limit = 1;
	db_bind_int64(floor, ":room_id", room_id);
	db_bind_int64(floor, ":around", around);
	db_bind_int64(floor, ":below", (limit - 1) / 2);
	rc = db_step(floor);
	if (rc == DB_ROW) {
		low = db_column_int64(floor, 0);
		*before = 1;
	}
	db_reset(floor);
	if (rc != DB_ROW && rc != DB_DONE)
		return -1;
	/* From there, limit rows: the ones below, around, the ones above;
	 * one more tells whether more exist above (it is above around,
	 * as at most limit - 1 of the rows are below). */
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":floor", low);
	db_bind_int64(st, ":limit", (int64_t)limit + 1);
	if (message_each(db, st, limit, cb, arg, &n) == -1)
		return -1;
	*after = n > limit;
	return 0;
}

int64_t
message_count_changed(struct db *db, int64_t room_id, int64_t since,
                      int64_t max)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT (SELECT count(*) FROM (SELECT 1 FROM messages"
	        " WHERE room_id = :room_id AND id > :since LIMIT :cap) AS n)"
	        " + (SELECT count(*) FROM (SELECT 1 FROM messages"
	        " WHERE room_id = :room_id AND seq > :since AND seq <> id"
	        " AND id <= :since LIMIT :cap) AS c)");
	int64_t n = -1;

	if (st == NULL)
		return -1;
	if (max < 0)
		max = 0;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":since", since);
	db_bind_int64(st, ":cap", max == INT64_MAX ? max : max + 1);
	if (db_step(st) == DB_ROW)
		n = db_column_int64(st, 0);
	db_reset(st);
	return n;
}

int
message_changed(struct db *db, int64_t room_id, int64_t since, message_cb cb,
                void *arg)
{
	struct db_stmt *st = db_prepare(
	    db,
	    "SELECT m.id, m.id AS seq, m.room_id, m.user_id, NULL, NULL,"
	    " m.text, m.ts, m.edited_ts, m.deleted, m.deleted_by, m.reply_to,"
	    " m.mentions, m.mention_room, m.reacted, m.files FROM messages m"
	    " WHERE m.room_id = :room_id AND m.id > :since AND m.seq = m.id"
	    " UNION ALL"
	    " SELECT " MESSAGE_COLUMNS_BARE " FROM messages m"
	    " WHERE m.room_id = :room_id AND m.seq > :since AND m.seq <> m.id"
	    " ORDER BY 2");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":since", since);
	return message_each(db, st, -1, cb, arg, NULL);
}

/* The byte length of the whitespace character at s, or 0 if s is not
 * one (ASCII white space, U+00A0 and U+3000, the ideographic space). */
static size_t
message_space(const unsigned char *s)
{
	if (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		return 1;
	if (s[0] == 0xc2 && s[1] == 0xa0)
		return 2;
	if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
		return 3;
	return 0;
}

/* A growing string for an FTS5 query. */
struct message_query {
	char *s;
	size_t len, cap;
};

/* Appends the term (len bytes) as one FTS5 string: in double quotes,
 * with each '"' doubled, so no character of it is FTS5 syntax. */
static void
message_query_add(struct message_query *q, const char *term, size_t len)
{
	size_t need = q->len + 2 * len + 4;

	if (need > q->cap) {
		q->cap = need * 2;
		q->s = xrealloc(q->s, q->cap);
	}
	if (q->len > 0)
		q->s[q->len++] = ' '; /* FTS5: adjacent phrases are ANDed */
	q->s[q->len++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (term[i] == '"')
			q->s[q->len++] = '"';
		q->s[q->len++] = term[i];
	}
	q->s[q->len++] = '"';
	q->s[q->len] = '\0';
}

void
message_terms(const char *q, message_term_fn fn, void *arg)
{
	const unsigned char *p = (const unsigned char *)q, *start;
	size_t sp, chars;

	for (;;) {
		while (*p != '\0' && (sp = message_space(p)) > 0)
			p += sp;
		if (*p == '\0')
			break;
		start = p;
		chars = 0;
		while (*p != '\0' && message_space(p) == 0) {
			if ((*p & 0xc0) != 0x80)
				chars++;
			p++;
		}
		fn(arg, (const char *)start, (size_t)(p - start), chars);
	}
}

/* The two queries of message_query_split. */
struct message_queries {
	struct message_query *trigram, *words;
};

/* message_term_fn of message_query_split. */
static void
message_query_term(void *arg, const char *term, size_t len, size_t chars)
{
	struct message_queries *q = arg;

	message_query_add(chars >= 3 ? q->trigram : q->words, term, len);
}

/* Splits text into white-space separated terms and sorts them into the
 * trigram query (3 or more code points: substring match) and the word
 * query (shorter: whole-word match; trigrams can't find them). */
static void
message_query_split(const char *text, struct message_query *trigram,
                    struct message_query *words)
{
	struct message_queries q = {trigram, words};

	message_terms(text, message_query_term, &q);
}

/* Runs one statement that takes :lo and :hi. 0 or -1. */
static int
message_index_range(struct db_stmt *st, int64_t lo, int64_t hi)
{
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":lo", lo);
	db_bind_int64(st, ":hi", hi);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int64_t
message_index_pending(struct db *db, int64_t max)
{
	struct db_stmt *upto = db_prepare(db,
	    "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto'");
	struct db_stmt *last = db_prepare(db,
	    "SELECT coalesce(max(id), :lo) FROM (SELECT id FROM messages"
	    " WHERE id > :lo ORDER BY id LIMIT :max)");
	struct db_stmt *tri = db_prepare(db,
	    "INSERT INTO messages_trigram (rowid, text) SELECT id, text"
	    " FROM messages WHERE id > :lo AND id <= :hi AND text IS NOT NULL");
	struct db_stmt *words = db_prepare(db,
	    "INSERT INTO messages_words (rowid, text) SELECT id, text"
	    " FROM messages WHERE id > :lo AND id <= :hi AND text IS NOT NULL");
	struct db_stmt *mark = db_prepare(db,
	    "UPDATE meta SET value = :hi WHERE key = 'fts_upto'");
	int64_t lo = 0, hi = 0;
	int rc;

	if (db_is_postgres(db))
		return 0; /* pg_trgm's index is maintained by PostgreSQL */
	if (upto == NULL || last == NULL || tri == NULL || words == NULL ||
	    mark == NULL)
		return -1;
	rc = db_step(upto);
	if (rc == DB_ROW)
		lo = db_column_int64(upto, 0);
	db_reset(upto);
	if (rc != DB_ROW)
		return -1;
	db_bind_int64(last, ":lo", lo);
	db_bind_int64(last, ":max", max);
	rc = db_step(last);
	if (rc == DB_ROW)
		hi = db_column_int64(last, 0);
	db_reset(last);
	if (rc != DB_ROW)
		return -1;
	if (hi == lo)
		return 0;
	if (message_index_range(tri, lo, hi) != 0 ||
	    message_index_range(words, lo, hi) != 0)
		return -1;
	db_bind_int64(mark, ":hi", hi);
	rc = db_step(mark);
	db_reset(mark);
	return rc == DB_DONE ? hi - lo : -1;
}

int
message_search(struct db *db, int64_t user_id, int64_t room_id, const char *q,
               int limit, message_cb cb, void *arg)
{
	/* Driven by the FTS index in descending rowid (= id) order, so the
	 * LIMIT stops the scan at the newest matches. by_both checks the
	 * word index per candidate (EXISTS with rowid =) rather than
	 * materializing every word match (IN), which costs ~0.4 s for a
	 * common word at 1 000 000 messages. */
	struct db_stmt *by_trigram = db_prepare(
	    db, "SELECT " MESSAGE_COLUMNS " FROM messages_trigram f"
	        " JOIN messages m ON m.id = f.rowid" MESSAGE_JOINS
	        " WHERE f.messages_trigram MATCH :trigram" MESSAGE_SEARCH_SCOPE
	        " ORDER BY f.rowid DESC LIMIT :limit");
	struct db_stmt *by_words = db_prepare(
	    db, "SELECT " MESSAGE_COLUMNS " FROM messages_words f"
	        " JOIN messages m ON m.id = f.rowid" MESSAGE_JOINS
	        " WHERE f.messages_words MATCH :words" MESSAGE_SEARCH_SCOPE
	        " ORDER BY f.rowid DESC LIMIT :limit");
	struct db_stmt *by_both = db_prepare(
	    db, "SELECT " MESSAGE_COLUMNS " FROM messages_trigram f"
	        " JOIN messages m ON m.id = f.rowid" MESSAGE_JOINS
	        " WHERE f.messages_trigram MATCH :trigram"
	        " AND EXISTS (SELECT 1 FROM messages_words w"
	        " WHERE w.rowid = m.id"
	        " AND w.messages_words MATCH :words)" MESSAGE_SEARCH_SCOPE
	        " ORDER BY f.rowid DESC LIMIT :limit");
	struct message_query trigram = {0}, words = {0};
	struct db_stmt *st;
	int ret;

	if (db_is_postgres(db))
		return pg_message_search(db, user_id, room_id, q, limit, cb,
		                         arg);
	if (by_trigram == NULL || by_words == NULL || by_both == NULL)
		return -1;
	message_query_split(q, &trigram, &words);
	if (trigram.len == 0 && words.len == 0)
		return 0; /* nothing to look for */
	st = trigram.len == 0 ? by_words
	     : words.len == 0 ? by_trigram
	                      : by_both;
	if (trigram.len > 0)
		db_bind_text(st, ":trigram", trigram.s, (ptrdiff_t)trigram.len);
	if (words.len > 0)
		db_bind_text(st, ":words", words.s, (ptrdiff_t)words.len);
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":limit", limit);
	ret = message_each(db, st, -1, cb, arg, NULL);
	free(trigram.s);
	free(words.s);
	return ret;
}
