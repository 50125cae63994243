/* tests/unit/test_migrate.c — migrations 004-006 (unread counters, team
 * rooms, ...) upgrade a version 1 database (migrations 1-3, as chatd
 * before them wrote it) in place, keeping every message, seq and read
 * position. The version 1 rows are written with version 1's SQL: today's
 * storage functions use the new columns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chatd/log.h"
#include "storage/db.h"
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "migrate"), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	db_set_migrate_limit(0);
	db_close(f->db);
	tmpdb_remove(f->dir, f->path);
	free(f);
	return 0;
}

/* Runs one statement that returns no rows. */
static void
exec1(struct db *db, struct db_stmt *st)
{
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_DONE);
	db_reset(st);
	(void)db;
}

/* A room as the version 1 room_create stored it. */
static int64_t
v1_room(struct db *db, const char *name, int kind)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO rooms (name, kind, created_at) VALUES (:name,"
	        " :kind, 5) RETURNING id");
	int64_t id;

	assert_non_null(st);
	db_bind_text(st, ":name", name, -1);
	db_bind_int64(st, ":kind", kind);
	assert_int_equal(db_step(st), DB_ROW);
	id = db_column_int64(st, 0);
	db_reset(st);
	return id;
}

/* A message as the version 1 message_insert stored it (room last_seq
 * raised too). */
static void
v1_message(struct db *db, int64_t room, int64_t user, int64_t id,
           const char *text)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO messages (id, seq, room_id, user_id, text, ts)"
	        " VALUES (:id, :id, :room, :user, :text, :ts)");

	assert_non_null(st);
	db_bind_int64(st, ":id", id);
	db_bind_int64(st, ":room", room);
	db_bind_int64(st, ":user", user);
	db_bind_text(st, ":text", text, -1);
	db_bind_int64(st, ":ts", 100 + id);
	exec1(db, st);
	st = db_prepare(db, "UPDATE rooms SET last_seq = max(last_seq, :id)"
	                    " WHERE id = :room");
	assert_non_null(st);
	db_bind_int64(st, ":id", id);
	db_bind_int64(st, ":room", room);
	exec1(db, st);
}

/* A membership as the version 1 member_add stored it. */
static void
v1_member(struct db *db, int64_t room, int64_t user)
{
	struct db_stmt *st = db_prepare(
	    db, "INSERT INTO members (room_id, user_id, read_seq, joined_at)"
	        " VALUES (:room, :user, 0, 5)");

	assert_non_null(st);
	db_bind_int64(st, ":room", room);
	db_bind_int64(st, ":user", user);
	exec1(db, st);
}

struct seen {
	int n;
	struct room_state st[4];
};

static int
seen_cb(void *arg, const struct room_state *s)
{
	struct seen *v = arg;

	if (v->n < 4)
		v->st[v->n++] = *s;
	return 0;
}

static int
capture(void *arg, const struct message *m)
{
	*(struct message *)arg = *m;
	((struct message *)arg)->text = NULL;
	return 0;
}

