/* storage/room.c — rooms and their members (the rooms and members tables) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/log.h"
#include "storage/db.h"
#include "storage/storage.h"

/* The columns room_row reads, ROOM_NCOLS of them. */
#define ROOM_COLUMNS                                                           \
	"r.id, r.name, r.kind, r.last_seq, r.created_at, r.private, r.topic"
#define ROOM_NCOLS 7

/* Copies a rooms row (ROOM_COLUMNS from col on). A private room is kind
 * 0 with private = 1 in the table (migrations/sqlite/005_team_rooms.sql). */
static void
room_row(struct db_stmt *st, int col, struct room *out)
{
	size_t len;
	const char *name = db_column_text(st, col + 1, &len);
	const char *topic;

	memset(out, 0, sizeof *out);
	out->id = db_column_int64(st, col);
	if (name != NULL)
		memcpy(out->name, name,
		       len > ROOMNAME_MAX ? ROOMNAME_MAX : len);
	out->kind = (int)db_column_int64(st, col + 2);
	out->last_seq = db_column_int64(st, col + 3);
	out->created_at = db_column_int64(st, col + 4);
	if (out->kind == ROOM_PUBLIC && db_column_int64(st, col + 5) != 0)
		out->kind = ROOM_PRIVATE;
	if ((topic = db_column_text(st, col + 6, &len)) != NULL)
		memcpy(out->topic, topic,
		       len > ROOM_TOPIC_BYTES ? ROOM_TOPIC_BYTES : len);
}

/* Reads the one row st finds into out (may be NULL): 0, 1 if none, -1.
 * Resets st. */
static int
room_one(struct db_stmt *st, struct room *out)
{
	int rc, ret = -1;

	rc = db_step(st);
	if (rc == DB_ROW) {
		if (out != NULL)
			room_row(st, 0, out);
		ret = 0;
	} else if (rc == DB_DONE)
		ret = 1;
	db_reset(st);
	return ret;
}

int
room_by_name(struct db *db, const char *name, struct room *out)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT " ROOM_COLUMNS " FROM rooms r WHERE r.name = :name");

	if (st == NULL)
		return -1;
	db_bind_text(st, ":name", name, -1);
	return room_one(st, out);
}

int
room_by_id(struct db *db, int64_t id, struct room *out)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT " ROOM_COLUMNS " FROM rooms r WHERE r.id = :id");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", id);
	return room_one(st, out);
}

/* Steps st's rows of (user id, username) into cb until it returns
 * non-zero; resets st. 0 or -1. */
static int
member_rows(struct db_stmt *st, member_cb cb, void *arg)
{
	int rc;

	while ((rc = db_step(st)) == DB_ROW)
		if (cb(arg, db_column_int64(st, 0),
			db_column_text(st, 1, NULL)) != 0) {
			rc = DB_DONE;
			break;
		}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

/* member_sharing for at most MEMBER_SHARING_BATCH ids. */
static int
member_sharing_batch(struct db *db, int64_t user, const int64_t *ids,
    size_t n, member_cb fn, void *arg)
{
	/* The ids as one JSON array: one statement for any count. */
	char list[MEMBER_SHARING_BATCH * 21 + 2];
	size_t len = 0;
	struct db_stmt *st = db_prepare2(db,
	    "SELECT u.id, u.username FROM users u"
	    " WHERE u.id IN (SELECT value FROM json_each(:ids))"
	    " AND EXISTS (SELECT 1 FROM members x JOIN members y"
	    "  ON y.room_id = x.room_id AND y.user_id = u.id"
	    "  WHERE x.user_id = :user)"
	    " ORDER BY u.id",
	    "SELECT u.id, u.username FROM users u"
	    " WHERE u.id IN (SELECT value::bigint FROM"
	    "  jsonb_array_elements_text(CAST(:ids AS jsonb)))"
	    " AND EXISTS (SELECT 1 FROM members x JOIN members y"
	    "  ON y.room_id = x.room_id AND y.user_id = u.id"
	    "  WHERE x.user_id = :user)"
	    " ORDER BY u.id");

	if (st == NULL)
		return -1;
	list[len++] = '[';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%lld",
		    i > 0 ? "," : "", (long long)ids[i]);
	list[len++] = ']';
	db_bind_text(st, ":ids", list, (int)len);
	db_bind_int64(st, ":user", user);
	return member_rows(st, fn, arg);
}

int
member_sharing(struct db *db, int64_t user, const int64_t *ids, size_t n,
    member_cb fn, void *arg)
{
	for (size_t i = 0; i < n; i += MEMBER_SHARING_BATCH)
		if (member_sharing_batch(db, user, ids + i,
			n - i < MEMBER_SHARING_BATCH ? n - i :
						       MEMBER_SHARING_BATCH,
			fn, arg) != 0)
			return -1;
	return 0;
}

