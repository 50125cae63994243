/* tests/unit/test_message.c — storage/message.c: store, page, resync, search */
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
	int64_t ann, bob;
	struct room lobby, other;
	int64_t seq;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "message"), 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &f->ann), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &f->bob), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 1, &f->lobby),
	                 0);
	assert_int_equal(room_create(f->db, "other", ROOM_PUBLIC, 1, &f->other),
	                 0);
	assert_int_equal(member_add(f->db, f->lobby.id, f->ann, 0, 1), 0);
	assert_int_equal(member_add(f->db, f->lobby.id, f->bob, 0, 1), 0);
	assert_int_equal(member_add(f->db, f->other.id, f->bob, 0, 1), 0);
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

/* Stores text by user in room with the next seq, maybe with a client id;
 * returns message_insert's result. */
static int
post_cid(struct fixture *f, int64_t room_id, int64_t user_id, const char *text,
         const char *cid)
{
	struct message m = {0};

	m.id = f->seq + 1;
	m.room_id = room_id;
	m.user_id = user_id;
	m.text = text;
	m.text_len = strlen(text);
	m.ts = 1000 + m.id;
	int rc = message_insert(f->db, &m, cid);
	if (rc == 0)
		f->seq++;
	return rc;
}

/* Stores text and returns the new message's id. */
static int64_t
post(struct fixture *f, int64_t room_id, int64_t user_id, const char *text)
{
	assert_int_equal(post_cid(f, room_id, user_id, text, NULL), 0);
	return f->seq;
}

/* What the callbacks saw. */
struct seen {
	int n;
	int64_t id[128];
	int64_t seq[128];
	struct message *last;
	int stop_after;
};

static int
collect(void *arg, const struct message *m)
{
	struct seen *s = arg;

	if (s->n < 128) {
		s->id[s->n] = m->id;
		s->seq[s->n] = m->seq;
	}
	s->n++;
	message_free(s->last);
	s->last = message_copy(m);
	return s->n == s->stop_after;
}

static void
seen_free(struct seen *s)
{
	message_free(s->last);
	memset(s, 0, sizeof *s);
}

/* --- insert, get, client_msg_id --- */

static void
test_message_insert_then_get_returns_all_fields(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	struct room r;
	int64_t id = post(f, f->lobby.id, f->ann, "hello world");

	assert_int_equal(message_get(f->db, id, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last->id, id);
	assert_int_equal(s.last->seq, id);
	assert_int_equal(s.last->room_id, f->lobby.id);
	assert_int_equal(s.last->user_id, f->ann);
	assert_string_equal(s.last->room, "lobby");
	assert_string_equal(s.last->username, "ann");
	assert_string_equal(s.last->text, "hello world");
	assert_int_equal(s.last->text_len, 11);
	assert_int_equal(s.last->ts, 1000 + id);
	assert_int_equal(s.last->edited_ts, 0);
	assert_int_equal(s.last->deleted, 0);
	assert_int_equal(room_by_name(f->db, "lobby", &r), 0);
	assert_int_equal(r.last_seq, id);
	assert_int_equal(db_max_seq(f->db), id);
	seen_free(&s);
}

static void
test_message_get_missing_is_not_found(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};

	assert_int_equal(message_get(f->db, 42, collect, &s), 1);
	assert_int_equal(s.n, 0);
}

static void
test_message_insert_keeps_embedded_bytes_exactly(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	struct message m = {0};
	const char text[] = "a\0b";

	m.id = ++f->seq;
	m.room_id = f->lobby.id;
	m.user_id = f->ann;
	m.text = text;
	m.text_len = 3;
	if (tmpdb_pg()) {
		/* PostgreSQL's text cannot hold U+0000: refused, nothing
		 * stored (chatd answers such a send before storage). */
		assert_int_equal(message_insert(f->db, &m, NULL), -1);
		assert_int_equal(message_get(f->db, m.id, NULL, NULL), 1);
		return;
	}
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
	assert_int_equal(message_get(f->db, m.id, collect, &s), 0);
	assert_int_equal(s.last->text_len, 3);
	assert_memory_equal(s.last->text, text, 3);
	seen_free(&s);
}

