/* tests/unit/test_export.c — storage/export.c and storage/import.c: what
 * goes out comes back in exactly */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	char path2[TMPDB_PATH_MAX];
	struct db *db;
	struct db *db2;
	int64_t ann, bob;
	struct room lobby, dm;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/chatd-test-export-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(tmpdb_path(f->path, sizeof f->path, f->dir, "a.db"), 0);
	assert_int_equal(tmpdb_path(f->path2, sizeof f->path2, f->dir, "b.db"),
	                 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(db_open(&f->db2, f->path2, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "hash-a", 1, &f->ann), 0);
	assert_int_equal(user_create(f->db, "bob", "hash-b", 2, &f->bob), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 3, &f->lobby),
	    0);
	assert_int_equal(room_create(f->db, "dm:ann:bob", ROOM_DM, 4, &f->dm),
	    0);
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
	tmpdb_drop(f->path);
	tmpdb_drop(f->path2);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Stores message id in room by user. */
static void
post(struct fixture *f, int64_t id, const struct room *r, int64_t user,
    const char *text, const char *cid)
{
	struct message m = {0};

	m.id = m.seq = id;
	m.room_id = r->id;
	m.user_id = user;
	m.text = text;
	m.text_len = strlen(text);
	m.ts = 1000 + id;
	assert_int_equal(message_insert(f->db, &m, cid), 0);
}

/* export_message_cb appending "id seq room user text edited deleted cid"
 * lines to a buffer. */
static int
collect(void *arg, const struct message *m, const char *cid)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 4096 - n, "%lld %lld %s %s %.*s %lld %d %s\n",
	    (long long)m->id, (long long)m->seq, m->room, m->username,
	    (int)m->text_len, m->text ? m->text : "-", (long long)m->edited_ts,
	    m->deleted, cid ? cid : "-");
	return 0;
}

/* import_message for each message of src: the core of chatd import. */
static int
copy_message(void *arg, const struct message *m, const char *cid)
{
	return import_message(arg, m, cid);
}

static void
test_export_messages_filters_by_room_seq_and_time(void **state)
{
	struct fixture *f = *state;
	char buf[4096] = "";

	post(f, 1, &f->lobby, f->ann, "one", NULL);
	post(f, 2, &f->dm, f->bob, "two", "c2");
	post(f, 3, &f->lobby, f->bob, "three", NULL);
	assert_int_equal(message_edit(f->db, 1, "uno", 3, 4, 2000), 0);
	assert_int_equal(export_messages(f->db, 0, -1, -1, collect, buf), 0);
	assert_string_equal(buf, "1 4 lobby ann uno 2000 0 -\n"
				 "2 2 dm:ann:bob bob two 0 0 c2\n"
				 "3 3 lobby bob three 0 0 -\n");
	buf[0] = '\0';
	assert_int_equal(
	    export_messages(f->db, f->lobby.id, -1, -1, collect, buf), 0);
	assert_string_equal(buf, "1 4 lobby ann uno 2000 0 -\n"
				 "3 3 lobby bob three 0 0 -\n");
	buf[0] = '\0';
	assert_int_equal(export_messages(f->db, 0, 2, -1, collect, buf), 0);
	assert_string_equal(buf, "1 4 lobby ann uno 2000 0 -\n"
				 "3 3 lobby bob three 0 0 -\n");
	buf[0] = '\0';
	assert_int_equal(export_messages(f->db, 0, -1, 1002, collect, buf), 0);
	assert_string_equal(buf, "1 4 lobby ann uno 2000 0 -\n"
				 "2 2 dm:ann:bob bob two 0 0 c2\n");
}

static void
test_import_refuses_nothing_into_empty_and_round_trips(void **state)
{
	struct fixture *f = *state;
	char a[4096] = "", b[4096] = "";
	struct message dup = {0};
	struct room r;

	post(f, 1, &f->lobby, f->ann, "one", "c1");
	post(f, 2, &f->dm, f->bob, "two", NULL);
	assert_int_equal(message_delete(f->db, 2, 3, 0), 0);
	assert_int_equal(import_is_empty(f->db), 0);
	assert_int_equal(import_is_empty(f->db2), 1);
	assert_int_equal(db_begin(f->db2), 0);
	assert_int_equal(export_messages(f->db, 0, -1, -1, copy_message,
			     f->db2), 0);
	assert_int_equal(db_commit(f->db2), 0);
	assert_int_equal(export_messages(f->db, 0, -1, -1, collect, a), 0);
	assert_int_equal(export_messages(f->db2, 0, -1, -1, collect, b), 0);
	assert_string_equal(a, b);
	/* Rooms and users came with the messages; last_seq follows. */
	assert_int_equal(room_by_name(f->db2, "dm:ann:bob", &r), 0);
	assert_int_equal(r.kind, ROOM_DM);
	assert_int_equal(r.last_seq, 3);
	assert_int_equal(db_max_seq(f->db2), 3);
	/* The same id again is a duplicate. */
	dup.id = dup.seq = 1;
	snprintf(dup.room, sizeof dup.room, "lobby");
	snprintf(dup.username, sizeof dup.username, "ann");
	dup.text = "again";
	dup.text_len = 5;
	assert_int_equal(import_message(f->db2, &dup, NULL), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_export_messages_filters_by_room_seq_and_time, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_import_refuses_nothing_into_empty_and_round_trips,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
