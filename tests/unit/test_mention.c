/* tests/unit/test_mention.c — chatd/mention.c: the mentions of a text
 * (PROTOCOL.md "Mentions", "Version 2: details") */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/mention.h"

/* The room's members for the tests: their ids are their index + 1. */
static const char *const members[] = {
    "alice", "bob", "bob.", "carol-", "d.o.t", "room", "x", "zed_9", NULL,
};

/* mention_member_fn over members; counts the questions. */
static int asked;

static int
is_member(void *arg, const char *name, int64_t *id)
{
	(void)arg;
	asked++;
	for (int i = 0; members[i] != NULL; i++)
		if (strcmp(members[i], name) == 0) {
			*id = i + 1;
			return 1;
		}
	return 0;
}

static int
failing(void *arg, const char *name, int64_t *id)
{
	(void)arg, (void)name, (void)id;
	return -1;
}

/* Parses text and checks the names (space-separated, "" for none) and
 * the @room flag. */
static void
check(const char *text, const char *want, int room)
{
	struct mention_list l;
	char got[512] = "";

	assert_int_equal(mention_parse(text, strlen(text), is_member, NULL, &l),
	                 0);
	for (size_t i = 0; i < l.n; i++) {
		if (i > 0)
			strcat(got, " ");
		strcat(got, l.v[i].name);
	}
	if (strcmp(got, want) != 0 || l.room != room)
		fail_msg("%s: got \"%s\" room %d, want \"%s\" room %d", text,
		         got, l.room, want, room);
	mention_list_free(&l);
}

static void
test_mention_at_start_and_after_punctuation(void **state)
{
	(void)state;
	check("@alice hi", "alice", 0);
	check("hi @alice", "alice", 0);
	check("(@alice)", "alice", 0);
	check("hi,@alice!", "alice", 0);
	check("\n@alice", "alice", 0);
	check("@", "", 0);
	check("@ alice", "", 0);
	check("", "", 0);
}

static void
test_mention_not_inside_a_word_or_address(void **state)
{
	(void)state;
	check("bob@alice", "", 0);
	check("Bob@alice", "", 0); /* the char before, case-insensitively */
	check("B@alice", "", 0);
	check("9@alice", "", 0);
	check("_@alice", "", 0);
	check(".@alice", "", 0);
	check("-@alice", "", 0);
	check("@alice@bob", "alice", 0);
	check("mail alice@example.com", "", 0);
}

static void
test_mention_trailing_dots_and_dashes(void **state)
{
	(void)state;
	check("@alice.", "alice", 0);
	check("@alice...", "alice", 0);
	check("@alice-.-", "alice", 0);
	check("@d.o.t.", "d.o.t", 0);
	check("@zed_9_", "", 0); /* '_' is not trimmed */
	check("@carol-", "carol-", 0);
	check("@carol--", "", 0); /* neither carol-- nor carol */
}

static void
test_mention_full_run_wins(void **state)
{
	(void)state;
	check("@bob.", "bob.", 0);
	check("@bob..", "bob", 0);
	check("@bob", "bob", 0);
	check("@bob. and @bob", "bob bob.", 0);
}

static void
test_mention_case_and_order(void **state)
{
	(void)state;
	check("@ALICE", "alice", 0);
	check("@Zed_9 @Bob @alice @ALICE @bob", "alice bob zed_9", 0);
	check("@aLiCe.", "alice", 0);
}

static void
test_mention_non_members_are_not_mentioned(void **state)
{
	(void)state;
	check("@nobody @alicex @xalice", "", 0);
	check("@al", "", 0);
	check("@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	      "", 0);
}

static void
test_mention_room(void **state)
{
	(void)state;
	check("@room", "", 1);
	check("@ROOM!", "", 1);
	check("@Room.", "", 1);
	check("hey @room @alice", "alice", 1);
	check("@roomy", "", 0);
	check("x@room", "", 0);
}

static void
test_mention_utf8_around(void **state)
{
	(void)state;
	check("\xc3\xa9@alice", "alice", 0);         /* é@alice */
	check("@alice\xc3\xa9", "alice", 0);         /* @aliceé */
	check("\xe6\xbc\xa2@x\xe5\xad\x97", "x", 0); /* 漢@x字 */
	check("\xf0\x9f\x91\x8d@bob\xf0\x9f\x91\x8d", "bob", 0);
	check("@\xc3\xa9lise", "", 0);
}

static void
test_mention_asks_once_per_member(void **state)
{
	(void)state;
	asked = 0;
	check("@alice @alice @alice", "alice", 0);
	assert_int_equal(asked, 1);
}

static void
test_mention_reports_callback_error(void **state)
{
	struct mention_list l;

	(void)state;
	assert_int_equal(mention_parse("@alice", 6, failing, NULL, &l), -1);
	mention_list_free(&l);
	/* No @ at all: the callback is never asked. */
	assert_int_equal(mention_parse("alice", 5, failing, NULL, &l), 0);
	assert_int_equal(l.n, 0);
	mention_list_free(&l);
}

static void
test_mention_ids_come_from_the_callback(void **state)
{
	struct mention_list l;
	const char *t = "@zed_9 @alice";

	(void)state;
	assert_int_equal(mention_parse(t, strlen(t), is_member, NULL, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "alice");
	assert_int_equal(l.v[0].id, 1);
	assert_string_equal(l.v[1].name, "zed_9");
	assert_int_equal(l.v[1].id, 8);
	mention_list_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mention_at_start_and_after_punctuation),
	    cmocka_unit_test(test_mention_not_inside_a_word_or_address),
	    cmocka_unit_test(test_mention_trailing_dots_and_dashes),
	    cmocka_unit_test(test_mention_full_run_wins),
	    cmocka_unit_test(test_mention_case_and_order),
	    cmocka_unit_test(test_mention_non_members_are_not_mentioned),
	    cmocka_unit_test(test_mention_room),
	    cmocka_unit_test(test_mention_utf8_around),
	    cmocka_unit_test(test_mention_asks_once_per_member),
	    cmocka_unit_test(test_mention_reports_callback_error),
	    cmocka_unit_test(test_mention_ids_come_from_the_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