static void
test_message_insert_same_client_id_twice_stores_once(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t first;

	assert_int_equal(post_cid(f, f->lobby.id, f->ann, "one", "c1"), 0);
	first = f->seq;
	assert_int_equal(post_cid(f, f->lobby.id, f->ann, "again", "c1"), 1);
	assert_int_equal(message_get(f->db, first + 1, NULL, NULL), 1);
	assert_int_equal(message_by_client_id(f->db, f->ann, "c1", collect, &s),
	                 0);
	assert_int_equal(s.last->id, first);
	assert_string_equal(s.last->text, "one");
	seen_free(&s);
	/* The room's last_seq did not move for the refused one. */
	assert_int_equal(room_by_name(f->db, "lobby", &f->lobby), 0);
	assert_int_equal(f->lobby.last_seq, first);
}

static void
test_message_same_client_id_by_two_users_is_fine(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};

	assert_int_equal(post_cid(f, f->lobby.id, f->ann, "a", "same"), 0);
	assert_int_equal(post_cid(f, f->lobby.id, f->bob, "b", "same"), 0);
	assert_int_equal(
	    message_by_client_id(f->db, f->bob, "same", collect, &s), 0);
	assert_string_equal(s.last->text, "b");
	seen_free(&s);
	assert_int_equal(
	    message_by_client_id(f->db, f->bob, "nope", collect, &s), 1);
	/* Messages without a client id never collide. */
	post(f, f->lobby.id, f->ann, "x");
	post(f, f->lobby.id, f->ann, "y");
}

static void
test_message_client_id_reply_shows_current_state(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t id;

	assert_int_equal(post_cid(f, f->lobby.id, f->ann, "a", "c"), 0);
	id = f->seq;
	assert_int_equal(message_delete(f->db, id, ++f->seq, 0), 0);
	assert_int_equal(post_cid(f, f->lobby.id, f->ann, "a", "c"), 1);
	assert_int_equal(message_by_client_id(f->db, f->ann, "c", collect, &s),
	                 0);
	assert_int_equal(s.last->deleted, 1);
	assert_null(s.last->text);
	seen_free(&s);
}

static void
test_message_insert_with_duplicate_id_fails(void **state)
{
	struct fixture *f = *state;
	struct message m = {0};
	struct room r;

	post(f, f->lobby.id, f->ann, "x");
	m.id = f->seq;
	m.room_id = f->other.id;
	m.user_id = f->ann;
	m.text = "dup";
	m.text_len = 3;
	assert_int_equal(message_insert(f->db, &m, NULL), -1);
	assert_int_equal(room_by_name(f->db, "other", &r), 0);
	assert_int_equal(r.last_seq, 0);
}

/* --- edit, delete --- */

static void
test_message_edit_changes_text_seq_and_room(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	struct room r;
	int64_t id = post(f, f->lobby.id, f->ann, "typo");

	assert_int_equal(message_edit(f->db, id, "fixed", 5, 7, 5000), 0);
	assert_int_equal(message_get(f->db, id, collect, &s), 0);
	assert_string_equal(s.last->text, "fixed");
	assert_int_equal(s.last->id, id);
	assert_int_equal(s.last->seq, 7);
	assert_int_equal(s.last->edited_ts, 5000);
	assert_int_equal(room_by_name(f->db, "lobby", &r), 0);
	assert_int_equal(r.last_seq, 7);
	assert_int_equal(db_max_seq(f->db), 7);
	seen_free(&s);
}

