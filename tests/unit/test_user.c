/* tests/unit/test_user.c — storage/user.c and storage/session.c */
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
	char path[TMPDB_PATH_MAX];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "user"), 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
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

static const uint8_t token_a[32] = {1, 2, 3};
static const uint8_t token_b[32] = {4, 5, 6};

static void
test_user_create_then_find_by_name_and_id(void **state)
{
	struct fixture *f = *state;
	struct user u;
	char hash[64];
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "$argon2id$x", 100, &id), 0);
	assert_true(id > 0);
	assert_int_equal(user_by_name(f->db, "ann", &u, hash, sizeof hash), 0);
	assert_int_equal(u.id, id);
	assert_string_equal(u.username, "ann");
	assert_int_equal(u.created_at, 100);
	assert_string_equal(hash, "$argon2id$x");
	memset(&u, 0, sizeof u);
	assert_int_equal(user_by_id(f->db, id, &u), 0);
	assert_string_equal(u.username, "ann");
}

static void
test_user_lookup_of_unknown_user_is_not_found(void **state)
{
	struct fixture *f = *state;
	struct user u;

	assert_int_equal(user_by_name(f->db, "nobody", &u, NULL, 0), 1);
	assert_int_equal(user_by_id(f->db, 42, &u), 1);
}

static void
test_user_create_refuses_taken_name(void **state)
{
	struct fixture *f = *state;
	int64_t a, b = -5;

	assert_int_equal(user_create(f->db, "ann", "h", 1, &a), 0);
	assert_int_equal(user_create(f->db, "ann", "h2", 2, &b), 1);
	assert_int_equal(b, -5);
}

static void
test_user_by_name_fails_when_hash_does_not_fit(void **state)
{
	struct fixture *f = *state;
	char hash[4];
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "longhash", 1, &id), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, hash, sizeof hash),
	                 -1);
}

static void
test_user_set_password_replaces_hash(void **state)
{
	struct fixture *f = *state;
	char hash[64];
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "old", 1, &id), 0);
	assert_int_equal(user_set_password(f->db, id, "new"), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, hash, sizeof hash),
	                 0);
	assert_string_equal(hash, "new");
	assert_int_equal(user_set_password(f->db, id + 100, "x"), 1);
}

static void
test_user_delete_hides_user_and_keeps_name_taken(void **state)
{
	struct fixture *f = *state;
	int64_t id, other;

	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(user_delete(f->db, id), 0);
	assert_int_equal(user_by_name(f->db, "ann", NULL, NULL, 0), 1);
	assert_int_equal(user_by_id(f->db, id, NULL), 1);
	assert_int_equal(user_create(f->db, "ann", "h", 2, &other), 1);
	assert_int_equal(user_set_password(f->db, id, "x"), 1);
	/* Deleting again, or someone who never was: not found. */
	assert_int_equal(user_delete(f->db, id), 1);
	assert_int_equal(user_delete(f->db, 999), 1);
}

static void
test_user_delete_drops_sessions_and_memberships_keeps_messages(void **state)
{
	struct fixture *f = *state;
	struct room r;
	struct message m = {0};
	struct user u;
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(session_create(f->db, token_a, id, 1, 1000), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &r), 0);
	assert_int_equal(member_add(f->db, r.id, id, 0, 1), 0);
	m.id = 1;
	m.room_id = r.id;
	m.user_id = id;
	m.text = "still here";
	m.text_len = strlen(m.text);
	assert_int_equal(message_insert(f->db, &m, NULL), 0);

	assert_int_equal(user_delete(f->db, id), 0);
	assert_int_equal(session_lookup(f->db, token_a, 2, &u), 1);
	assert_int_equal(session_delete(f->db, token_a), 1);
	assert_int_equal(member_get(f->db, r.id, id, NULL), 1);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &id), 0);
	assert_int_equal(member_add(f->db, r.id, id, 0, 1), 0);
	assert_int_equal(room_by_name(f->db, "lobby", &r), 0);
	assert_int_equal(r.last_seq, 1);
}

