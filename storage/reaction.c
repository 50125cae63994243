/* storage/reaction.c — reactions to messages: the reactions table */
#include <string.h>

#include "chatd/xmalloc.h"
#include "storage/db.h"
#include "storage/storage.h"

/* The room of a live message: 0, 1 if missing or a tombstone, -1. */
static int
reaction_room(struct db *db, int64_t id, int64_t *room_id)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT room_id FROM messages WHERE id = :id AND deleted = 0");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	rc = db_step(st);
	if (rc == DB_ROW)
		*room_id = db_column_int64(st, 0);
	db_reset(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

/* Whether user_id may add emoji to message id under the caps of
 * storage.h: 0 if so, 1 if the user has that reaction already (nothing
 * to add), REACTION_OVER_* past a cap, -1. One range of the message's
 * rows: at most REACTION_MESSAGE_MAX of them. */
static int
reaction_cap(struct db *db, int64_t id, int64_t user_id, const char *emoji)
{
	struct db_stmt *st = db_prepare2(
	    db,
	    "SELECT count(*), count(DISTINCT emoji),"
	    " coalesce(sum(user_id = :user_id), 0),"
	    " coalesce(max(emoji = :emoji), 0),"
	    " coalesce(max(emoji = :emoji AND user_id = :user_id), 0)"
	    " FROM reactions WHERE message_id = :id",
	    "SELECT count(*), count(DISTINCT emoji),"
	    " count(*) FILTER (WHERE user_id = :user_id),"
	    " coalesce(bool_or(emoji = :emoji)::int, 0),"
	    " coalesce(bool_or(emoji = :emoji AND user_id = :user_id)::int, 0)"
	    " FROM reactions WHERE message_id = :id");
	int64_t total, emojis, mine, known, has;
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	db_bind_text(st, ":emoji", emoji, -1);
	db_bind_int64(st, ":user_id", user_id);
	if ((rc = db_step(st)) != DB_ROW) {
		db_reset(st);
		return -1;
	}
	total = db_column_int64(st, 0);
	emojis = db_column_int64(st, 1);
	mine = db_column_int64(st, 2);
	known = db_column_int64(st, 3);
	has = db_column_int64(st, 4);
	db_reset(st);
	if (has)
		return 1;
	if (mine >= REACTION_USER_MAX)
		return REACTION_OVER_USER;
	if (!known && emojis >= REACTION_EMOJIS_MAX)
		return REACTION_OVER_EMOJIS;
	if (total >= REACTION_MESSAGE_MAX)
		return REACTION_OVER_MESSAGE;
	return 0;
}

/* Adds or removes one reaction row: 0 if a row changed, 1 if not, -1. */
static int
reaction_row(struct db *db, int64_t id, int64_t user_id, const char *emoji,
             int on, int64_t seq)
{
	/* An emoji already in the list keeps its place (the emoji_ord of
	 * its rows); one entering it goes to the end. */
	struct db_stmt *add = db_prepare(
	    db, "INSERT INTO reactions (message_id, emoji, user_id, emoji_ord,"
	        " ord) VALUES (:id, :emoji, :user_id, coalesce((SELECT"
	        " emoji_ord FROM reactions WHERE message_id = :id"
	        " AND emoji = :emoji LIMIT 1), :seq), :seq)"
	        " ON CONFLICT DO NOTHING");
	struct db_stmt *del =
	    db_prepare(db, "DELETE FROM reactions WHERE message_id = :id"
	                   " AND emoji = :emoji AND user_id = :user_id");
	struct db_stmt *st = on ? add : del;
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	db_bind_text(st, ":emoji", emoji, -1);
	db_bind_int64(st, ":user_id", user_id);
	if (on)
		db_bind_int64(st, ":seq", seq);
	rc = db_step(st);
	db_reset(st);
	if (rc != DB_DONE)
		return -1;
	return db_changes(db) == 1 ? 0 : 1;
}

int
reaction_set(struct db *db, int64_t id, int64_t user_id, const char *emoji,
             int on, int64_t seq)
{
	/* Only seq and reacted change in the message's row: the same
	 * record size in place (no text rewritten, see PERFORMANCE.md). */
	struct db_stmt *msg = db_prepare(
	    db, "UPDATE messages SET seq = :seq, reacted = 1 WHERE id = :id");
	struct db_stmt *room = db_prepare2(
	    db, "UPDATE rooms SET last_seq = max(last_seq, :seq) WHERE id = :id",
	    "UPDATE rooms SET last_seq = greatest(last_seq, :seq)"
	    " WHERE id = :id");
	int64_t room_id = 0;
	int rc;

	if (msg == NULL || room == NULL)
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	if ((rc = reaction_room(db, id, &room_id)) != 0) {
		if (rc == 1) {
			db_release(db);
			return 2;
		}
		goto fail;
	}
	/* Past a cap only adding is refused: removing always works. */
	if ((on && (rc = reaction_cap(db, id, user_id, emoji)) != 0) ||
	    (rc = reaction_row(db, id, user_id, emoji, on, seq)) != 0) {
		if (rc > 0) {
			db_release(db);
			return rc;
		}
		goto fail;
	}
	db_bind_int64(msg, ":seq", seq);
	if (db_run_id(msg, id) == -1)
		goto fail;
	db_bind_int64(room, ":seq", seq);
	if (db_run_id(room, room_id) == -1)
		goto fail;
	return db_release(db) == 0 ? 0 : -1;
fail:
	db_rollback_to(db);
	return -1;
}

/* Appends len bytes of s to the buffer. */
static void
reaction_put(char **buf, size_t *cap, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

int
reaction_list(struct db *db, int64_t id, char **buf, size_t *cap, size_t *len)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT r.emoji, u.username FROM reactions r"
	        " JOIN users u ON u.id = r.user_id WHERE r.message_id = :id"
	        " ORDER BY r.emoji_ord, r.emoji, r.ord");
	const char *emoji, *user;
	size_t elen = 0, ulen = 0, plen = 0, prev = 0;
	char sep;
	int rc;

	*len = 0;
	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	while ((rc = db_step(st)) == DB_ROW) {
		emoji = db_column_text(st, 0, &elen);
		user = db_column_text(st, 1, &ulen);
		if (emoji == NULL || user == NULL)
			continue;
		/* A new record when the emoji differs from the last one. */
		if (*len == 0 || elen != plen ||
		    memcmp(*buf + prev, emoji, elen) != 0) {
			if (*len > 0) {
				sep = REACTION_SEP;
				reaction_put(buf, cap, len, &sep, 1);
			}
			prev = *len;
			plen = elen;
			reaction_put(buf, cap, len, emoji, elen);
		}
		sep = REACTION_USER;
		reaction_put(buf, cap, len, &sep, 1);
		reaction_put(buf, cap, len, user, ulen);
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
reaction_next(const char **p, const char *end, struct reaction_view *v)
{
	const char *s = *p, *rec_end, *u;

	if (s == NULL || s >= end)
		return 0;
	rec_end = memchr(s, REACTION_SEP, (size_t)(end - s));
	if (rec_end == NULL)
		rec_end = end;
	u = memchr(s, REACTION_USER, (size_t)(rec_end - s));
	if (u == NULL)
		u = rec_end;
	v->emoji = s;
	v->emoji_len = (size_t)(u - s);
	v->users = u;
	v->users_len = (size_t)(rec_end - u);
	v->count = 0;
	for (const char *q = u; q < rec_end; q++)
		if (*q == REACTION_USER)
			v->count++;
	*p = rec_end < end ? rec_end + 1 : end;
	return 1;
}