static void
test_message_edit_missing_or_deleted_is_not_found(void **state)
{
	struct fixture *f = *state;
	int64_t id = post(f, f->lobby.id, f->ann, "x");

	assert_int_equal(message_edit(f->db, 99, "y", 1, 50, 1), 1);
	assert_int_equal(message_delete(f->db, id, ++f->seq, 0), 0);
	assert_int_equal(message_edit(f->db, id, "y", 1, 50, 1), 1);
	assert_int_equal(message_delete(f->db, id, 51, 0), 1);
	assert_int_equal(message_delete(f->db, 99, 52, 0), 1);
	assert_int_equal(db_max_seq(f->db), f->seq);
}

static void
test_message_delete_leaves_tombstone(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	struct room r;
	int64_t id = post(f, f->lobby.id, f->ann, "secret");

	assert_int_equal(message_delete(f->db, id, 10, 0), 0);
	assert_int_equal(message_get(f->db, id, collect, &s), 0);
	assert_int_equal(s.last->deleted, 1);
	assert_null(s.last->text);
	assert_int_equal(s.last->text_len, 0);
	assert_int_equal(s.last->seq, 10);
	assert_string_equal(s.last->username, "ann");
	assert_int_equal(room_by_name(f->db, "lobby", &r), 0);
	assert_int_equal(r.last_seq, 10);
	seen_free(&s);
}

static void
test_message_edit_inside_transaction_rolls_back_with_it(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t id = post(f, f->lobby.id, f->ann, "before");

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(message_edit(f->db, id, "after", 5, 20, 1), 0);
	assert_int_equal(db_rollback(f->db), 0);
	assert_int_equal(message_get(f->db, id, collect, &s), 0);
	assert_string_equal(s.last->text, "before");
	seen_free(&s);
}

static void
test_message_of_deleted_user_keeps_username(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t id = post(f, f->lobby.id, f->ann, "legacy");

	assert_int_equal(user_delete(f->db, f->ann), 0);
	assert_int_equal(message_get(f->db, id, collect, &s), 0);
	assert_string_equal(s.last->username, "ann");
	assert_string_equal(s.last->text, "legacy");
	seen_free(&s);
}

/* --- paging --- */

/* Posts n messages to the lobby; ids 1..n when nothing came before. */
static void
fill(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++)
		post(f, f->lobby.id, f->ann, "m");
}

static void
test_message_page_of_empty_room(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int more = -1;

	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, -1, 50, collect, &s, &more), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(more, 0);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 10, 0, 50, collect, &s, &more), 0);
	assert_int_equal(more, 0);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, 0, 50, collect, &s, &more), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(more, 0);
}

static void
test_message_page_newest_ascending_with_more(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int more = -1;

	fill(f, 10);
	post(f, f->other.id, f->bob, "elsewhere"); /* id 11, not in lobby */
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, -1, 3, collect, &s, &more), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.id[0], 8);
	assert_int_equal(s.id[1], 9);
	assert_int_equal(s.id[2], 10);
	assert_int_equal(more, 1);
	seen_free(&s);
}

static void
test_message_page_newest_exactly_limit_has_no_more(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int more = -1;

	fill(f, 5);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, -1, 5, collect, &s, &more), 0);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.id[0], 1);
	assert_int_equal(s.id[4], 5);
	assert_int_equal(more, 0);
	seen_free(&s);
}

static void
test_message_page_before_bounds(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int more = -1;

	fill(f, 10);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 6, 0, 3, collect, &s, &more), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.id[0], 3);
	assert_int_equal(s.id[2], 5);
	assert_int_equal(more, 1);
	seen_free(&s);
	/* Exactly the rest: no more. */
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 4, 0, 3, collect, &s, &more), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.id[0], 1);
	assert_int_equal(more, 0);
	seen_free(&s);
	/* Nothing before the first. */
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 1, 0, 3, collect, &s, &more), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(more, 0);
	/* A before past the end is the newest page. */
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 1000, 0, 2, collect, &s, &more),
	    0);
	assert_int_equal(s.id[0], 9);
	assert_int_equal(s.id[1], 10);
	assert_int_equal(more, 1);
	seen_free(&s);
}

