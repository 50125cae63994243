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
#include "storage/db.h"
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	struct db *db;
	int64_t ann, bob, cat;
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
	assert_int_equal(user_create(f->db, "cat", "h", 1, &f->cat), 0);
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

/* On PostgreSQL, room_delete and user_delete raise meta's admin_version,
 * which running servers read (db_data_version) to notice them; a delete
 * of nothing leaves it. SQLite's data_version only counts other
 * connections' commits: nothing to see from this one. */
static void
test_admin_deletes_raise_the_data_version(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t v0 = db_data_version(f->db);

	if (!db_is_postgres(f->db))
		return;
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 5, &r), 0);
	assert_int_equal(db_data_version(f->db), v0);
	assert_int_equal(room_delete(f->db, r.id), 0);
	assert_int_equal(db_data_version(f->db), v0 + 1);
	assert_int_equal(room_delete(f->db, r.id), 1);
	assert_int_equal(user_delete(f->db, f->bob), 0);
	assert_int_equal(db_data_version(f->db), v0 + 2);
	assert_int_equal(user_delete(f->db, f->bob), 1);
	assert_int_equal(db_data_version(f->db), v0 + 2);
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
	assert_int_equal(room_list_public(f->db, NULL, -1, collect_room, &c),
	                 0);
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

/* member_sharing callback: appends "id:name," and counts. */
struct sharing {
	char list[4096];
	int n;
	int stop_after; /* 0: never */
};

static int
collect_sharing(void *arg, int64_t id, const char *name)
{
	struct sharing *c = arg;
	size_t len = strlen(c->list);

	snprintf(c->list + len, sizeof c->list - len, "%lld:%s,",
	    (long long)id, name);
	c->n++;
	return c->stop_after > 0 && c->n >= c->stop_after;
}

static void
test_member_sharing_finds_who_shares_a_room_in_batches(void **state)
{
	struct fixture *f = *state;
	struct sharing c = {0};
	struct room r, other;
	int64_t ids[MEMBER_SHARING_BATCH * 2 + 3], dan;
	char name[32], expect[64];
	size_t n = 0;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(room_create(f->db, "side", ROOM_PUBLIC, 1, &other),
	    0);
	assert_int_equal(member_add(f->db, r.id, f->ann, 0, 1), 0);
	assert_int_equal(member_add(f->db, r.id, f->bob, 0, 1), 0);
	assert_int_equal(member_add(f->db, other.id, f->cat, 0, 1), 0);
	/* None shared; ids that are nobody; duplicates of bob. */
	ids[n++] = f->cat;
	ids[n++] = 999999;
	ids[n++] = f->bob;
	ids[n++] = f->bob;
	assert_int_equal(member_sharing(f->db, f->ann, ids, n,
	    collect_sharing, &c), 0);
	snprintf(expect, sizeof expect, "%lld:bob,", (long long)f->bob);
	assert_string_equal(c.list, expect);
	/* Over two batches: the one sharer is found in the last. */
	n = 0;
	for (size_t i = 0; i < MEMBER_SHARING_BATCH * 2; i++)
		ids[n++] = 1000000 + (int64_t)i;
	assert_int_equal(user_create(f->db, "dan", "h", 1, &dan), 0);
	assert_int_equal(member_add(f->db, other.id, dan, 0, 1), 0);
	ids[n++] = dan;
	memset(&c, 0, sizeof c);
	assert_int_equal(member_sharing(f->db, f->cat, ids, n,
	    collect_sharing, &c), 0);
	snprintf(name, sizeof name, "%lld:dan,", (long long)dan);
	assert_string_equal(c.list, name);
	/* Nothing asked: nothing found, no statement. */
	memset(&c, 0, sizeof c);
	assert_int_equal(member_sharing(f->db, f->ann, ids, 0,
	    collect_sharing, &c), 0);
	assert_int_equal(c.n, 0);
	/* The callback stops it. */
	ids[0] = f->bob;
	ids[1] = f->ann;
	memset(&c, 0, sizeof c);
	c.stop_after = 1;
	assert_int_equal(member_add(f->db, r.id, f->cat, 0, 1), 0);
	ids[2] = f->cat;
	assert_int_equal(member_sharing(f->db, f->ann, ids, 3,
	    collect_sharing, &c), 0);
	assert_int_equal(c.n, 1);
}