int
room_create(struct db *db, const char *name, int kind, int64_t now,
            struct room *out)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO rooms (name, kind, private, created_at)"
	        " VALUES (:name, :kind, :private, :now)"
	        " ON CONFLICT (name) DO NOTHING");
	struct room tmp;
	int rc, created;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":name", name, -1);
	db_bind_int64(st, ":kind", kind == ROOM_PRIVATE ? ROOM_PUBLIC : kind);
	db_bind_int64(st, ":private", kind == ROOM_PRIVATE);
	db_bind_int64(st, ":now", now);
	rc = db_step(st);
	created = rc == DB_DONE && db_changes(db) > 0;
	db_reset(st);
	if (rc != DB_DONE)
		return -1;
	if (room_by_name(db, name, out != NULL ? out : &tmp) != 0)
		return -1;
	return created ? 0 : 1;
}

int
room_delete(struct db *db, int64_t room_id)
{
	/* On PostgreSQL, the room's row first: a send that inserts into the
	 * room meanwhile (its row lock, FOR KEY SHARE) is either committed
	 * before the messages go, or waits and finds the room gone, never
	 * leaves a message that makes the room's DELETE fail. Not on
	 * SQLite: a read first would make the transaction's first write an
	 * upgrade, which fails at once (busy) after another's commit, where
	 * a first write waits for the lock. */
	int pg = db_is_postgres(db);
	struct db_stmt *lock =
	    pg ? db_prepare(db, "SELECT 1 FROM rooms WHERE id = :id FOR UPDATE")
	       : NULL;
	/* The room's seqs stay used: seq_floor keeps db_max_seq from going
	 * back when the room with the highest seq goes. */
	struct db_stmt *floor = db_prepare2(
	    db,
	    "UPDATE meta SET value = CAST(max(CAST(value AS INTEGER),"
	    " (SELECT last_seq FROM rooms WHERE id = :id)) AS TEXT)"
	    " WHERE key = 'seq_floor'"
	    " AND EXISTS (SELECT 1 FROM rooms WHERE id = :id)",
	    "UPDATE meta SET value = greatest(value::bigint,"
	    " (SELECT last_seq FROM rooms WHERE id = :id))::text"
	    " WHERE key = 'seq_floor'"
	    " AND EXISTS (SELECT 1 FROM rooms WHERE id = :id)");
	struct db_stmt *files =
	    db_prepare(db, "DELETE FROM files WHERE room_id = :id");
	struct db_stmt *messages =
	    db_prepare(db, "DELETE FROM messages WHERE room_id = :id");
	struct db_stmt *members =
	    db_prepare(db, "DELETE FROM members WHERE room_id = :id");
	struct db_stmt *bans =
	    db_prepare(db, "DELETE FROM bans WHERE room_id = :id");
	struct db_stmt *room =
	    db_prepare(db, "DELETE FROM rooms WHERE id = :id");
	int rc;

	if ((pg && lock == NULL) || floor == NULL || files == NULL ||
	    messages == NULL || members == NULL || bans == NULL || room == NULL)
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	/* The files' bytes are removed by the server's sweep of bytes no
	 * row names (chatd/files.c). */
	rc = DB_DONE;
	if (pg) {
		db_bind_int64(lock, ":id", room_id);
		while ((rc = db_step(lock)) == DB_ROW)
			;
		db_reset(lock);
	}
	if (rc != DB_DONE || db_run_id(floor, room_id) == -1 ||
	    db_run_id(files, room_id) == -1 ||
	    db_run_id(messages, room_id) == -1 ||
	    db_run_id(members, room_id) == -1 ||
	    db_run_id(bans, room_id) == -1 || db_run_id(room, room_id) == -1)
		goto fail;
	if (db_changes(db) == 0) {
		db_release(db);
		return 1;
	}
	if (admin_changed(db) == -1)
		goto fail;
	return db_release(db);
fail:
	db_rollback_to(db);
	return -1;
}

/* Calls cb for each row of a room listing (room columns, then the member
 * count at column ROOM_NCOLS). 0 or -1. */