static void
test_message_page_after_bounds(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int more = -1;

	fill(f, 10);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, 0, 3, collect, &s, &more), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.id[0], 1);
	assert_int_equal(s.id[2], 3);
	assert_int_equal(more, 1);
	seen_free(&s);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, 7, 3, collect, &s, &more), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.id[0], 8);
	assert_int_equal(s.id[2], 10);
	assert_int_equal(more, 0);
	seen_free(&s);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, 10, 3, collect, &s, &more), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(more, 0);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, 6, 3, collect, &s, &more), 0);
	assert_int_equal(s.id[0], 7);
	assert_int_equal(more, 1);
	seen_free(&s);
}

static void
test_message_page_includes_tombstones(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int more;

	fill(f, 3);
	assert_int_equal(message_delete(f->db, 3, ++f->seq, 0), 0);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, -1, 50, collect, &s, &more), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.last->id, 3);
	assert_int_equal(s.last->deleted, 1);
	seen_free(&s);
}

static void
test_message_page_stops_when_callback_says_so(void **state)
{
	struct fixture *f = *state;
	struct seen s = {.stop_after = 2};
	int more;

	fill(f, 5);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, 0, 5, collect, &s, &more), 0);
	assert_int_equal(s.n, 2);
	seen_free(&s);
	assert_int_equal(
	    message_page(f->db, f->lobby.id, 0, 0, 5, collect, &s, &more), 0);
	assert_int_equal(s.n, 5);
	seen_free(&s);
}

/* --- resync --- */

/* The lobby's changes after since: message_count_changed counts n, and
 * message_changed replays n rows with these {id, seq}, in this order. */
static void
expect_changed(struct fixture *f, int64_t since, int n,
               const int64_t want[][2])
{
	struct seen s = {0};

	assert_int_equal(message_count_changed(f->db, f->lobby.id, since, 1000),
	                 n);
	assert_int_equal(
	    message_changed(f->db, f->lobby.id, since, collect, &s), 0);
	assert_int_equal(s.n, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(s.id[i], want[i][0]);
		assert_int_equal(s.seq[i], want[i][1]);
	}
	seen_free(&s);
}

static void
test_message_changed_in_seq_order_with_edits_and_deletes(void **state)
{
	struct fixture *f = *state;
	/* 3 and 4 new, 2 edited at 6, 1 deleted at 7, 8 new. */
	const int64_t want[][2] = {{3, 3}, {4, 4}, {2, 6}, {1, 7}, {8, 8}};

	fill(f, 4);                                    /* 1..4 */
	post(f, f->other.id, f->bob, "not this room"); /* 5 */
	assert_int_equal(message_edit(f->db, 2, "e", 1, ++f->seq, 1), 0);
	assert_int_equal(message_delete(f->db, 1, ++f->seq, 0), 0); /* 7 */
	post(f, f->lobby.id, f->ann, "new");                     /* 8 */

	expect_changed(f, 2, 5, want);
	expect_changed(f, 8, 0, want);
}

/* The two halves of the replay (never-changed messages by id, changed ones
 * by seq) neither miss nor repeat a message that is newer than since and
 * was changed after it, and the count agrees with the rows. */
static void
test_message_changed_newer_message_edited_once(void **state)
{
	struct fixture *f = *state;
	const int64_t after2[][2] = {{4, 5}, {6, 6}, {1, 7}, {3, 8}};

	fill(f, 4);                                               /* 1..4 */
	assert_int_equal(message_edit(f->db, 4, "e", 1, ++f->seq, 1), 0); /* 5 */
	post(f, f->lobby.id, f->ann, "new");                      /* 6 */
	assert_int_equal(message_edit(f->db, 1, "e", 1, ++f->seq, 1), 0); /* 7 */
	assert_int_equal(message_delete(f->db, 3, ++f->seq, 0), 0);          /* 8 */

	expect_changed(f, 2, 4, after2);
	/* since 6: only the two changes after it, though 1 and 3 are old */
	expect_changed(f, 6, 2, after2 + 2);
	/* the cap holds across both halves: 4 changes after 2 */
	assert_int_equal(message_count_changed(f->db, f->lobby.id, 2, 3), 4);
	assert_int_equal(message_count_changed(f->db, f->lobby.id, 2, 4), 4);
}