static void
test_room_lock_is_per_room_and_per_schema(void **state)
{
	struct fixture *f = *state;
	struct db *same, *other;
	char dir2[64], path2[TMPDB_PATH_MAX], err[256];
	struct room r, r2, o;
	int64_t last = -1;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(room_create(f->db, "side", ROOM_PUBLIC, 1, &r2), 0);
	if (!tmpdb_pg()) {
		/* SQLite has one writer: no room locks. */
		assert_int_equal(db_room_lock(f->db, r.id, 0, &last), -1);
		return;
	}
	assert_int_equal(db_open(&same, f->path, err, sizeof err), 0);
	/* Another chatd's schema with a room of the same id. */
	assert_int_equal(tmpdb_make(dir2, path2, "room2"), 0);
	assert_int_equal(db_open(&other, path2, err, sizeof err), 0);
	assert_int_equal(room_create(other, "lobby", ROOM_PUBLIC, 1, &o), 0);
	assert_int_equal(o.id, r.id);

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_room_lock(f->db, r.id, 0, &last), 0);
	assert_int_equal(last, 0);
	assert_int_equal(db_begin(same), 0);
	assert_int_equal(db_room_lock(same, r.id, 0, &last), 1); /* held */
	assert_int_equal(db_room_lock(same, r2.id, 0, &last), 0);
	assert_int_equal(db_room_lock(same, 424242, 0, &last), 2);
	assert_int_equal(db_rollback(same), 0);
	assert_int_equal(db_begin(other), 0);
	assert_int_equal(db_room_lock(other, o.id, 0, &last), 0); /* apart */
	assert_int_equal(db_rollback(other), 0);
	assert_int_equal(db_commit(f->db), 0);
	/* Released by the commit. */
	assert_int_equal(db_begin(same), 0);
	assert_int_equal(db_room_lock(same, r.id, 0, &last), 0);
	assert_int_equal(db_rollback(same), 0);
	db_close(same);
	db_close(other);
	tmpdb_remove(dir2, path2);
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

/* The unread count of user in room by its definition (PROTOCOL.md: id >
 * read_seq, by others, not deleted), counted from the messages. */
static int64_t
brute_unread(struct fixture *f, int64_t room_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_prepare(f->db, "SELECT count(*) FROM messages g JOIN members m"
	                      " ON m.room_id = g.room_id AND m.user_id = :user"
	                      " WHERE g.room_id = :room AND g.id > m.read_seq"
	                      " AND g.user_id <> :user AND g.deleted = 0");
	int64_t n;

	assert_non_null(st);
	db_bind_int64(st, ":room", room_id);
	db_bind_int64(st, ":user", user_id);
	assert_int_equal(db_step(st), DB_ROW);
	n = db_column_int64(st, 0);
	db_reset(st);
	return n;
}

struct one_state {
	int64_t room_id;
	int64_t unread;
	int found;
};

static int
find_state(void *arg, const struct room_state *s)
{
	struct one_state *o = arg;

	if (s->room.id == o->room_id) {
		o->unread = s->unread;
		o->found++;
	}
	return 0;
}

/* The unread count member_rooms (hello, /api/me) reports; -1 if user
 * is not a member. */
static int64_t
state_unread(struct fixture *f, int64_t room_id, int64_t user_id)
{
	struct one_state o = {room_id, 0, 0};

	assert_int_equal(member_rooms(f->db, user_id, find_state, &o), 0);
	assert_true(o.found <= 1);
	return o.found ? o.unread : -1;
}