static int
room_list(struct db_stmt *st, room_cb cb, void *arg)
{
	struct room r;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		room_row(st, 0, &r);
		r.members = db_column_int64(st, ROOM_NCOLS);
		if (cb(arg, &r) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
room_list_public(struct db *db, const char *after, int64_t limit, room_cb cb,
                 void *arg)
{
	/* rooms_kind_name (kind, name): a page is a range of the index. */
	struct db_stmt *st = db_prepare(
	    db, "SELECT " ROOM_COLUMNS ","
	        " (SELECT count(*) FROM members m WHERE m.room_id = r.id)"
	        " FROM rooms r WHERE r.kind = :kind AND r.private = 0"
	        " AND r.name > :after ORDER BY r.name LIMIT :limit");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":kind", ROOM_PUBLIC);
	db_bind_text(st, ":after", after != NULL ? after : "", -1);
	/* -1: all (PostgreSQL refuses a negative LIMIT) */
	db_bind_int64(st, ":limit", limit < 0 ? INT64_MAX : limit);
	return room_list(st, cb, arg);
}

int
room_list_all(struct db *db, room_cb cb, void *arg)
{
	return room_list(
	    db_prepare(
	        db, "SELECT " ROOM_COLUMNS ","
	            " (SELECT count(*) FROM members m WHERE m.room_id = r.id)"
	            " FROM rooms r ORDER BY r.name"),
	    cb, arg);
}

int
member_add(struct db *db, int64_t room_id, int64_t user_id, int64_t read_seq,
           int64_t now)
{
	/* seen: the room's messages less the unread ones (migration 004);
	 * with read_seq at the room's last_seq (join) the count is one
	 * index probe that finds nothing. */
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO members (room_id, user_id, read_seq, joined_at,"
	        " seen) VALUES (:room_id, :user_id, :read_seq, :now,"
	        " (SELECT msgs FROM rooms WHERE id = :room_id) -"
	        " (SELECT count(*) FROM messages WHERE room_id = :room_id"
	        "  AND id > :read_seq AND user_id <> :user_id"
	        "  AND deleted = 0))"
	        " ON CONFLICT (room_id, user_id) DO NOTHING");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":read_seq", read_seq);
	db_bind_int64(st, ":now", now);
	rc = db_step(st);
	if (rc == DB_DONE)
		ret = db_changes(db) == 0 ? 1 : 0;
	else if (rc == DB_CONSTRAINT)
		log_error("%s: no room %lld or user %lld", __func__,
		          (long long)room_id, (long long)user_id);
	db_reset(st);
	return ret;
}

int
member_count(struct db *db, int64_t user_id, int64_t max, int64_t *count)
{
	/* members_user (user_id, room_id): at most max + 1 index entries. */
	struct db_stmt *st =
	    db_prepare(db, "SELECT count(*) FROM (SELECT 1 FROM members"
	                   " WHERE user_id = :user_id LIMIT :max) AS m");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":max", max + 1);
	if ((rc = db_step(st)) == DB_ROW)
		*count = db_column_int64(st, 0);
	db_reset(st);
	return rc == DB_ROW ? 0 : -1;
}

int
member_remove(struct db *db, int64_t room_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_prepare(db, "DELETE FROM members WHERE room_id = :room_id"
	                   " AND user_id = :user_id");

	return db_run_room_user(db, st, room_id, user_id);
}

int
member_get(struct db *db, int64_t room_id, int64_t user_id, int64_t *read_seq)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT read_seq FROM members WHERE room_id = :room_id"
	        " AND user_id = :user_id");

	return db_get_room_user(st, room_id, user_id, read_seq);
}

int
member_list(struct db *db, int64_t room_id, member_cb cb, void *arg)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT u.id, u.username FROM members m"
	                   " JOIN users u ON u.id = m.user_id"
	                   " WHERE m.room_id = :room_id ORDER BY u.username");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	return member_rows(st, cb, arg);
}

int
member_rooms(struct db *db, int64_t user_id, room_state_cb cb, void *arg)
{
	/* The unread count is maintained (migration 004): two rows a room,
	 * no message is read. */
	struct db_stmt *st = db_prepare(
	    db, "SELECT " ROOM_COLUMNS ", m.read_seq, r.msgs - m.seen,"
	        " m.role, m.notify"
	        " FROM members m JOIN rooms r ON r.id = m.room_id"
	        " WHERE m.user_id = :user_id ORDER BY r.name");
	struct room_state s;
	struct mention_count *mc;
	size_t nmc;
	int rc;

	if (st == NULL)
		return -1;
	/* The mention counts of every room at once (mention.c). */
	if (mention_counts(db, user_id, &mc, &nmc) != 0)
		return -1;
	db_bind_int64(st, ":user_id", user_id);
	while ((rc = db_step(st)) == DB_ROW) {
		room_row(st, 0, &s.room);
		s.read_seq = db_column_int64(st, ROOM_NCOLS);
		s.unread = db_column_int64(st, ROOM_NCOLS + 1);
		s.role = (int)db_column_int64(st, ROOM_NCOLS + 2);
		s.notify = (int)db_column_int64(st, ROOM_NCOLS + 3);
		s.mentions = mention_count_of(mc, nmc, s.room.id);
		if (cb(arg, &s) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	free(mc);
	return rc == DB_DONE ? 0 : -1;
}

/* Live messages of a room by others than user_id with lo < id <= hi
 * (an index range of messages_room_id, which covers the test). -1 on
 * error. */
static int64_t
member_unread_between(struct db *db, int64_t room_id, int64_t user_id,
                      int64_t lo, int64_t hi)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT count(*) FROM messages WHERE room_id = :room_id"
	        " AND id > :lo AND id <= :hi AND user_id <> :user_id"
	        " AND deleted = 0");
	int64_t n = -1;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":lo", lo);
	db_bind_int64(st, ":hi", hi);
	if (db_step(st) == DB_ROW)
		n = db_column_int64(st, 0);
	db_reset(st);
	return n;
}

