/* storage/admin.c — counts and checks for /metrics and the admin CLI */
#include "storage/db.h"
#include "storage/storage.h"

int
admin_counts(struct db *db, int64_t *public_rooms, int64_t *dm_rooms,
             int64_t *users)
{
	struct db_stmt *st = db_prepare(
	    db, "SELECT (SELECT count(*) FROM rooms WHERE kind = :public),"
	        " (SELECT count(*) FROM rooms WHERE kind = :dm),"
	        " (SELECT count(*) FROM users WHERE deleted = 0)");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":public", ROOM_PUBLIC);
	db_bind_int64(st, ":dm", ROOM_DM);
	rc = db_step(st);
	if (rc == DB_ROW) {
		*public_rooms = db_column_int64(st, 0);
		*dm_rooms = db_column_int64(st, 1);
		*users = db_column_int64(st, 2);
	}
	db_reset(st);
	return rc == DB_ROW ? 0 : -1;
}

int
admin_room_gone(struct db *db, int64_t room_id)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT 1 FROM rooms WHERE id = :id");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":id", room_id);
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE;
}

int
admin_changed(struct db *db)
{
	struct db_stmt *st;
	int rc;

	if (!db_is_postgres(db))
		return 0; /* SQLite's PRAGMA data_version sees every commit */
	st = db_prepare(db, "UPDATE meta SET value = (value::bigint + 1)::text"
	                    " WHERE key = 'admin_version'");
	if (st == NULL)
		return -1;
	rc = db_step(st);
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}
