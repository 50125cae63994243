/* storage/ban.c — who is banned from which room (the bans table) */
#include "storage/db.h"
#include "storage/storage.h"

int
ban_add(struct db *db, int64_t room_id, int64_t user_id, int64_t now)
{
	struct db_stmt *st =
	    db_prepare(db, "INSERT INTO bans (room_id, user_id, created_at)"
	                   " VALUES (:room_id, :user_id, :now)"
	                   " ON CONFLICT (room_id, user_id) DO NOTHING");

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":now", now);
	return db_run_room_user(db, st, room_id, user_id);
}

int
ban_remove(struct db *db, int64_t room_id, int64_t user_id)
{
	return db_run_room_user(
	    db,
	    db_prepare(db, "DELETE FROM bans WHERE room_id = :room_id"
	                   " AND user_id = :user_id"),
	    room_id, user_id);
}

int
ban_get(struct db *db, int64_t room_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT 1 FROM bans WHERE room_id = :room_id"
	                   " AND user_id = :user_id");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}
