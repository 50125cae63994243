/* tests/unit/test_file.c — storage/file.c: the files table */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/db.h"
#include "storage/storage.h"
#include "tests/unit/tmpdb.h"

struct fixture {
	char dir[64];
	char path[TMPDB_PATH_MAX];
	struct db *db;
	int64_t ann, bob;
	struct room r, other;
	int64_t seq;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	assert_int_equal(tmpdb_make(f->dir, f->path, "file"), 0);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "h", 1, &f->ann), 0);
	assert_int_equal(user_create(f->db, "bob", "h", 1, &f->bob), 0);
	assert_true(room_create(f->db, "general", ROOM_PUBLIC, 1, &f->r) >= 0);
	assert_true(room_create(f->db, "other", ROOM_PUBLIC, 1, &f->other) >=
	            0);
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

/* Stores an unattached file id of user in room with hash and time. */
static void
put(struct fixture *f, const char *id, int64_t user, int64_t room,
    const char *hash, int64_t size, int64_t now)
{
	struct file_row r = {0};

	snprintf(r.id, sizeof r.id, "%s", id);
	r.room_id = room;
	r.user_id = user;
	snprintf(r.name, sizeof r.name, "n-%s", id);
	snprintf(r.type, sizeof r.type, "text/plain");
	r.size = size;
	for (int i = 0; i < 64; i++)
		r.hash[i] = hash[0];
	r.created_at = now;
	assert_int_equal(file_insert(f->db, &r), 0);
}

/* A message with files ids[0..n) by user; returns its id, or -1 if
 * message_insert refused (2: a file could not be attached). */
static int64_t
post(struct fixture *f, int64_t user, const char *const *ids, size_t n,
     int *rc)
{
	struct message m = {0};

	m.id = ++f->seq;
	m.room_id = f->r.id;
	m.user_id = user;
	m.text = "";
	m.ts = 1000;
	m.files = "[]";
	m.files_len = 2;
	m.file_ids = ids;
	m.nfile_ids = n;
	*rc = message_insert(f->db, &m, NULL);
	return m.id;
}

/* file_cb counting rows into an int. */
static int
count_cb(void *arg, const struct file_row *r)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void
test_file_attach_takes_only_own_unattached_files_of_the_room(void **state)
{
	struct fixture *f = *state;
	const char *mine[] = {"a1", "a2"}, *twice[] = {"a3", "a3"};
	const char *bobs[] = {"b1"}, *elsewhere[] = {"o1"};
	struct file_row r;
	int rc, n = 0;
	int64_t id;

	put(f, "a1", f->ann, f->r.id, "1", 10, 1);
	put(f, "a2", f->ann, f->r.id, "2", 20, 1);
	put(f, "a3", f->ann, f->r.id, "3", 30, 1);
	put(f, "b1", f->bob, f->r.id, "4", 40, 1);
	put(f, "o1", f->ann, f->other.id, "5", 50, 1);
	post(f, f->ann, bobs, 1, &rc);
	assert_int_equal(rc, 2);
	post(f, f->ann, elsewhere, 1, &rc);
	assert_int_equal(rc, 2);
	post(f, f->ann, twice, 2, &rc);
	assert_int_equal(rc, 2);
	id = post(f, f->ann, mine, 2, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(file_get(f->db, "a2", &r), 0);
	assert_int_equal(r.message_id, id);
	assert_int_equal(r.room_kind, ROOM_PUBLIC);
	assert_int_equal(file_list_message(f->db, id, count_cb, &n), 0);
	assert_int_equal(n, 2);
	/* Attached once only; a3 was left unattached by the refusal. */
	post(f, f->ann, mine, 1, &rc);
	assert_int_equal(rc, 2);
	assert_int_equal(file_get(f->db, "a3", &r), 0);
	assert_int_equal(r.message_id, 0);
	assert_int_equal(file_get(f->db, "zz", &r), 1);
}

static void
test_file_delete_message_and_sweep_report_rows(void **state)
{
	struct fixture *f = *state;
	const char *ids[] = {"a1"};
	int64_t files, attached, bytes, id;
	int rc, n = 0;

	put(f, "a1", f->ann, f->r.id, "1", 10, 1);
	put(f, "a2", f->ann, f->r.id, "1", 10, 5); /* the same bytes */
	put(f, "a3", f->ann, f->r.id, "3", 30, 9);
	id = post(f, f->ann, ids, 1, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(file_counts(f->db, &files, &attached, &bytes), 0);
	assert_int_equal(files, 3);
	assert_int_equal(attached, 1);
	assert_int_equal(bytes, 40); /* identical bytes counted once */
	/* The sweep takes unattached rows older than the cutoff only. */
	assert_int_equal(file_sweep(f->db, 9, count_cb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(file_hash_used(f->db,
	                     "1111111111111111111111111111111111111111111111111111111111111111"),
	                 1);
	n = 0;
	assert_int_equal(file_delete_message(f->db, id, count_cb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(file_hash_used(f->db,
	                     "1111111111111111111111111111111111111111111111111111111111111111"),
	                 0);
	assert_int_equal(file_counts(f->db, &files, &attached, &bytes), 0);
	assert_int_equal(files, 1);
	assert_int_equal(bytes, 30);
}

static void
test_file_room_delete_and_user_delete(void **state)
{
	struct fixture *f = *state;
	const char *ids[] = {"a1"};
	struct file_row r;
	int rc;

	put(f, "a1", f->bob, f->r.id, "1", 10, 1);
	put(f, "a2", f->bob, f->r.id, "2", 10, 1);
	put(f, "o1", f->bob, f->other.id, "3", 10, 1);
	post(f, f->bob, ids, 1, &rc);
	assert_int_equal(rc, 0);
	/* user del: the unattached uploads go, the attached file stays. */
	assert_int_equal(user_delete(f->db, f->bob), 0);
	assert_int_equal(file_get(f->db, "a1", &r), 0);
	assert_int_equal(file_get(f->db, "a2", &r), 1);
	assert_int_equal(file_get(f->db, "o1", &r), 1);
	/* room del: every file of the room. */
	assert_int_equal(room_delete(f->db, f->r.id), 0);
	assert_int_equal(file_get(f->db, "a1", &r), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_file_attach_takes_only_own_unattached_files_of_the_room,
	        setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_file_delete_message_and_sweep_report_rows, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_file_room_delete_and_user_delete,
	                                    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
