/* storage/mention.c — mentions: the rows behind the per-member counts */
#include <stdlib.h>
#include <string.h>

#include "chatd/xmalloc.h"
#include "storage/db.h"
#include "storage/storage.h"

int
mention_member(struct db *db, int64_t room_id, const char *name,
               int64_t *user_id)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT u.id FROM users u JOIN members m ON m.user_id = u.id"
	        " AND m.room_id = :room_id WHERE u.username = :name");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_text(st, ":name", name, -1);
	rc = db_step(st);
	if (rc == DB_ROW)
		*user_id = db_column_int64(st, 0);
	db_reset(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

int
mention_index(struct db *db, const struct message *m)
{
	struct db_stmt *drop =
	    db_prepare(db, "DELETE FROM mentions WHERE message_id = :id");
	struct db_stmt *ins = db_prepare(
	    db, "INSERT INTO mentions (user_id, room_id, message_id)"
	        " VALUES (:user_id, :room_id, :id) ON CONFLICT DO NOTHING");
	int rc;

	if (drop == NULL || ins == NULL || db_run_id(drop, m->id) != 0)
		return -1;
	/* @room is counted for everyone by messages_room_mention. */
	if (m->mention_room)
		return 0;
	for (size_t i = 0; i < m->nmention_ids; i++) {
		if (m->mention_ids[i] == m->user_id)
			continue;
		db_bind_int64(ins, ":user_id", m->mention_ids[i]);
		db_bind_int64(ins, ":room_id", m->room_id);
		db_bind_int64(ins, ":id", m->id);
		rc = db_step(ins);
		db_reset(ins);
		if (rc != DB_DONE)
			return -1;
	}
	return 0;
}

/* Adds count to room_id's entry of the sorted array (appending). */
static void
mention_add(struct mention_count **out, size_t *n, size_t *cap, int64_t room_id,
            int64_t count)
{
	size_t lo = 0, hi = *n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if ((*out)[mid].room_id < room_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < *n && (*out)[lo].room_id == room_id) {
		(*out)[lo].count += count;
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*out = xrealloc(*out, *cap * sizeof **out);
	}
	memmove(*out + lo + 1, *out + lo, (*n - lo) * sizeof **out);
	(*out)[lo].room_id = room_id;
	(*out)[lo].count = count;
	(*n)++;
}

int
mention_counts(struct db *db, int64_t user_id, struct mention_count **out,
               size_t *n)
{
	/* By name: the range of (user, room, id > read_seq) of each room.
	 * The rows are of live messages by others only (mention_index). */
	struct db_stmt *named = db_prepare(
	    db, "SELECT b.room_id, (SELECT count(*) FROM mentions n"
	        " WHERE n.user_id = :user_id AND n.room_id = b.room_id"
	        " AND n.message_id > b.read_seq)"
	        " FROM members b WHERE b.user_id = :user_id");
	/* @room: the partial index's range of each room above read_seq. */
	struct db_stmt *room =
	    db_prepare(db, "SELECT b.room_id, (SELECT count(*) FROM messages g"
	                   " WHERE g.room_id = b.room_id AND g.id > b.read_seq"
	                   " AND g.mention_room = 1 AND g.deleted = 0"
	                   " AND g.user_id <> :user_id)"
	                   " FROM members b WHERE b.user_id = :user_id");
	struct db_stmt *sts[2] = {named, room};
	size_t cap = 0;
	int rc = DB_DONE;

	*out = NULL;
	*n = 0;
	if (named == NULL || room == NULL)
		return -1;
	for (int i = 0; i < 2 && rc == DB_DONE; i++) {
		db_bind_int64(sts[i], ":user_id", user_id);
		while ((rc = db_step(sts[i])) == DB_ROW)
			if (db_column_int64(sts[i], 1) > 0)
				mention_add(out, n, &cap,
				            db_column_int64(sts[i], 0),
				            db_column_int64(sts[i], 1));
		db_reset(sts[i]);
	}
	if (rc != DB_DONE) {
		free(*out);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}

int64_t
mention_count_of(const struct mention_count *c, size_t n, int64_t room_id)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (c[mid].room_id < room_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && c[lo].room_id == room_id ? c[lo].count : 0;
}