/* Collects user names, stopping after stop_after of them (0: never). */
struct names {
	char list[256];
	int n, stop_after;
};

static int
collect_user(void *arg, const struct user *u)
{
	struct names *c = arg;

	strcat(c->list, u->username);
	strcat(c->list, ",");
	return ++c->n == c->stop_after;
}

static void
test_user_list_gives_live_users_in_name_order(void **state)
{
	struct fixture *f = *state;
	struct names c = {0};
	int64_t id;

	assert_int_equal(user_create(f->db, "cid", "h", 1, &id), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &id), 0);
	assert_int_equal(user_delete(f->db, id), 0);
	assert_int_equal(user_list(f->db, collect_user, &c), 0);
	assert_string_equal(c.list, "ann,cid,");
}

static void
test_user_list_stops_when_callback_says_so(void **state)
{
	struct fixture *f = *state;
	struct names c = {.stop_after = 1};
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &id), 0);
	assert_int_equal(user_list(f->db, collect_user, &c), 0);
	assert_string_equal(c.list, "ann,");
	/* The statement was reset: a second listing starts over. */
	memset(&c, 0, sizeof c);
	assert_int_equal(user_list(f->db, collect_user, &c), 0);
	assert_string_equal(c.list, "ann,bob,");
}

static void
test_session_lookup_finds_unexpired_session(void **state)
{
	struct fixture *f = *state;
	struct user u;
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(session_create(f->db, token_a, id, 10, 100), 0);
	assert_int_equal(session_lookup(f->db, token_a, 99, &u), 0);
	assert_int_equal(u.id, id);
	assert_string_equal(u.username, "ann");
	assert_int_equal(session_lookup(f->db, token_a, 100, &u), 1);
	assert_int_equal(session_lookup(f->db, token_b, 50, &u), 1);
}

static void
test_session_delete_revokes_one_token(void **state)
{
	struct fixture *f = *state;
	struct user u;
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(session_create(f->db, token_a, id, 10, 100), 0);
	assert_int_equal(session_create(f->db, token_b, id, 10, 100), 0);
	assert_int_equal(session_delete(f->db, token_a), 0);
	assert_int_equal(session_delete(f->db, token_a), 1);
	assert_int_equal(session_lookup(f->db, token_a, 50, &u), 1);
	assert_int_equal(session_lookup(f->db, token_b, 50, &u), 0);
}

static void
test_session_prune_removes_only_expired(void **state)
{
	struct fixture *f = *state;
	struct user u;
	int64_t id;

	assert_int_equal(user_create(f->db, "ann", "h", 1, &id), 0);
	assert_int_equal(session_create(f->db, token_a, id, 10, 100), 0);
	assert_int_equal(session_create(f->db, token_b, id, 10, 200), 0);
	assert_int_equal(session_prune(f->db, 150), 0);
	assert_int_equal(session_delete(f->db, token_a), 1);
	assert_int_equal(session_lookup(f->db, token_b, 150, &u), 0);
}

static void
test_session_create_for_unknown_user_fails(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(session_create(f->db, token_a, 77, 10, 100), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_user_create_then_find_by_name_and_id),
	    T(test_user_lookup_of_unknown_user_is_not_found),
	    T(test_user_create_refuses_taken_name),
	    T(test_user_by_name_fails_when_hash_does_not_fit),
	    T(test_user_set_password_replaces_hash),
	    T(test_user_delete_hides_user_and_keeps_name_taken),
	    T(test_user_delete_drops_sessions_and_memberships_keeps_messages),
	    T(test_user_list_gives_live_users_in_name_order),
	    T(test_user_list_stops_when_callback_says_so),
	    T(test_session_lookup_finds_unexpired_session),
	    T(test_session_delete_revokes_one_token),
	    T(test_session_prune_removes_only_expired),
	    T(test_session_create_for_unknown_user_fails),
#undef T
	};

	log_setup(LOG_ERROR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
