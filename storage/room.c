/* storage/room.c — rooms and their members (the rooms and members tables) */
#include <string.h>

#include "chatd/log.h"
#include "storage/db.h"
#include "storage/storage.h"

/* Copies a rooms row (id, name, kind, last_seq, created_at from col on). */
static void
room_row(struct db_stmt *st, int col, struct room *out)
{
	size_t len;
	const char *name = db_column_text(st, col + 1, &len);

	memset(out, 0, sizeof *out);
	out->id = db_column_int64(st, col);
	if (name != NULL)
		memcpy(out->name, name,
		       len > ROOMNAME_MAX ? ROOMNAME_MAX : len);
	out->kind = (int)db_column_int64(st, col + 2);
	out->last_seq = db_column_int64(st, col + 3);
	out->created_at = db_column_int64(st, col + 4);
}

int
room_by_name(struct db *db, const char *name, struct room *out)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT id, name, kind, last_seq, created_at FROM rooms"
	        " WHERE name = :name");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":name", name, -1);
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
room_create(struct db *db, const char *name, int kind, int64_t now,
            struct room *out)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO rooms (name, kind, created_at)"
	        " VALUES (:name, :kind, :now) ON CONFLICT (name) DO NOTHING");
	struct room tmp;
	int rc, created;

	if (st == NULL)
		return -1;
	db_bind_text(st, ":name", name, -1);
	db_bind_int64(st, ":kind", kind);
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
	/* The room's seqs stay used: seq_floor keeps db_max_seq from going
	 * back when the room with the highest seq goes. */
	struct db_stmt *floor = db_prepare(
	    db, "UPDATE meta SET value = CAST(max(CAST(value AS INTEGER),"
	        " (SELECT last_seq FROM rooms WHERE id = :id)) AS TEXT)"
	        " WHERE key = 'seq_floor'"
	        " AND EXISTS (SELECT 1 FROM rooms WHERE id = :id)");
	struct db_stmt *files =
	    db_prepare(db, "DELETE FROM files WHERE room_id = :id");
	struct db_stmt *messages =
	    db_prepare(db, "DELETE FROM messages WHERE room_id = :id");
	struct db_stmt *members =
	    db_prepare(db, "DELETE FROM members WHERE room_id = :id");
	struct db_stmt *room =
	    db_prepare(db, "DELETE FROM rooms WHERE id = :id");

	if (floor == NULL || files == NULL || messages == NULL ||
	    members == NULL || room == NULL)
		return -1;
	if (db_savepoint(db) == -1)
		return -1;
	/* The files' bytes are removed by the server's sweep of bytes no
	 * row names (chatd/files.c). */
	if (db_run_id(floor, room_id) == -1 ||
	    db_run_id(files, room_id) == -1 ||
	    db_run_id(messages, room_id) == -1 ||
	    db_run_id(members, room_id) == -1 ||
	    db_run_id(room, room_id) == -1)
		goto fail;
	if (db_changes(db) == 0) {
		db_release(db);
		return 1;
	}
	return db_release(db);
fail:
	db_rollback_to(db);
	return -1;
}

/* Calls cb for each row of a room listing (room columns, then the member
 * count at column 5). 0 or -1. */
static int
room_list(struct db_stmt *st, room_cb cb, void *arg)
{
	struct room r;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		room_row(st, 0, &r);
		r.members = db_column_int64(st, 5);
		if (cb(arg, &r) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
room_list_public(struct db *db, room_cb cb, void *arg)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT r.id, r.name, r.kind, r.last_seq, r.created_at,"
	        " (SELECT count(*) FROM members m WHERE m.room_id = r.id)"
	        " FROM rooms r WHERE r.kind = :kind ORDER BY r.name");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":kind", ROOM_PUBLIC);
	return room_list(st, cb, arg);
}

int
room_list_all(struct db *db, room_cb cb, void *arg)
{
	return room_list(
	    db_prepare(
	        db, "SELECT r.id, r.name, r.kind, r.last_seq, r.created_at,"
	            " (SELECT count(*) FROM members m WHERE m.room_id = r.id)"
	            " FROM rooms r ORDER BY r.name"),
	    cb, arg);
}

int
member_add(struct db *db, int64_t room_id, int64_t user_id, int64_t read_seq,
           int64_t now)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO members (room_id, user_id, read_seq, joined_at)"
	        " VALUES (:room_id, :user_id, :read_seq, :now)"
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
member_remove(struct db *db, int64_t room_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_prepare(db, "DELETE FROM members WHERE room_id = :room_id"
	                   " AND user_id = :user_id");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	rc = db_step(st);
	if (rc == DB_DONE)
		ret = db_changes(db) == 0 ? 1 : 0;
	db_reset(st);
	return ret;
}

int
member_get(struct db *db, int64_t room_id, int64_t user_id, int64_t *read_seq)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT read_seq FROM members WHERE room_id = :room_id"
	        " AND user_id = :user_id");
	int rc, ret = -1;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	rc = db_step(st);
	if (rc == DB_ROW) {
		if (read_seq != NULL)
			*read_seq = db_column_int64(st, 0);
		ret = 0;
	} else if (rc == DB_DONE)
		ret = 1;
	db_reset(st);
	return ret;
}

int
member_list(struct db *db, int64_t room_id, member_cb cb, void *arg)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT u.id, u.username FROM members m"
	                   " JOIN users u ON u.id = m.user_id"
	                   " WHERE m.room_id = :room_id ORDER BY u.username");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	while ((rc = db_step(st)) == DB_ROW) {
		if (cb(arg, db_column_int64(st, 0),
		       db_column_text(st, 1, NULL)) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
member_rooms(struct db *db, int64_t user_id, room_state_cb cb, void *arg)
{
	/* The unread count is a range scan of messages_room_id, which
	 * covers user_id and deleted: only the unread rows are visited. */
	struct db_stmt *st = db_prepare(
	    db, "SELECT r.id, r.name, r.kind, r.last_seq, r.created_at,"
	        " m.read_seq,"
	        " (SELECT count(*) FROM messages g"
	        "  WHERE g.room_id = r.id AND g.id > m.read_seq"
	        "  AND g.user_id <> :user_id AND g.deleted = 0)"
	        " FROM members m JOIN rooms r ON r.id = m.room_id"
	        " WHERE m.user_id = :user_id ORDER BY r.name");
	struct room_state s;
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":user_id", user_id);
	while ((rc = db_step(st)) == DB_ROW) {
		room_row(st, 0, &s.room);
		s.read_seq = db_column_int64(st, 5);
		s.unread = db_column_int64(st, 6);
		if (cb(arg, &s) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}

int
member_set_read(struct db *db, int64_t room_id, int64_t user_id, int64_t seq,
                int64_t *stored, int *moved)
{
	struct db_stmt *get = db_prepare(
	    db, "SELECT m.read_seq, r.last_seq FROM members m"
	        " JOIN rooms r ON r.id = m.room_id"
	        " WHERE m.room_id = :room_id AND m.user_id = :user_id");
	struct db_stmt *set =
	    db_prepare(db, "UPDATE members SET read_seq = :read_seq"
	                   " WHERE room_id = :room_id AND user_id = :user_id");
	int64_t cur = 0, last = 0, want;
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
	}
	db_reset(get);
	if (rc != DB_ROW)
		return rc == DB_DONE ? 1 : -1;

	want = seq < last ? seq : last;
	if (want > cur) {
		db_bind_int64(set, ":read_seq", want);
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
