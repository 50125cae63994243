/* tests/unit/test_jsonl.c — storage/jsonl.c: the export's lines, and
 * import reading them back into the same bytes */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chatd/auth.h"
#include "storage/jsonl.h"
#include "storage/storage.h"

/* The name rules chatd import gives the importer. */
static const struct jsonl_names names = {auth_username_fold, auth_room_fold};

struct fixture {
	char dir[64];
	char path[96];
	char path2[96];
	struct db *db;
	struct db *db2;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/chatd-test-jsonl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/a.db", f->dir);
	snprintf(f->path2, sizeof f->path2, "%s/b.db", f->dir);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	db_close(f->db);
	db_close(f->db2);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ann and bob, the room lobby with ann in it, two messages (the second
 * deleted after an edit), and a deleted user cy (whose hash is gone). */
static void
fill(struct db *db)
{
	struct message m = {0};
	struct room lobby;
	int64_t ann, bob, cy;

	assert_int_equal(user_create(db, "ann", "hash-a", 1, &ann), 0);
	assert_int_equal(user_create(db, "bob", "hash-b", 2, &bob), 0);
	assert_int_equal(user_create(db, "cy", "hash-c", 3, &cy), 0);
	assert_int_equal(user_delete(db, cy), 0);
	assert_int_equal(room_create(db, "lobby", ROOM_PUBLIC, 4, &lobby), 0);
	assert_int_equal(member_add(db, lobby.id, ann, 1, 5), 0);
	m.id = m.seq = 1;
	m.room_id = lobby.id;
	m.user_id = ann;
	m.text = "hi \"all\"\n";
	m.text_len = strlen(m.text);
	m.ts = 1000;
	assert_int_equal(message_insert(db, &m, "c1"), 0);
	m.id = m.seq = 2;
	m.user_id = bob;
	m.text = "oops";
	m.text_len = 4;
	m.ts = 1001;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	assert_int_equal(message_edit(db, 2, "oops!", 5, 3, 1002), 0);
	assert_int_equal(message_delete(db, 2, 4), 0);
}

/* The export of db (filtered as jsonl_export's arguments say), as a
 * string to free. */
static char *
export_text(struct db *db, int64_t room_id, int64_t since, int64_t until)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(db_begin_read(db), 0);
	assert_int_equal(jsonl_export(db, f, room_id, since, until), 0);
	assert_int_equal(db_rollback(db), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Imports text into db in one transaction (committed if it imported);
 * returns jsonl_import's answer, *lineno the line it stopped at. */
static const char *
import_text(struct db *db, const char *text, size_t *lineno)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	const char *why;

	assert_non_null(f);
	assert_int_equal(db_begin(db), 0);
	why = jsonl_import(db, f, &names, lineno);
	assert_int_equal(why == NULL ? db_commit(db) : db_rollback(db), 0);
	fclose(f);
	return why;
}

static void
test_jsonl_export_writes_header_users_rooms_members_messages(void **state)
{
	struct fixture *f = *state;
	char want[2048];
	char *got;

	fill(f->db);
	snprintf(want, sizeof want,
	         "{\"type\":\"chatd_export\",\"version\":1,\"epoch\":\"%s\","
	         "\"seq_floor\":0}\n"
	         "{\"type\":\"user\",\"id\":1,\"username\":\"ann\","
	         "\"created_at\":1,\"pwhash\":\"hash-a\"}\n"
	         "{\"type\":\"user\",\"id\":2,\"username\":\"bob\","
	         "\"created_at\":2,\"pwhash\":\"hash-b\"}\n"
	         "{\"type\":\"user\",\"id\":3,\"username\":\"cy\","
	         "\"created_at\":3,\"pwhash\":\"\",\"deleted\":true}\n"
	         "{\"type\":\"room\",\"room\":\"lobby\",\"kind\":\"public\","
	         "\"created_at\":4,\"last_seq\":4}\n"
	         "{\"type\":\"member\",\"room\":\"lobby\",\"user\":\"ann\","
	         "\"read_seq\":1,\"joined_at\":5}\n"
	         "{\"type\":\"message\",\"id\":1,\"seq\":1,\"room\":\"lobby\","
	         "\"user\":\"ann\",\"text\":\"hi \\\"all\\\"\\n\",\"ts\":1000,"
	         "\"client_msg_id\":\"c1\"}\n"
	         "{\"type\":\"message\",\"id\":2,\"seq\":4,\"room\":\"lobby\","
	         "\"user\":\"bob\",\"ts\":1001,\"deleted\":true,"
	         "\"edited_ts\":1002}\n",
	         db_epoch(f->db));
	got = export_text(f->db, 0, -1, -1);
	assert_string_equal(got, want);
	free(got);
	/* Filtered: message lines only. */
	got = export_text(f->db, 0, 1, -1);
	assert_string_equal(
	    got, "{\"type\":\"message\",\"id\":2,\"seq\":4,\"room\":\"lobby\","
	         "\"user\":\"bob\",\"ts\":1001,\"deleted\":true,"
	         "\"edited_ts\":1002}\n");
	free(got);
}

static void
test_jsonl_import_then_export_gives_the_same_bytes(void **state)
{
	struct fixture *f = *state;
	char *a, *b, err[256];
	size_t n;

	fill(f->db);
	a = export_text(f->db, 0, -1, -1);
	assert_null(import_text(f->db2, a, &n));
	assert_int_equal(n, 8);
	/* Reopened, as chatd export after chatd import: the epoch is read
	 * at open. */
	db_close(f->db2);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void
test_jsonl_import_folds_names_and_skips_empty_lines(void **state)
{
	struct fixture *f = *state;
	struct user u;
	struct room r;
	size_t n;

	assert_null(
	    import_text(f->db2,
	                "\r\n{\"type\":\"message\",\"id\":5,\"room\":\"Lobby\","
	                "\"user\":\"ANN\",\"text\":\"x\",\"ts\":9}\n\n",
	                &n));
	assert_int_equal(n, 3);
	assert_int_equal(user_by_name(f->db2, "ann", &u, NULL, 0), 0);
	assert_int_equal(room_by_name(f->db2, "lobby", &r), 0);
	assert_int_equal(r.last_seq, 5);
}

static void
test_jsonl_import_names_the_line_and_why(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *text;
		size_t line;
		const char *why;
	} bad[] = {
	    {"{\"type\":\"user\",\"id\":1,\"username\":\"ann\"}\n[]\n", 2,
	     "not a JSON object"},
	    {"{\"id\":1}\n", 1, "no type"},
	    {"{\"type\":\"nope\"}\n", 1, "unknown type"},
	    {"{\"type\":\"user\",\"id\":1,\"username\":\"a b\"}\n", 1,
	     "bad user line"},
	    {"{\"type\":\"room\",\"room\":\"dm:ann:bob\",\"kind\":\"public\"}",
	     1, "the room's kind does not match its name"},
	    {"{\"type\":\"member\",\"room\":\"lobby\"}", 1, "bad member line"},
	    {"{\"type\":\"message\",\"id\":2,\"seq\":1,\"room\":\"lobby\","
	     "\"user\":\"ann\",\"text\":\"x\",\"ts\":1}",
	     1, "bad message line"},
	    {"{\"type\":\"chatd_export\",\"version\":2}", 1,
	     "unsupported export version"},
	    {"{\"type\":\"chatd_export\",\"version\":1,\"epoch\":\"x\"}", 1,
	     "bad header line"},
	    {"{\"type\":\"user\",\"id\":1,\"username\":\"ann\"}\n"
	     "{\"type\":\"user\",\"id\":2,\"username\":\"Ann\"}\n",
	     2, "duplicate user"},
	};
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_string_equal(import_text(f->db2, bad[i].text, &n),
		                    bad[i].why);
		assert_int_equal(n, bad[i].line);
		assert_int_equal(import_is_empty(f->db2), 1);
	}
}

