/* tests/unit/test_backup.c — storage/db.c for operations: the online
 * backup copy, copying a backup file, the slow-statement log */
#include <fcntl.h>
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

struct fixture {
	char dir[64];
	char path[96];
	struct db *db;
	int64_t ann;
	struct room lobby;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/chatd-test-backup-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/a.db", f->dir);
	assert_int_equal(db_open(&f->db, f->path, err, sizeof err), 0);
	assert_int_equal(user_create(f->db, "ann", "hash-a", 1, &f->ann), 0);
	assert_int_equal(room_create(f->db, "lobby", ROOM_PUBLIC, 3, &f->lobby),
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
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Stores message id in the lobby. */
static void
post(struct fixture *f, int64_t id, const char *text)
{
	struct message m = {0};

	m.id = m.seq = id;
	m.room_id = f->lobby.id;
	m.user_id = f->ann;
	m.text = text;
	m.text_len = strlen(text);
	m.ts = 1000 + id;
	assert_int_equal(message_insert(f->db, &m, NULL), 0);
}

/* export_message_cb appending "id seq text" lines to a buffer. */
static int
collect(void *arg, const struct message *m, const char *cid)
{
	char *buf = arg;
	size_t n = strlen(buf);

	(void)cid;
	snprintf(buf + n, 4096 - n, "%lld %lld %.*s\n", (long long)m->id,
	    (long long)m->seq, (int)m->text_len, m->text ? m->text : "-");
	return 0;
}

static void
test_backup_copies_a_consistent_database(void **state)
{
	struct fixture *f = *state;
	char bk[128], bk2[128], tmp[140], err[256];
	char a[4096] = "", b[4096] = "";
	struct db *copy;

	post(f, 1, "one");
	snprintf(bk, sizeof bk, "%s/backup.db", f->dir);
	snprintf(bk2, sizeof bk2, "%s/copy.db", f->dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", bk);
	assert_int_equal(db_backup(f->db, bk, err, sizeof err), 0);
	/* A second backup replaces the first; no temp file stays. */
	post(f, 2, "two");
	assert_int_equal(db_backup(f->db, bk, err, sizeof err), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(db_copy_file(bk, bk2, err, sizeof err), 0);
	assert_int_equal(db_open(&copy, bk2, err, sizeof err), 0);
	assert_string_equal(db_epoch(copy), db_epoch(f->db));
	assert_int_equal(export_messages(f->db, 0, -1, -1, collect, a), 0);
	assert_int_equal(export_messages(copy, 0, -1, -1, collect, b), 0);
	assert_string_equal(a, "1 1 one\n2 2 two\n");
	assert_string_equal(a, b);
	assert_int_equal(db_new_epoch(copy), 0);
	assert_string_not_equal(db_epoch(copy), db_epoch(f->db));
	db_close(copy);
}

static void
test_backup_into_a_missing_directory_fails(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(db_backup(f->db, "/nonexistent/dir/b.db", err,
			     sizeof err), -1);
	assert_true(err[0] != '\0');
}

static void
test_copy_file_refuses_what_is_not_chatd(void **state)
{
	struct fixture *f = *state;
	char junk[128], out[128], err[256];
	FILE *fp;

	snprintf(junk, sizeof junk, "%s/junk", f->dir);
	snprintf(out, sizeof out, "%s/out.db", f->dir);
	fp = fopen(junk, "w");
	assert_non_null(fp);
	fputs("this is not a database, not at all, no no no no", fp);
	fclose(fp);
	assert_int_equal(db_copy_file(junk, out, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a chatd database"));
	assert_int_equal(db_copy_file("/nonexistent/x.db", out, err,
			     sizeof err), -1);
}

/* Runs a statement that takes far more than 1 ms, with stderr captured
 * in the file log; returns what was logged. */
static char *
slow_statement_log(struct fixture *f, int slow_ms)
{
	static char buf[4096];
	char log[128];
	struct db_stmt *st;
	int fd, saved;
	ssize_t n;

	snprintf(log, sizeof log, "%s/stderr.log", f->dir);
	fd = open(log, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	db_set_slow_ms(slow_ms);
	st = db_prepare(f->db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL"
			       " SELECT x + 1 FROM c WHERE x < 2000000)"
			       " SELECT count(*) FROM c");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_int_equal(db_column_int64(st, 0), 2000000);
	db_reset(st);
	db_set_slow_ms(200);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
test_slow_statements_are_logged_over_the_threshold(void **state)
{
	struct fixture *f = *state;
	char *log = slow_statement_log(f, 1);

	assert_non_null(strstr(log, " warn slow_statement_log: slow "
				    "statement ("));
	assert_non_null(strstr(log, "WITH RECURSIVE c(x)"));
	assert_string_equal(slow_statement_log(f, 0), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_backup_copies_a_consistent_database, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backup_into_a_missing_directory_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_copy_file_refuses_what_is_not_chatd, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_slow_statements_are_logged_over_the_threshold, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
