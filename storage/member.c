/* storage/member.c — members' roles and notification levels (the role
 * and notify columns of the members table; joining and leaving are in
 * storage/room.c) */
#include <string.h>

#include "storage/db.h"
#include "storage/storage.h"

int
member_role(struct db *db, int64_t room_id, int64_t user_id, int *role)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT role FROM members WHERE room_id = :room_id"
	                   " AND user_id = :user_id");
	int64_t v;
	int rc = db_get_room_user(st, room_id, user_id, &v);

	if (rc == 0 && role != NULL)
		*role = (int)v;
	return rc;
}

/* Runs an UPDATE of one member's :value. 0, 1 if not a member, -1. */
static int
member_update(struct db *db, struct db_stmt *st, int64_t room_id,
              int64_t user_id, int value)
{
	if (st == NULL)
		return -1;
	db_bind_int64(st, ":value", value);
	return db_run_room_user(db, st, room_id, user_id);
}

int
member_set_role(struct db *db, int64_t room_id, int64_t user_id, int role)
{
	return member_update(
	    db,
	    db_prepare(db, "UPDATE members SET role = :value"
	                   " WHERE room_id = :room_id AND user_id = :user_id"),
	    room_id, user_id, role);
}

int
member_set_notify(struct db *db, int64_t room_id, int64_t user_id, int level)
{
	return member_update(
	    db,
	    db_prepare(db, "UPDATE members SET notify = :value"
	                   " WHERE room_id = :room_id AND user_id = :user_id"),
	    room_id, user_id, level);
}

int
member_roles(struct db *db, int64_t room_id, member_role_cb cb, void *arg)
{
	struct db_stmt *st =
	    db_prepare(db, "SELECT u.username, m.role FROM members m"
	                   " JOIN users u ON u.id = m.user_id"
	                   " WHERE m.room_id = :room_id AND m.role <> 0"
	                   " ORDER BY u.username");
	int rc;

	if (st == NULL)
		return -1;
	db_bind_int64(st, ":room_id", room_id);
	while ((rc = db_step(st)) == DB_ROW) {
		if (cb(arg, db_column_text(st, 0, NULL),
		       (int)db_column_int64(st, 1)) != 0) {
			rc = DB_DONE;
			break;
		}
	}
	db_reset(st);
	return rc == DB_DONE ? 0 : -1;
}