static void
test_message_count_changed_caps_at_max_plus_one(void **state)
{
	struct fixture *f = *state;

	fill(f, 10);
	assert_int_equal(message_count_changed(f->db, f->lobby.id, 0, 3), 4);
	assert_int_equal(message_count_changed(f->db, f->lobby.id, 0, 10), 10);
	assert_int_equal(message_count_changed(f->db, f->lobby.id, 0, 9), 10);
	assert_int_equal(message_count_changed(f->db, f->lobby.id, 7, 3), 3);
	assert_int_equal(message_count_changed(f->db, f->lobby.id, 10, 3), 0);
	assert_int_equal(message_count_changed(f->db, f->other.id, 0, 3), 0);
}

/* --- search --- */

/* Searches as user (room 0: their rooms) and returns the ids seen. */
static int
search(struct fixture *f, int64_t user, int64_t room, const char *q,
       struct seen *s)
{
	memset(s->id, 0, sizeof s->id);
	message_free(s->last);
	s->last = NULL;
	s->n = 0;
	assert_true(message_index_pending(f->db, INT64_MAX) >= 0);
	assert_int_equal(message_search(f->db, user, room, q, 20, collect, s),
	                 0);
	return s->n;
}

static void
test_message_search_finds_words_and_substrings(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t a = post(f, f->lobby.id, f->ann, "The quick brown fox");
	int64_t b = post(f, f->lobby.id, f->bob, "a lazy dog, ok?");

	assert_int_equal(search(f, f->ann, 0, "quick", &s), 1);
	assert_int_equal(s.id[0], a);
	assert_int_equal(search(f, f->ann, 0, "QUICK Fox", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "uic", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "ok", &s), 1); /* short word */
	assert_int_equal(s.id[0], b);
	assert_int_equal(search(f, f->ann, 0, "a", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "o", &s), 0); /* not a word */
	assert_int_equal(search(f, f->ann, 0, "lazy ok", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "quick dog", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "   ", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "", &s), 0);
	seen_free(&s);
}

static void
test_message_search_newest_first_with_limit(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};

	for (int i = 0; i < 30; i++)
		post(f, f->lobby.id, f->ann, "repeat after me");
	assert_int_equal(search(f, f->ann, 0, "repeat", &s), 20);
	assert_int_equal(s.id[0], 30);
	assert_int_equal(s.id[19], 11);
	seen_free(&s);
}

static void
test_message_search_finds_cjk_substring(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t id = post(f, f->lobby.id, f->ann, "これは漢字テストです");

	assert_int_equal(search(f, f->ann, 0, "字テス", &s), 1);
	assert_int_equal(s.id[0], id);
	assert_int_equal(search(f, f->ann, 0, "漢字テスト", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "字テスX", &s), 0);
	seen_free(&s);
}

static void
test_message_search_takes_fts_syntax_literally(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t lit = post(f, f->lobby.id, f->ann,
	                   "say \"hi\" (or not) *star* NEAR(x y)");
	post(f, f->lobby.id, f->ann, "hi there, not a star");

	assert_int_equal(search(f, f->ann, 0, "\"hi\"", &s), 1);
	assert_int_equal(s.id[0], lit);
	assert_int_equal(search(f, f->ann, 0, "(or", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "*star*", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "NEAR(x", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "hi OR nothing", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "star*", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "\"", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "\"\"\"", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "*", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "(", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "not -star", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "OR", &s), 1); /* the word */
	seen_free(&s);
}