/* Version 2 messages: ann asks, bob answers with mentions of ann and
 * @room, both react; returns the answer's id. */
static int64_t
fill_v2(struct db *db)
{
	struct message m = {0};
	struct room lobby;
	int64_t ann, bob, ids[1];

	assert_int_equal(user_create(db, "ann", "hash-a", 1, &ann), 0);
	assert_int_equal(user_create(db, "bob", "hash-b", 2, &bob), 0);
	assert_int_equal(room_create(db, "lobby", ROOM_PUBLIC, 3, &lobby), 0);
	assert_int_equal(member_add(db, lobby.id, ann, 0, 4), 0);
	assert_int_equal(member_add(db, lobby.id, bob, 0, 4), 0);
	m.id = m.seq = 1;
	m.room_id = lobby.id;
	m.user_id = ann;
	m.text = "question?";
	m.text_len = strlen(m.text);
	m.ts = 1000;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	m.id = m.seq = 2;
	m.user_id = bob;
	m.text = "@ann answer";
	m.text_len = strlen(m.text);
	m.ts = 1001;
	m.reply_to = 1;
	m.mentions = "ann";
	m.mentions_len = 3;
	ids[0] = ann;
	m.mention_ids = ids;
	m.nmention_ids = 1;
	assert_int_equal(message_insert(db, &m, NULL), 0);
	assert_int_equal(reaction_set(db, 2, ann, "\xf0\x9f\x91\x8d", 1, 3), 0);
	assert_int_equal(reaction_set(db, 2, bob, "x", 1, 4), 0);
	assert_int_equal(reaction_set(db, 2, bob, "\xf0\x9f\x91\x8d", 1, 5), 0);
	assert_int_equal(reaction_set(db, 2, bob, "x", 1, 6), 1);
	return 2;
}

