/* tests/unit/test_room.c — storage/room.c: rooms, members, read positions */
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
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

struct fixture {
	char dir[64];
	char path[96];
	struct db *db;
	int64_t ann, bob;
	int64_t seq;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "room"), 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &f->ann), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &f->bob), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->db);
	tmpdb_remove(f->dir, f->path);
	free(f);
	return 0;
}

/* Stores a message by user in room with the next seq; returns its id. */
static int64_t
post(struct fixture *f, int64_t room_id, int64_t user_id, const char *text)
{
	struct message m = {0};

	m.id = ++f->seq;
	m.room_id = room_id;
	m.user_id = user_id;
	m.text = text;
	m.text_len = strlen(text);
	m.ts = 1000 + m.id;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
	return m.id;
}

static void
test_room_create_then_find_by_name(void **state)
{
	struct fixture *f = *state;
	struct room r, s;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 5, &r), 0);
	assert_true(r.id > 0);
	assert_string_equal(r.name, "lobby");
	assert_int_equal(r.kind, ROOM_PUBLIC);
	assert_int_equal(r.last_seq, 0);
	assert_int_equal(r.created_at, 5);
	assert_int_equal(room_by_name(f->db, "lobby", &s), 0);
	assert_int_equal(s.id, r.id);
	assert_int_equal(room_by_name(f->db, "nowhere", &s), 1);
}

static void
test_room_create_existing_returns_it(void **state)
{
	struct fixture *f = *state;
	struct room r, s;

	assert_int_equal(room_create(f->db, "dm:ann:bob", ROOM_DM, 5, &r), 0);
	assert_int_equal(room_create(f->db, "dm:ann:bob", ROOM_DM, 9, &s), 1);
	assert_int_equal(s.id, r.id);
	assert_int_equal(s.kind, ROOM_DM);
	assert_int_equal(s.created_at, 5);
}

static void
test_room_delete_removes_members_and_messages(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t id;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 5, &r), 0);
	assert_int_equal(member_add(f->db, r.id, f->ann, 0, 5), 0);
	id = post(f, r.id, f->ann, "hello");
	assert_int_equal(room_delete(f->db, r.id), 0);
	assert_int_equal(room_by_name(f->db, "lobby", NULL), 1);
	assert_int_equal(member_get(f->db, r.id, f->ann, NULL), 1);
	assert_int_equal(message_get(f->db, id, NULL, NULL), 1);
	assert_int_equal(room_delete(f->db, r.id), 1);
}

struct rooms {
	char list[256];
	int64_t members[8];
	int n;
};

static int
collect_room(void *arg, const struct room *r)
{
	struct rooms *c = arg;

	strcat(c->list, r->name);
	strcat(c->list, ",");
	c->members[c->n++] = r->members;
	return 0;
}

static void
test_room_list_public_skips_dms_and_counts_members(void **state)
{
	struct fixture *f = *state;
	struct rooms c = {0};
	struct room a, b, dm;

	assert_int_equal(room_create(f->db, "zoo", ROOM_PUBLIC, 1, &a), 0);
	assert_int_equal(room_create(f->db, "dm:ann:bob", ROOM_DM, 1, &dm), 0);
	assert_int_equal(room_create(f->db, "art", ROOM_PUBLIC, 1, &b), 0);
	assert_int_equal(member_add(f->db, a.id, f->ann, 0, 1), 0);
	assert_int_equal(member_add(f->db, a.id, f->bob, 0, 1), 0);
	assert_int_equal(member_add(f->db, dm.id, f->bob, 0, 1), 0);
	assert_int_equal(room_list_public(f->db, collect_room, &c), 0);
	assert_string_equal(c.list, "art,zoo,");
	assert_int_equal(c.members[0], 0);
	assert_int_equal(c.members[1], 2);
	memset(&c, 0, sizeof c);
	assert_int_equal(room_list_all(f->db, collect_room, &c), 0);
	assert_string_equal(c.list, "art,dm:ann:bob,zoo,");
}

static void
test_member_add_twice_reports_existing_member(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t read_seq;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(member_add(f->db, r.id, f->ann, 7, 1), 0);
	assert_int_equal(member_add(f->db, r.id, f->ann, 9, 1), 1);
	assert_int_equal(member_get(f->db, r.id, f->ann, &read_seq), 0);
	assert_int_equal(read_seq, 7);
	assert_int_equal(member_get(f->db, r.id, f->bob, &read_seq), 1);
	assert_int_equal(member_get(f->db, r.id, f->ann, NULL), 0);
}

static void
test_member_add_to_missing_room_fails(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(member_add(f->db, 12345, f->ann, 0, 1), -1);
}

static void
test_member_remove_then_not_member(void **state)
{
	struct fixture *f = *state;
	struct room r;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(member_add(f->db, r.id, f->ann, 0, 1), 0);
	assert_int_equal(member_remove(f->db, r.id, f->ann), 0);
	assert_int_equal(member_remove(f->db, r.id, f->ann), 1);
	assert_int_equal(member_get(f->db, r.id, f->ann, NULL), 1);
}