static void
test_message_search_skips_deleted_and_follows_edits(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t gone = post(f, f->lobby.id, f->ann, "vanishing words");
	int64_t ed = post(f, f->lobby.id, f->ann, "original phrase here");

	assert_int_equal(message_delete(f->db, gone, ++f->seq, 0), 0);
	assert_int_equal(search(f, f->ann, 0, "vanishing", &s), 0);
	assert_int_equal(
	    message_edit(f->db, ed, "replacement phrase here", 23, ++f->seq, 1),
	    0);
	assert_int_equal(search(f, f->ann, 0, "original", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "replacement", &s), 1);
	assert_int_equal(s.id[0], ed);
	/* Words the old and new text share are still found. */
	assert_int_equal(search(f, f->ann, 0, "phrase", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "here", &s), 1);
	seen_free(&s);
}

static void
test_message_index_pending_catches_up_in_chunks(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t first = post(f, f->lobby.id, f->ann, "chunked alpha");

	for (int i = 0; i < 4; i++)
		post(f, f->lobby.id, f->ann, "chunked beta");
	if (tmpdb_pg()) {
		/* PostgreSQL maintains pg_trgm's index itself: nothing is
		 * ever pending, and search sees every commit. */
		assert_int_equal(message_index_pending(f->db, 2), 0);
	} else {
		/* Five ids pending: two, two, one, then nothing. */
		assert_int_equal(message_index_pending(f->db, 2), 2);
		assert_int_equal(message_index_pending(f->db, 2), 2);
		assert_int_equal(message_index_pending(f->db, 2), 1);
		assert_int_equal(message_index_pending(f->db, 2), 0);
	}
	/* An indexed message deleted or edited leaves the index in step. */
	assert_int_equal(message_delete(f->db, first, ++f->seq, 0), 0);
	assert_int_equal(search(f, f->ann, 0, "alpha", &s), 0);
	assert_int_equal(search(f, f->ann, 0, "chunked", &s), 4);
	seen_free(&s);
}

static void
test_message_search_scoped_to_member_rooms_or_room(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t in_lobby = post(f, f->lobby.id, f->bob, "findme lobby");
	int64_t in_other = post(f, f->other.id, f->bob, "findme other");

	/* ann is in lobby only; bob in both. */
	assert_int_equal(search(f, f->ann, 0, "findme", &s), 1);
	assert_int_equal(s.id[0], in_lobby);
	assert_int_equal(search(f, f->bob, 0, "findme", &s), 2);
	assert_int_equal(s.id[0], in_other);
	assert_int_equal(s.id[1], in_lobby);
	/* An explicit room (access checked by the caller). */
	assert_int_equal(search(f, f->ann, f->other.id, "findme", &s), 1);
	assert_int_equal(s.id[0], in_other);
	assert_int_equal(member_remove(f->db, f->lobby.id, f->ann), 0);
	assert_int_equal(search(f, f->ann, 0, "findme", &s), 0);
	seen_free(&s);
}

static void
test_message_search_ignores_accents_for_short_words(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};

	post(f, f->lobby.id, f->ann, "café à côté");
	assert_int_equal(search(f, f->ann, 0, "a", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "café", &s), 1);
	assert_int_equal(search(f, f->ann, 0, "côt", &s), 1);
	seen_free(&s);
}

static void
test_message_copy_owns_text(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	int64_t id = post(f, f->lobby.id, f->ann, "copied");

	assert_int_equal(message_get(f->db, id, collect, &s), 0);
	/* The statement has been reset since; the copy is still whole. */
	assert_int_equal(message_get(f->db, id, NULL, NULL), 0);
	assert_string_equal(s.last->text, "copied");
	assert_string_equal(s.last->room, "lobby");
	seen_free(&s);
}

/* --- seq limits --- */