static void
test_jsonl_v2_messages_round_trip(void **state)
{
	struct fixture *f = *state;
	struct mention_count *mc;
	char *a, *b, *line, err[256];
	size_t n;
	int64_t ann = 0;
	struct user u;

	fill_v2(f->db);
	a = export_text(f->db, 0, -1, -1);
	line = strstr(a, "{\"type\":\"message\",\"id\":2");
	assert_non_null(line);
	assert_memory_equal(
	    line,
	    "{\"type\":\"message\",\"id\":2,\"seq\":5,\"room\":\"lobby\","
	    "\"user\":\"bob\",\"text\":\"@ann answer\",\"ts\":1001,"
	    "\"reply_to\":1,\"mentions\":[\"ann\"],\"reactions\":["
	    "{\"emoji\":\"\xf0\x9f\x91\x8d\",\"count\":2,"
	    "\"users\":[\"ann\",\"bob\"]},"
	    "{\"emoji\":\"x\",\"count\":1,\"users\":[\"bob\"]}]}\n",
	    strlen(line));
	assert_null(import_text(f->db2, a, &n));
	db_close(f->db2);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_string_equal(a, b);
	free(b);
	/* The imported mention counts for ann, and reactions made after
	 * the import go after the imported ones. */
	assert_int_equal(user_by_name(f->db2, "ann", &u, NULL, 0), 0);
	ann = u.id;
	assert_int_equal(mention_counts(f->db2, ann, &mc, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(mc[0].count, 1);
	free(mc);
	assert_int_equal(reaction_set(f->db2, 2, ann, "x", 1, 6), 0);
	assert_int_equal(reaction_set(f->db2, 2, ann, "z", 1, 7), 0);
	b = export_text(f->db2, 0, -1, -1);
	assert_non_null(strstr(b, "{\"emoji\":\"x\",\"count\":2,"
	                          "\"users\":[\"bob\",\"ann\"]},"
	                          "{\"emoji\":\"z\",\"count\":1,"
	                          "\"users\":[\"ann\"]}]"));
	free(a);
	free(b);
}

static void
test_jsonl_import_refuses_bad_v2_fields(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "\"mentions\":\"ann\"",
	    "\"mentions\":[\"a b\"]",
	    "\"reactions\":{}",
	    "\"reactions\":[{\"emoji\":\"\",\"users\":[\"ann\"]}]",
	    "\"reactions\":[{\"emoji\":\"x\",\"users\":[]}]",
	    "\"reactions\":[{\"emoji\":\"x\",\"users\":[\"A B\"]}]",
	    "\"reply_to\":-1",
	};
	char text[512];
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text,
		         "{\"type\":\"message\",\"id\":5,\"room\":\"lobby\","
		         "\"user\":\"ann\",\"text\":\"x\",\"ts\":9,%s}\n",
		         bad[i]);
		assert_string_equal(import_text(f->db2, text, &n),
		                    "bad message line");
		assert_int_equal(import_is_empty(f->db2), 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_export_writes_header_users_rooms_members_messages,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_then_export_gives_the_same_bytes, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_folds_names_and_skips_empty_lines, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_names_the_line_and_why, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jsonl_v2_messages_round_trip,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jsonl_import_refuses_bad_v2_fields, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