/* Every member's reported count equals the counted one; returns ann's. */
static int64_t
check_unread(struct fixture *f, int64_t room_id)
{
	int64_t users[3] = {f->ann, f->bob, f->cat};

	for (int i = 0; i < 3; i++) {
		int64_t got = state_unread(f, room_id, users[i]);

		if (got < 0)
			continue;
		if (got != brute_unread(f, room_id, users[i]))
			fail_msg(
			    "room %lld user %lld: unread %lld, counted %lld",
			    (long long)room_id, (long long)users[i],
			    (long long)got,
			    (long long)brute_unread(f, room_id, users[i]));
	}
	return state_unread(f, room_id, f->ann);
}

/* Joins user to room the way join does: read_seq at the room's last_seq. */
static void
join(struct fixture *f, int64_t room_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_prepare(f->db, "SELECT last_seq FROM rooms WHERE id = :id");
	int64_t last;

	assert_non_null(st);
	db_bind_int64(st, ":id", room_id);
	assert_int_equal(db_step(st), DB_ROW);
	last = db_column_int64(st, 0);
	db_reset(st);
	assert_int_equal(member_add(f->db, room_id, user_id, last, 1), 0);
}

static void
test_unread_counter_excludes_own_and_counts_others(void **state)
{
	struct fixture *f = *state;
	struct room r;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	join(f, r.id, f->ann);
	join(f, r.id, f->bob);
	assert_int_equal(check_unread(f, r.id), 0);
	post(f, r.id, f->bob, "one");
	post(f, r.id, f->ann, "mine");
	post(f, r.id, f->bob, "two");
	assert_int_equal(check_unread(f, r.id), 2);
	assert_int_equal(state_unread(f, r.id, f->bob), 1);
}

static void
test_unread_counter_join_starts_at_zero(void **state)
{
	struct fixture *f = *state;
	struct room r;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	join(f, r.id, f->bob);
	for (int i = 0; i < 5; i++)
		post(f, r.id, f->bob, "before ann");
	join(f, r.id, f->ann);
	assert_int_equal(check_unread(f, r.id), 0);
	post(f, r.id, f->bob, "after ann");
	assert_int_equal(check_unread(f, r.id), 1);
	/* Leaving and joining again starts over at the room's last_seq. */
	assert_int_equal(member_remove(f->db, r.id, f->ann), 0);
	post(f, r.id, f->bob, "while away");
	join(f, r.id, f->ann);
	assert_int_equal(check_unread(f, r.id), 0);
}

static void
test_unread_counter_member_added_below_last_seq(void **state)
{
	struct fixture *f = *state;
	struct room r;

	/* member_add with an old read_seq (a DM's second user, import)
	 * counts what is above it. */
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	join(f, r.id, f->bob);
	post(f, r.id, f->bob, "one");
	post(f, r.id, f->ann, "ann's, before she is a member");
	post(f, r.id, f->bob, "two");
	assert_int_equal(member_add(f->db, r.id, f->ann, 1, 1), 0);
	assert_int_equal(check_unread(f, r.id), 1);
}

static void
test_unread_counter_deletes_of_read_and_unread(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t a, b, c, mine, d;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	join(f, r.id, f->ann);
	join(f, r.id, f->bob);
	join(f, r.id, f->cat);
	a = post(f, r.id, f->bob, "a");
	b = post(f, r.id, f->bob, "b");
	mine = post(f, r.id, f->ann, "mine");
	c = post(f, r.id, f->cat, "c");
	d = post(f, r.id, f->bob, "d");
	assert_int_equal(check_unread(f, r.id), 4);
	assert_int_equal(member_set_read(f->db, r.id, f->ann, b, NULL, NULL),
	                 0);
	assert_int_equal(check_unread(f, r.id), 2);
	/* A read one: nothing changes for ann; cat had it unread. */
	assert_int_equal(message_delete(f->db, a, ++f->seq, 0), 0);
	assert_int_equal(check_unread(f, r.id), 2);
	/* An unread one. */
	assert_int_equal(message_delete(f->db, c, ++f->seq, 0), 0);
	assert_int_equal(check_unread(f, r.id), 1);
	/* Ann's own: her count stays, the others' drop. */
	assert_int_equal(message_delete(f->db, mine, ++f->seq, 0), 0);
	assert_int_equal(check_unread(f, r.id), 1);
	/* Deleting again is not found and changes nothing. */
	assert_int_equal(message_delete(f->db, c, ++f->seq, 0), 1);
	assert_int_equal(check_unread(f, r.id), 1);
	/* Edits change nothing. */
	assert_int_equal(message_edit(f->db, d, "d2", 2, ++f->seq, 9), 0);
	assert_int_equal(message_edit(f->db, b, "b2", 2, ++f->seq, 9), 0);
	assert_int_equal(check_unread(f, r.id), 1);
	/* Reading past the deletes and edits (last_seq is an edit's). */
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, f->seq, NULL, NULL), 0);
	assert_int_equal(check_unread(f, r.id), 0);
}