static void
test_message_refuses_seqs_outside_1_to_seq_max(void **state)
{
	struct fixture *f = *state;
	struct message m = {0};
	int64_t id = post(f, f->lobby.id, f->ann, "x");
	struct room r;

	m.room_id = f->lobby.id;
	m.user_id = f->ann;
	m.text = "y";
	m.text_len = 1;
	m.ts = 1;
	m.id = SEQ_MAX + 1;
	assert_int_equal(message_insert(f->db, &m, NULL), -1);
	m.id = INT64_MAX;
	assert_int_equal(message_insert(f->db, &m, NULL), -1);
	m.id = -1;
	assert_int_equal(message_insert(f->db, &m, NULL), -1);
	assert_int_equal(message_edit(f->db, id, "z", 1, SEQ_MAX + 1, 2), -1);
	assert_int_equal(message_delete(f->db, id, SEQ_MAX + 1, 0), -1);
	assert_int_equal(message_delete(f->db, id, 0, 0), -1);
	assert_int_equal(db_max_seq(f->db), id);
	assert_int_equal(room_by_name(f->db, "lobby", &r), 0);
	assert_int_equal(r.last_seq, id);
	/* SEQ_MAX itself is the last seq stored. */
	m.id = SEQ_MAX;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
	assert_int_equal(db_max_seq(f->db), SEQ_MAX);
}

static void
test_message_db_max_seq_never_lets_the_next_seq_overflow(void **state)
{
	struct fixture *f = *state;
	struct message m = {0};

	/* A hand-edited database holding the highest int64 seq (import
	 * writes rows as given; jsonl_import is what refuses them). */
	m.id = m.seq = INT64_MAX;
	snprintf(m.room, sizeof m.room, "lobby");
	snprintf(m.username, sizeof m.username, "ann");
	m.text = "last";
	m.text_len = 4;
	m.ts = 1;
	assert_int_equal(import_message(f->db, &m, NULL), 0);
	/* chat_start allocates from db_max_seq + 1: no signed overflow,
	 * and that seq is refused. */
	assert_int_equal(db_max_seq(f->db), SEQ_MAX);
	m.room_id = f->lobby.id;
	m.user_id = f->ann;
	m.id = m.seq = db_max_seq(f->db) + 1;
	assert_int_equal(message_insert(f->db, &m, NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_message_insert_then_get_returns_all_fields),
	    T(test_message_get_missing_is_not_found),
	    T(test_message_insert_keeps_embedded_bytes_exactly),
	    T(test_message_insert_same_client_id_twice_stores_once),
	    T(test_message_same_client_id_by_two_users_is_fine),
	    T(test_message_client_id_reply_shows_current_state),
	    T(test_message_insert_with_duplicate_id_fails),
	    T(test_message_edit_changes_text_seq_and_room),
	    T(test_message_edit_missing_or_deleted_is_not_found),
	    T(test_message_delete_leaves_tombstone),
	    T(test_message_edit_inside_transaction_rolls_back_with_it),
	    T(test_message_of_deleted_user_keeps_username),
	    T(test_message_page_of_empty_room),
	    T(test_message_page_newest_ascending_with_more),
	    T(test_message_page_newest_exactly_limit_has_no_more),
	    T(test_message_page_before_bounds),
	    T(test_message_page_after_bounds),
	    T(test_message_page_includes_tombstones),
	    T(test_message_page_stops_when_callback_says_so),
	    T(test_message_changed_in_seq_order_with_edits_and_deletes),
	    T(test_message_changed_newer_message_edited_once),
	    T(test_message_count_changed_caps_at_max_plus_one),
	    T(test_message_search_finds_words_and_substrings),
	    T(test_message_search_newest_first_with_limit),
	    T(test_message_index_pending_catches_up_in_chunks),
	    T(test_message_search_finds_cjk_substring),
	    T(test_message_search_takes_fts_syntax_literally),
	    T(test_message_search_skips_deleted_and_follows_edits),
	    T(test_message_search_scoped_to_member_rooms_or_room),
	    T(test_message_search_ignores_accents_for_short_words),
	    T(test_message_copy_owns_text),
	    T(test_message_refuses_seqs_outside_1_to_seq_max),
	    T(test_message_db_max_seq_never_lets_the_next_seq_overflow),
#undef T
	};

	log_setup(LOG_ERROR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
