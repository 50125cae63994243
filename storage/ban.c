/* storage/ban.c — who is banned from which room (the bans table) */
#include "storage/db.h"
#include "storage/storage.h"

/* Runs st with :room_id and :user_id bound. 0 if it changed a row, 1 if
 * not, -1. */
static int
ban_run(struct db *db, struct db_stmt *st, int64_t room_id, int64_t user_id)
{
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	rc = db_step(st);
	db_reset(st);
	if (rc != DB_DONE)
		return -1;
	return db_changes(db) == 0 ? 1 : 0;
}

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
	return ban_run(db, st, room_id, user_id);
}

int
ban_remove(struct db *db, int64_t room_id, int64_t user_id)
{
	return ban_run(db,
	               db_prepare(db,
	                          "DELETE FROM bans WHERE room_id = :room_id"
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