static void
test_unread_counter_read_to_the_middle_either_side(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t ids[40];

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	join(f, r.id, f->ann);
	join(f, r.id, f->bob);
	for (int i = 0; i < 40; i++)
		ids[i] = post(f, r.id, i % 5 == 0 ? f->ann : f->bob, "x");
	assert_int_equal(message_delete(f->db, ids[3], ++f->seq, 0), 0);
	assert_int_equal(message_delete(f->db, ids[35], ++f->seq, 0), 0);
	assert_int_equal(check_unread(f, r.id), 31);
	/* Near the start: the newly read side is counted. */
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, ids[4], NULL, NULL), 0);
	assert_int_equal(check_unread(f, r.id), 28);
	/* Near the end: the still unread side is counted. */
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, ids[37], NULL, NULL), 0);
	assert_int_equal(check_unread(f, r.id), 2);
	/* Lower: nothing moves. */
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, ids[10], NULL, NULL), 0);
	assert_int_equal(check_unread(f, r.id), 2);
	/* Above last_seq: capped, all read. */
	assert_int_equal(
	    member_set_read(f->db, r.id, f->ann, f->seq + 100, NULL, NULL), 0);
	assert_int_equal(check_unread(f, r.id), 0);
	assert_int_equal(state_unread(f, r.id, f->bob), 7);
	assert_int_equal(
	    member_set_read(f->db, r.id, f->bob, ids[20], NULL, NULL), 0);
	assert_int_equal(check_unread(f, r.id), 0);
	assert_int_equal(state_unread(f, r.id, f->bob), 2);
}

/* A small deterministic generator for the mixed test. */
static uint32_t
next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void
test_unread_counter_matches_count_under_mixed_changes(void **state)
{
	struct fixture *f = *state;
	int64_t users[3] = {f->ann, f->bob, f->cat}, rooms[3], ids[600];
	int nids = 0;
	uint32_t x = 12345;
	struct room r;

	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof name, "room%d", i);
		assert_int_equal(room_create(f->db, name, ROOM_PUBLIC, 1, &r),
		                 0);
		rooms[i] = r.id;
		join(f, r.id, f->ann);
		join(f, r.id, f->bob);
	}
	for (int step = 0; step < 600; step++) {
		int64_t room = rooms[next_rand(&x) % 3];
		int64_t user = users[next_rand(&x) % 3];
		uint32_t op = next_rand(&x) % 100;
		int rc;

		if (op < 50) {
			if (member_get(f->db, room, user, NULL) == 0)
				ids[nids++] = post(f, room, user, "m");
		} else if (op < 62 && nids > 0) {
			rc = message_delete(f->db, ids[next_rand(&x) % nids],
			                    f->seq + 1, 0);
			if (rc == 0)
				f->seq++;
		} else if (op < 70 && nids > 0) {
			rc = message_edit(f->db, ids[next_rand(&x) % nids], "e",
			                  1, f->seq + 1, 5);
			if (rc == 0)
				f->seq++;
		} else if (op < 90) {
			member_set_read(f->db, room, user,
			                (int64_t)(next_rand(&x) % (f->seq + 2)),
			                NULL, NULL);
		} else if (op < 95) {
			if (member_get(f->db, room, user, NULL) == 1)
				join(f, room, user);
		} else {
			member_remove(f->db, room, user);
		}
		for (int i = 0; i < 3; i++)
			check_unread(f, rooms[i]);
	}
	assert_true(nids > 100);
}

