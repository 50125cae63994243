/* tests/unit/test_reaction.c — storage/reaction.c: adding and removing
 * reactions, and the caps on one message's reactions */
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

/* Users enough to reach REACTION_MESSAGE_MAX at REACTION_USER_MAX each. */
#define NUSERS (REACTION_MESSAGE_MAX / REACTION_USER_MAX + 1)

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	struct db *db;
	int64_t users[NUSERS];
	struct room lobby;
	int64_t msg;
	int64_t seq;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct message m = {0};
	char err[256], name[16];

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "reaction"), 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &f->lobby),
	                 0);
	for (int i = 0; i < NUSERS; i++) {
		snprintf(name, sizeof name, "u%d", i);
		assert_int_equal(user_create(f->db, name, "h", 1, &f->users[i]),
		                 0);
		assert_int_equal(
		    member_add(f->db, f->lobby.id, f->users[i], 0, 1), 0);
	}
	m.id = m.seq = f->msg = f->seq = 1;
	m.room_id = f->lobby.id;
	m.user_id = f->users[0];
	m.text = "react to me";
	m.text_len = strlen(m.text);
	m.ts = 1000;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
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

/* reaction_set for user i with the next seq (taken if it changed). */
static int
react(struct fixture *f, int i, const char *emoji, int on)
{
	int rc =
	    reaction_set(f->db, f->msg, f->users[i], emoji, on, f->seq + 1);

	if (rc == 0)
		f->seq++;
	return rc;
}

/* The number of records (emojis) and users in the message's list. */
static void
count_list(struct fixture *f, int *emojis, int64_t *total)
{
	char *buf = NULL;
	size_t cap = 0, len = 0;
	const char *p;
	struct reaction_view v;

	assert_int_equal(reaction_list(f->db, f->msg, &buf, &cap, &len), 0);
	*emojis = 0;
	*total = 0;
	p = buf;
	while (len > 0 && reaction_next(&p, buf + len, &v)) {
		(*emojis)++;
		*total += v.count;
	}
	free(buf);
}

static void
test_reaction_one_user_at_most_user_max(void **state)
{
	struct fixture *f = *state;
	char e[16];
	int emojis;
	int64_t total;

	for (int i = 0; i < REACTION_USER_MAX; i++) {
		snprintf(e, sizeof e, "e%d", i);
		assert_int_equal(react(f, 1, e, 1), 0);
	}
	/* One more: refused, nothing stored, no seq taken. */
	assert_int_equal(react(f, 1, "one-more", 1), REACTION_OVER_USER);
	assert_int_equal(f->seq, 1 + REACTION_USER_MAX);
	/* One the user has already: still the no-op answer. */
	assert_int_equal(react(f, 1, "e0", 1), 1);
	/* Someone else may use the same emojis. */
	assert_int_equal(react(f, 2, "e0", 1), 0);
	/* Removing works at the cap, and then there is room for one. */
	assert_int_equal(react(f, 1, "e3", 0), 0);
	assert_int_equal(react(f, 1, "one-more", 1), 0);
	count_list(f, &emojis, &total);
	assert_int_equal(emojis, REACTION_USER_MAX);
	assert_int_equal(total, REACTION_USER_MAX + 1);
}

static void
test_reaction_message_at_most_emojis_max(void **state)
{
	struct fixture *f = *state;
	char e[16];
	int emojis, n = 0;
	int64_t total;

	/* Different emojis from several users, up to the cap. */
	for (int i = 0; i < REACTION_EMOJIS_MAX; i++, n++) {
		snprintf(e, sizeof e, "e%d", i);
		assert_int_equal(react(f, 1 + n / REACTION_USER_MAX, e, 1), 0);
	}
	assert_int_equal(react(f, 10, "new", 1), REACTION_OVER_EMOJIS);
	/* An emoji already on the message is still welcome. */
	assert_int_equal(react(f, 10, "e7", 1), 0);
	count_list(f, &emojis, &total);
	assert_int_equal(emojis, REACTION_EMOJIS_MAX);
	assert_int_equal(total, REACTION_EMOJIS_MAX + 1);
	/* An emoji whose count falls to 0 makes room for another. */
	assert_int_equal(react(f, 1, "e0", 0), 0);
	assert_int_equal(react(f, 10, "new", 1), 0);
}

static void
test_reaction_message_at_most_message_max(void **state)
{
	struct fixture *f = *state;
	char e[16];
	int emojis, i;
	int64_t total;

	for (i = 0; i < REACTION_MESSAGE_MAX; i++) {
		snprintf(e, sizeof e, "e%d", i % REACTION_USER_MAX);
		assert_int_equal(react(f, i / REACTION_USER_MAX, e, 1), 0);
	}
	assert_int_equal(react(f, NUSERS - 1, "e0", 1), REACTION_OVER_MESSAGE);
	count_list(f, &emojis, &total);
	assert_int_equal(emojis, REACTION_USER_MAX);
	assert_int_equal(total, REACTION_MESSAGE_MAX);
	/* Removing one makes room for one. */
	assert_int_equal(react(f, 0, "e0", 0), 0);
	assert_int_equal(react(f, NUSERS - 1, "e0", 1), 0);
	assert_int_equal(react(f, 0, "e0", 1), REACTION_OVER_MESSAGE);
}

static void
test_reaction_removing_what_is_not_there_changes_nothing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(react(f, 1, "x", 0), 1);
	assert_int_equal(react(f, 1, "x", 1), 0);
	assert_int_equal(react(f, 1, "x", 1), 1);
	assert_int_equal(react(f, 1, "x", 0), 0);
	assert_int_equal(f->seq, 3);
	assert_int_equal(reaction_set(f->db, 99, f->users[1], "x", 1, 9), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	    T(test_reaction_one_user_at_most_user_max),
	    T(test_reaction_message_at_most_emojis_max),
	    T(test_reaction_message_at_most_message_max),
	    T(test_reaction_removing_what_is_not_there_changes_nothing),
#undef T
	};

	log_setup(LOG_ERROR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