/* The member's seen count once read_seq moves from cur to want (room
 * state last and msgs, current seen). Up to last_seq: msgs, no lookup.
 * Part way: the messages newly read, or those still unread, whichever
 * seq range is shorter; read_seq only moves up, so what a member's reads
 * count over a room's life is at most its messages. -1 on error. */
static int64_t
member_seen_at(struct db *db, int64_t room_id, int64_t user_id, int64_t cur,
               int64_t want, int64_t last, int64_t msgs, int64_t seen)
{
	int64_t n;

	if (want >= last)
		return msgs;
	if (want - cur <= last - want) {
		n = member_unread_between(db, room_id, user_id, cur, want);
		return n < 0 ? -1 : seen + n;
	}
	n = member_unread_between(db, room_id, user_id, want, last);
	return n < 0 ? -1 : msgs - n;
}

int
member_set_read(struct db *db, int64_t room_id, int64_t user_id, int64_t seq,
                int64_t *stored, int *moved)
{
	struct db_stmt *get = db_prepare(
	    db, "SELECT m.read_seq, r.last_seq, r.msgs, m.seen FROM members m"
	        " JOIN rooms r ON r.id = m.room_id"
	        " WHERE m.room_id = :room_id AND m.user_id = :user_id");
	struct db_stmt *set = db_prepare(
	    db, "UPDATE members SET read_seq = :read_seq, seen = :seen"
	        " WHERE room_id = :room_id AND user_id = :user_id");
	int64_t cur = 0, last = 0, msgs = 0, seen = 0, want;
	int rc;

	if (moved != NULL)
		*moved = 0;
	if (get == NULL || set == NULL)
		return -1;
	db_bind_int64(get, ":room_id", room_id);
	db_bind_int64(get, ":user_id", user_id);
	rc = db_step(get);
	if (rc == DB_ROW) {
		cur = db_column_int64(get, 0);
		last = db_column_int64(get, 1);
		msgs = db_column_int64(get, 2);
		seen = db_column_int64(get, 3);
	}
	db_reset(get);
	if (rc != DB_ROW)
		return rc == DB_DONE ? 1 : -1;

	want = seq < last ? seq : last;
	if (want > cur) {
		seen = member_seen_at(db, room_id, user_id, cur, want, last,
		                      msgs, seen);
		if (seen < 0)
			return -1;
		db_bind_int64(set, ":read_seq", want);
		db_bind_int64(set, ":seen", seen);
		db_bind_int64(set, ":room_id", room_id);
		db_bind_int64(set, ":user_id", user_id);
		rc = db_step(set);
		db_reset(set);
		if (rc != DB_DONE)
			return -1;
		cur = want;
		if (moved != NULL)
			*moved = 1;
	}
	if (stored != NULL)
		*stored = cur;
	return 0;
}

int
room_counts_rebuild(struct db *db)
{
	/* The same counts as migration 004's backfill. */
	struct db_stmt *rooms = db_prepare(
	    db, "UPDATE rooms SET msgs = (SELECT count(*) FROM messages g"
	        " WHERE g.room_id = rooms.id)");
	struct db_stmt *members = db_prepare(
	    db, "UPDATE members SET seen ="
	        " (SELECT r.msgs FROM rooms r WHERE r.id = members.room_id) -"
	        " (SELECT count(*) FROM messages g"
	        "  WHERE g.room_id = members.room_id"
	        "  AND g.id > members.read_seq"
	        "  AND g.user_id <> members.user_id AND g.deleted = 0)");
	int rc;

	if (rooms == NULL || members == NULL)
		return -1;
	rc = db_step(rooms);
	db_reset(rooms);
	if (rc != DB_DONE)
		return -1;
	rc = db_step(members);
	db_reset(members);
	return rc == DB_DONE ? 0 : -1;
}

int
room_set_topic(struct db *db, int64_t room_id, const char *topic)
{
	struct db_stmt *st =
	    db_prepare(db, "UPDATE rooms SET topic = :topic WHERE id = :id");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":topic", topic, -1);
	db_bind_int64(st, ":id", room_id);
	rc = db_step(st);
	db_reset(st);
	if (rc != DB_DONE)
		return -1;
	return db_changes(db) == 0 ? 1 : 0;
}