static void
test_room_counts_rebuild_gives_the_maintained_counts(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t a;

	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	join(f, r.id, f->ann);
	join(f, r.id, f->bob);
	a = post(f, r.id, f->bob, "a");
	post(f, r.id, f->bob, "b");
	post(f, r.id, f->ann, "c");
	assert_int_equal(message_delete(f->db, a, ++f->seq, 0), 0);
	assert_int_equal(check_unread(f, r.id), 1);
	assert_int_equal(room_counts_rebuild(f->db), 0);
	assert_int_equal(check_unread(f, r.id), 1);
	assert_int_equal(state_unread(f, r.id, f->bob), 1);
	post(f, r.id, f->bob, "d");
	assert_int_equal(check_unread(f, r.id), 2);
}

static void
test_member_count_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct room r;
	int64_t n = -1;

	assert_int_equal(member_count(f->db, f->ann, 10, &n), 0);
	assert_int_equal(n, 0);
	for (int i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof name, "room%d", i);
		assert_int_equal(room_create(f->db, name, ROOM_PUBLIC, 1, &r),
		                 0);
		join(f, r.id, f->ann);
	}
	assert_int_equal(member_count(f->db, f->ann, 10, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(member_count(f->db, f->ann, 3, &n), 0);
	assert_int_equal(n, 4); /* at most max + 1 */
	assert_int_equal(member_count(f->db, f->bob, 3, &n), 0);
	assert_int_equal(n, 0);
}

static void
test_room_list_public_pages_by_name(void **state)
{
	struct fixture *f = *state;
	struct rooms c = {0};
	struct room r;
	const char *names[] = {"delta", "alpha", "echo", "charlie", "bravo"};

	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    room_create(f->db, names[i], ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(room_create(f->db, "dm:ann:bob", ROOM_DM, 1, &r), 0);
	assert_int_equal(room_list_public(f->db, NULL, 2, collect_room, &c), 0);
	assert_string_equal(c.list, "alpha,bravo,");
	memset(&c, 0, sizeof c);
	assert_int_equal(room_list_public(f->db, "bravo", 2, collect_room, &c),
	                 0);
	assert_string_equal(c.list, "charlie,delta,");
	memset(&c, 0, sizeof c);
	assert_int_equal(room_list_public(f->db, "delta", 2, collect_room, &c),
	                 0);
	assert_string_equal(c.list, "echo,");
	memset(&c, 0, sizeof c);
	/* after need not name a room. */
	assert_int_equal(room_list_public(f->db, "c", -1, collect_room, &c), 0);
	assert_string_equal(c.list, "charlie,delta,echo,");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_room_create_then_find_by_name),
	    T(test_room_create_existing_returns_it),
	    T(test_room_delete_removes_members_and_messages),
	    T(test_admin_deletes_raise_the_data_version),
	    T(test_room_list_public_skips_dms_and_counts_members),
	    T(test_member_add_twice_reports_existing_member),
	    T(test_member_add_to_missing_room_fails),
	    T(test_member_remove_then_not_member),
	    T(test_member_list_in_name_order),
	    T(test_member_sharing_finds_who_shares_a_room_in_batches),
	    T(test_room_lock_is_per_room_and_per_schema),
	    T(test_member_rooms_counts_unread_by_others_not_deleted),
	    T(test_member_set_read_moves_up_never_down_capped),
	    T(test_member_set_read_of_non_member_is_not_found),
	    T(test_unread_counter_excludes_own_and_counts_others),
	    T(test_unread_counter_join_starts_at_zero),
	    T(test_unread_counter_member_added_below_last_seq),
	    T(test_unread_counter_deletes_of_read_and_unread),
	    T(test_unread_counter_read_to_the_middle_either_side),
	    T(test_unread_counter_matches_count_under_mixed_changes),
	    T(test_room_counts_rebuild_gives_the_maintained_counts),
	    T(test_member_count_is_bounded),
	    T(test_room_list_public_pages_by_name),
#undef T
	};

	log_setup(LOG_ERROR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