static int
collect_member(void *arg, int64_t user_id, const char *username)
{
	struct rooms *c = arg;

	strcat(c->list, username);
	strcat(c->list, ",");
	c->members[c->n++] = user_id;
	return 0;
}

static void
test_member_list_in_name_order(void **state)
{
	struct fixture *f = *state;
	struct rooms c = {0};
	struct room r;
	int64_t cid;

	assert_int_equal(user_create(f->db, "cid", "h", 1, &cid), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(member_add(f->db, r.id, cid, 0, 1), 0);
	assert_int_equal(member_add(f->db, r.id, f->bob, 0, 1), 0);
	assert_int_equal(member_add(f->db, r.id, f->ann, 0, 1), 0);
	assert_int_equal(member_list(f->db, r.id, collect_member, &c), 0);
	assert_string_equal(c.list, "ann,bob,cid,");
	assert_int_equal(c.members[0], f->ann);
	assert_int_equal(c.members[2], cid);
}

struct states {
	struct room_state s[8];
	int n;
};

static int
collect_state(void *arg, const struct room_state *s)
{
	struct states *c = arg;

	c->s[c->n++] = *s;
	return 0;
}

static void
test_member_rooms_counts_unread_by_others_not_deleted(void **state)
{
	struct fixture *f = *state;
	struct states c = {0};
	struct room a, b;
	int64_t m1;

	assert_int_equal(room_create(f->db, "b-room", ROOM_PUBLIC, 1, &b), 0);
	assert_int_equal(room_create(f->db, "a-room", ROOM_PUBLIC, 1, &a), 0);
	post(f, a.id, f->bob, "old, before ann joined");
	assert_int_equal(room_by_name(f->db, "a-room", &a), 0);
	assert_int_equal(member_add(f->db, a.id, f->ann, a.last_seq, 1), 0);
	assert_int_equal(member_add(f->db, b.id, f->ann, 0, 1), 0);
	m1 = post(f, a.id, f->bob, "one");
	post(f, a.id, f->bob, "two");
	post(f, a.id, f->ann, "mine does not count");
	post(f, a.id, f->bob, "three");
	assert_int_equal(message_delete(f->db, m1, ++f->seq, 0), 0);

	assert_int_equal(member_rooms(f->db, f->ann, collect_state, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.s[0].room.name, "a-room");
	assert_int_equal(c.s[0].read_seq, 1);
	assert_int_equal(c.s[0].room.last_seq, f->seq);
	assert_int_equal(c.s[0].unread, 2);
	assert_string_equal(c.s[1].room.name, "b-room");
	assert_int_equal(c.s[1].unread, 0);
	memset(&c, 0, sizeof c);
	assert_int_equal(member_rooms(f->db, f->bob, collect_state, &c), 0);
	assert_int_equal(c.n, 0);
}

static void
test_member_set_read_moves_up_never_down_capped(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t stored = -1;
	int moved = -1;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(member_add(f->db, r.id, f->ann, 0, 1), 0);
	for (int i = 0; i < 5; i++)
		post(f, r.id, f->bob, "x"); /* last_seq 5 */

	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, 3, &stored, &moved), 0);
	assert_int_equal(stored, 3);
	assert_int_equal(moved, 1);
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, 2, &stored, &moved), 0);
	assert_int_equal(stored, 3);
	assert_int_equal(moved, 0);
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, 3, &stored, &moved), 0);
	assert_int_equal(moved, 0);
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, 99, &stored, &moved), 0);
	assert_int_equal(stored, 5);
	assert_int_equal(moved, 1);
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, 99, &stored, &moved), 0);
	assert_int_equal(stored, 5);
	assert_int_equal(moved, 0);
	assert_int_equal(member_get(f->db, r.id, f->ann, &stored), 0);
	assert_int_equal(stored, 5);
}

static void
test_member_set_read_of_non_member_is_not_found(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t stored = -1;
	int moved = -1;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, 3, &stored, &moved), 1);
	assert_int_equal(moved, 0);
	assert_int_equal(member_set_read(f->db, 999, f->ann, 3, NULL, NULL), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_room_create_then_find_by_name),
	    T(test_room_create_existing_returns_it),
	    T(test_room_delete_removes_members_and_messages),
	    T(test_room_list_public_skips_dms_and_counts_members),
	    T(test_member_add_twice_reports_existing_member),
	    T(test_member_add_to_missing_room_fails),
	    T(test_member_remove_then_not_member),
	    T(test_member_list_in_name_order),
	    T(test_member_rooms_counts_unread_by_others_not_deleted),
	    T(test_member_set_read_moves_up_never_down_capped),
	    T(test_member_set_read_of_non_member_is_not_found),
#undef T
	};

	log_setup(LOG_ERROR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