static void
test_migrate_v1_database_keeps_messages_seqs_and_read_positions(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int64_t ann, bob, pub, dm, stored;
	struct seen v = {0}, va = {0}, vb = {0};
	struct message m;
	struct room r;
	int role;

	/* A version 1 database (schema 3), filled the way chatd 1 did. */
	db_set_migrate_limit(3);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &ann), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &bob), 0);
	pub = v1_room(f->db, "lobby", ROOM_PUBLIC);
	dm = v1_room(f->db, "dm:ann:bob", ROOM_DM);
	v1_member(f->db, pub, ann);
	v1_member(f->db, pub, bob);
	v1_member(f->db, dm, ann);
	v1_member(f->db, dm, bob);
	v1_message(f->db, pub, ann, 1, "one");
	v1_message(f->db, pub, bob, 2, "two");
	v1_message(f->db, dm, bob, 3, "private words");
	v1_message(f->db, pub, bob, 4, "four");
	exec1(f->db,
	      db_prepare(f->db, "UPDATE messages SET text = 'one!',"
	                        " seq = 5, edited_ts = 200 WHERE id = 1"));
	exec1(f->db, db_prepare(f->db, "UPDATE messages SET text = NULL,"
	                               " deleted = 1, seq = 6 WHERE id = 2"));
	exec1(f->db, db_prepare(f->db, "UPDATE rooms SET last_seq = 6"
	                               " WHERE id = 1"));
	exec1(f->db, db_prepare(f->db, "UPDATE members SET read_seq = 4"
	                               " WHERE room_id = 1 AND user_id = 2"));
	db_close(f->db);

	/* This chatd opens it: the later migrations run. */
	db_set_migrate_limit(0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_max_seq(f->db), 6);
	assert_int_equal(room_by_name(f->db, "lobby", &r), 0);
	assert_int_equal(r.kind, ROOM_PUBLIC);
	assert_int_equal(r.last_seq, 6);
	assert_string_equal(r.topic, "");
	assert_int_equal(room_by_name(f->db, "dm:ann:bob", &r), 0);
	assert_int_equal(r.kind, ROOM_DM);
	/* No owner: everyone is a member until an admin names one. */
	assert_int_equal(member_role(f->db, pub, ann, &role), 0);
	assert_int_equal(role, ROLE_MEMBER);
	assert_int_equal(member_rooms(f->db, bob, seen_cb, &v), 0);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.st[0].room.name, "dm:ann:bob");
	assert_string_equal(v.st[1].room.name, "lobby");
	assert_int_equal(v.st[0].read_seq, 0);
	assert_int_equal(v.st[0].unread, 0); /* their own message */
	assert_int_equal(v.st[1].read_seq, 4);
	assert_int_equal(v.st[1].unread, 0);
	assert_int_equal(v.st[1].notify, NOTIFY_ALL);
	assert_int_equal(v.st[1].role, ROLE_MEMBER);
	/* The unread counters (migration 004) start from the messages. */
	assert_int_equal(member_rooms(f->db, ann, seen_cb, &va), 0);
	assert_int_equal(va.n, 2);
	assert_int_equal(va.st[0].unread, 1); /* bob's "private words" */
	assert_int_equal(va.st[1].unread, 1); /* "four"; "two" is deleted */
	assert_int_equal(va.st[0].mentions, 0);
	assert_int_equal(va.st[1].mentions, 0);
	assert_int_equal(message_get(f->db, 1, capture, &m), 0);
	assert_int_equal(m.seq, 5);
	assert_int_equal(m.edited_ts, 200);
	assert_int_equal(message_get(f->db, 2, capture, &m), 0);
	assert_int_equal(m.seq, 6);
	assert_true(m.deleted);
	assert_string_equal(m.deleted_by, "");
	assert_int_equal(message_get(f->db, 4, capture, &m), 0);
	assert_int_equal(m.seq, 4);
	/* ...and the new columns work on the old rows. */
	assert_int_equal(member_set_role(f->db, pub, ann, ROLE_OWNER), 0);
	assert_int_equal(ban_add(f->db, pub, bob, 7), 0);
	assert_int_equal(message_delete(f->db, 4, 7, ann), 0);
	assert_int_equal(message_get(f->db, 4, capture, &m), 0);
	assert_string_equal(m.deleted_by, "ann");
	/* ...and the counters follow the changes made since. */
	assert_int_equal(member_set_read(f->db, dm, ann, 3, &stored, NULL), 0);
	assert_int_equal(stored, 3);
	assert_int_equal(member_rooms(f->db, ann, seen_cb, &vb), 0);
	assert_int_equal(vb.st[0].unread, 0);
	assert_int_equal(vb.st[1].unread, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_migrate_v1_database_keeps_messages_seqs_and_read_positions,
	        setup, teardown),
	};

	log_setup(LOG_WARN, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
