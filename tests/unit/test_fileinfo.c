/* tests/unit/test_fileinfo.c — file names, types, Content-Disposition,
 * Range, and the blob store */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "chatd/blob.h"
#include "chatd/fileinfo.h"

/* fileinfo_name on a C string. */
static long
name_of(const char *raw, char *out)
{
	return fileinfo_name(raw, strlen(raw), out);
}

static void
test_fileinfo_name_decodes_percent_and_keeps_plus(void **state)
{
	char out[FILE_NAME_MAX + 1];

	(void)state;
	assert_int_equal(name_of("a+b%20c.txt", out), 9);
	assert_string_equal(out, "a+b c.txt");
	assert_int_equal(name_of("%E6%97%A5", out), 3);
	assert_string_equal(out, "\xe6\x97\xa5");
	assert_int_equal(name_of("..", out), 2);
}

static void
test_fileinfo_name_refuses_separators_controls_and_bad_utf8(void **state)
{
	static const char *bad[] = {"", "a/b", "%2f", "a%5Cb", "a\\b",
	    "%00", "%01", "%1F", "%7F", "%C2%80", "%C2%9F", "%FF", "%C3",
	    "%E6%97", "%ED%A0%80", "%zz", "%2", "%"};
	char out[FILE_NAME_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (name_of(bad[i], out) != -1)
			fail_msg("accepted '%s'", bad[i]);
	/* U+00A0 (C2 A0) is not a control character. */
	assert_int_equal(name_of("%C2%A0", out), 2);
}

static void
test_fileinfo_name_takes_255_bytes_not_256(void **state)
{
	char raw[3 * 300], out[FILE_NAME_MAX + 1];

	(void)state;
	memset(raw, 'x', 255);
	raw[255] = '\0';
	assert_int_equal(name_of(raw, out), 255);
	raw[255] = 'x';
	raw[256] = '\0';
	assert_int_equal(name_of(raw, out), -1);
	/* 85 three-byte characters: 255 bytes; 86: too many. */
	raw[0] = '\0';
	for (int i = 0; i < 85; i++)
		strcat(raw, "%E6%97%A5");
	assert_int_equal(name_of(raw, out), 255);
	strcat(raw, "%E6%97%A5");
	assert_int_equal(name_of(raw, out), -1);
}

static void
test_fileinfo_query_raw_finds_exact_names(void **state)
{
	const char *v;
	size_t n;

	(void)state;
	assert_int_equal(fileinfo_query_raw("room=a&xname=b&name=c%20d", "name",
	                     &v, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(v, "c%20d", 5);
	assert_int_equal(fileinfo_query_raw("room=a", "name", &v, &n), -1);
	assert_int_equal(fileinfo_query_raw("name=", "name", &v, &n), 0);
	assert_int_equal(n, 0);
}

static void
test_fileinfo_type_normalizes_or_defaults(void **state)
{
	char out[FILE_TYPE_MAX + 1];

	(void)state;
	fileinfo_type("Image/PNG", out);
	assert_string_equal(out, "image/png");
	fileinfo_type("text/plain; charset=UTF-8", out);
	assert_string_equal(out, "text/plain; charset=UTF-8");
	fileinfo_type(NULL, out);
	assert_string_equal(out, FILE_TYPE_DEFAULT);
	fileinfo_type("nonsense", out);
	assert_string_equal(out, FILE_TYPE_DEFAULT);
	fileinfo_type("/png", out);
	assert_string_equal(out, FILE_TYPE_DEFAULT);
	fileinfo_type("text/", out);
	assert_string_equal(out, FILE_TYPE_DEFAULT);
	fileinfo_type("text/html\"x", out);
	assert_string_equal(out, FILE_TYPE_DEFAULT);
	fileinfo_type("text/plain; x=\x80", out);
	assert_string_equal(out, FILE_TYPE_DEFAULT);
}

static void
test_fileinfo_inline_only_for_four_image_types(void **state)
{
	(void)state;
	assert_true(fileinfo_inline("image/png"));
	assert_true(fileinfo_inline("image/jpeg"));
	assert_true(fileinfo_inline("image/gif"));
	assert_true(fileinfo_inline("image/webp; q=1"));
	assert_false(fileinfo_inline("image/svg+xml"));
	assert_false(fileinfo_inline("image/pngx"));
	assert_false(fileinfo_inline("text/html"));
	assert_false(fileinfo_inline("image/jp"));
}

static void
test_fileinfo_disposition_quotes_and_encodes(void **state)
{
	char out[FILE_DISPOSITION_MAX];

	(void)state;
	fileinfo_disposition("a.png", 1, out);
	assert_string_equal(out,
	    "inline; filename=\"a.png\"; filename*=UTF-8''a.png");
	fileinfo_disposition("say \"hi\"; 100%\xe6\x97\xa5", 0, out);
	assert_string_equal(out,
	    "attachment; filename=\"say _hi_; 100____\"; "
	    "filename*=UTF-8''say%20%22hi%22%3B%20100%25%E6%97%A5");
}

/* fileinfo_range's result and range for one header. */
static void
range_is(const char *h, uint64_t size, int want, uint64_t off, uint64_t len)
{
	uint64_t o = 77, l = 77;

	assert_int_equal(fileinfo_range(h, size, &o, &l), want);
	if (want == FILE_RANGE_PARTIAL) {
		assert_int_equal(o, off);
		assert_int_equal(l, len);
	}
}

static void
test_fileinfo_range_single_ranges(void **state)
{
	(void)state;
	range_is(NULL, 100, FILE_RANGE_NONE, 0, 0);
	range_is("bytes=0-9", 100, FILE_RANGE_PARTIAL, 0, 10);
	range_is("bytes=90-", 100, FILE_RANGE_PARTIAL, 90, 10);
	range_is("bytes=-5", 100, FILE_RANGE_PARTIAL, 95, 5);
	range_is("bytes=-500", 100, FILE_RANGE_PARTIAL, 0, 100);
	range_is("bytes=50-5000", 100, FILE_RANGE_PARTIAL, 50, 50);
	range_is("bytes=99-99", 100, FILE_RANGE_PARTIAL, 99, 1);
	range_is("bytes=100-", 100, FILE_RANGE_UNSATISFIABLE, 0, 0);
	range_is("bytes=-0", 100, FILE_RANGE_UNSATISFIABLE, 0, 0);
	range_is("bytes=0-0", 0, FILE_RANGE_UNSATISFIABLE, 0, 0);
	range_is("bytes=-1", 0, FILE_RANGE_UNSATISFIABLE, 0, 0);
	/* Ignored: the whole file. */
	range_is("bytes=0-1,3-4", 100, FILE_RANGE_NONE, 0, 0);
	range_is("items=0-1", 100, FILE_RANGE_NONE, 0, 0);
	range_is("bytes=5-1", 100, FILE_RANGE_NONE, 0, 0);
	range_is("bytes=-", 100, FILE_RANGE_NONE, 0, 0);
	range_is("bytes=a-b", 100, FILE_RANGE_NONE, 0, 0);
	range_is("bytes=99999999999999999999999-", 100, FILE_RANGE_NONE, 0, 0);
	range_is("bytes=1-2x", 100, FILE_RANGE_NONE, 0, 0);
}

/* Counts the entries of dir whose names start with prefix. */
static int
count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	if (d != NULL)
		closedir(d);
	return n;
}

static void
test_blob_upload_hashes_commits_and_dedups(void **state)
{
	char dir[64] = "/tmp/chatd-test-blob-XXXXXX", sub[96], err[128];
	struct blob_store bs;
	struct blob_upload u, v;
	uint64_t size = 0;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof sub, "%s/a/b", dir);
	/* A crash's leftover temporary file is removed at open. */
	assert_int_equal(blob_store_open(&bs, sub, 0, err, sizeof err), 0);
	fd = openat(bs.dirfd, ".tmp-left", O_CREAT | O_WRONLY, 0600);
	close(fd);
	blob_store_close(&bs);
	assert_int_equal(blob_store_open(&bs, sub, 0, err, sizeof err), 0);
	assert_int_equal(count_prefix(sub, ".tmp-"), 0);
	assert_int_equal(blob_upload_start(&bs, &u), 0);
	assert_int_equal(count_prefix(sub, ".tmp-"), 1);
	assert_int_equal(blob_upload_write(&u, "ab", 2), 0);
	assert_int_equal(blob_upload_write(&u, "c", 1), 0);
	blob_upload_finish(&u);
	assert_string_equal(u.hash, "ba7816bf8f01cfea414140de5dae2223"
	                            "b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(blob_upload_commit(&bs, &u), 0);
	assert_int_equal(count_prefix(sub, ".tmp-"), 0);
	/* The same bytes again: one file. */
	assert_int_equal(blob_upload_start(&bs, &v), 0);
	assert_int_equal(blob_upload_write(&v, "abc", 3), 0);
	blob_upload_finish(&v);
	assert_int_equal(blob_upload_commit(&bs, &v), 0);
	assert_int_equal(count_prefix(sub, "ba78"), 1);
	fd = blob_open(&bs, u.hash, &size);
	assert_true(fd >= 0);
	assert_int_equal(size, 3);
	close(fd);
	/* Only hash names open: no traversal. */
	assert_int_equal(blob_open(&bs, "../../etc/passwd", &size), -1);
	assert_int_equal(blob_remove(&bs, "../x"), -1);
	/* An abandoned upload leaves nothing. */
	assert_int_equal(blob_upload_start(&bs, &v), 0);
	assert_int_equal(blob_upload_write(&v, "zz", 2), 0);
	blob_upload_abort(&bs, &v);
	blob_upload_abort(&bs, &v);
	assert_int_equal(count_prefix(sub, ".tmp-"), 0);
	assert_int_equal(blob_remove(&bs, u.hash), 0);
	assert_int_equal(blob_remove(&bs, u.hash), 0); /* ENOENT is done */
	blob_store_close(&bs);
	rmdir(sub);
	snprintf(sub, sizeof sub, "%s/a", dir);
	rmdir(sub);
	rmdir(dir);
}

/* Sets the modification time of name in dir to age_s seconds ago. */
static void
age(int dirfd, const char *name, time_t age_s)
{
	struct timespec t[2];

	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= age_s;
	t[1] = t[0];
	assert_int_equal(utimensat(dirfd, name, t, 0), 0);
}

static void
test_blob_shared_store_leaves_what_may_be_another_process_upload(void **state)
{
	char dir[64] = "/tmp/chatd-test-blob-XXXXXX", err[128];
	struct blob_store bs;
	struct blob_upload u;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(blob_store_open(&bs, dir, 60000, err, sizeof err), 0);
	/* Two temporary files: one being written now, one of a crash. */
	fd = openat(bs.dirfd, ".tmp-live", O_CREAT | O_WRONLY, 0600);
	close(fd);
	fd = openat(bs.dirfd, ".tmp-dead", O_CREAT | O_WRONLY, 0600);
	close(fd);
	age(bs.dirfd, ".tmp-dead", 120);
	assert_int_equal(blob_upload_start(&bs, &u), 0);
	assert_int_equal(blob_upload_write(&u, "abc", 3), 0);
	blob_upload_finish(&u);
	assert_int_equal(blob_upload_commit(&bs, &u), 0);
	blob_store_close(&bs);
	/* Another node starts: only the crash's leftover goes. */
	assert_int_equal(blob_store_open(&bs, dir, 60000, err, sizeof err), 0);
	assert_int_equal(count_prefix(dir, ".tmp-live"), 1);
	assert_int_equal(count_prefix(dir, ".tmp-dead"), 0);
	/* Fresh bytes no row names yet are kept; old ones go. */
	assert_int_equal(blob_remove(&bs, u.hash), 1);
	assert_int_equal(count_prefix(dir, "ba78"), 1);
	age(bs.dirfd, u.hash, 120);
	assert_int_equal(blob_remove(&bs, u.hash), 0);
	assert_int_equal(count_prefix(dir, "ba78"), 0);
	assert_int_equal(unlinkat(bs.dirfd, ".tmp-live", 0), 0);
	blob_store_close(&bs);
	assert_int_equal(rmdir(dir), 0);
}

/* blob_cb that counts the hashes it sees. */
static void
count_hashes(void *arg, const char *hash, uint64_t size, int64_t mtime_ms)
{
	(void)hash;
	(void)mtime_ms;
	assert_int_equal(size, 1);
	(*(int *)arg)++;
}

static void
test_blob_scan_steps_see_every_hash_once(void **state)
{
	char dir[64] = "/tmp/chatd-test-blob-XXXXXX", err[128], cmd[96];
	struct blob_store bs;
	struct blob_upload u;
	struct blob_scan *sc;
	int seen = 0, steps = 0, rc;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(blob_store_open(&bs, dir, 0, err, sizeof err), 0);
	for (char c = 'a'; c < 'a' + 5; c++) {
		assert_int_equal(blob_upload_start(&bs, &u), 0);
		assert_int_equal(blob_upload_write(&u, &c, 1), 0);
		blob_upload_finish(&u);
		assert_int_equal(blob_upload_commit(&bs, &u), 0);
	}
	/* A temporary file is not a stored hash. */
	assert_int_equal(blob_upload_start(&bs, &u), 0);
	assert_non_null(sc = blob_scan_open(&bs));
	while ((rc = blob_scan_step(sc, 2, count_hashes, &seen)) == 1)
		steps++;
	assert_int_equal(rc, 0);
	blob_scan_close(sc);
	assert_int_equal(seen, 5);
	assert_true(steps >= 2); /* 2 + 2 + 1: at most 2 a step */
	seen = 0;
	assert_int_equal(blob_scan(&bs, count_hashes, &seen), 0);
	assert_int_equal(seen, 5);
	blob_scan_close(NULL);
	blob_upload_abort(&bs, &u);
	blob_store_close(&bs);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_blob_dir_writable_checks_dir_or_parent(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(blob_dir_writable("/tmp", err, sizeof err), 0);
	assert_int_equal(blob_dir_writable("/tmp/no/such/dir", err,
	                     sizeof err), 0);
	assert_int_equal(blob_dir_writable("/etc/hostname", err, sizeof err),
	                 -1);
	if (getuid() != 0)
		assert_int_equal(blob_dir_writable("/proc/x", err, sizeof err),
		                 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
	        test_blob_shared_store_leaves_what_may_be_another_process_upload),
	    cmocka_unit_test(test_fileinfo_name_decodes_percent_and_keeps_plus),
	    cmocka_unit_test(
	        test_fileinfo_name_refuses_separators_controls_and_bad_utf8),
	    cmocka_unit_test(test_fileinfo_name_takes_255_bytes_not_256),
	    cmocka_unit_test(test_fileinfo_query_raw_finds_exact_names),
	    cmocka_unit_test(test_fileinfo_type_normalizes_or_defaults),
	    cmocka_unit_test(test_fileinfo_inline_only_for_four_image_types),
	    cmocka_unit_test(test_fileinfo_disposition_quotes_and_encodes),
	    cmocka_unit_test(test_fileinfo_range_single_ranges),
	    cmocka_unit_test(test_blob_upload_hashes_commits_and_dedups),
	    cmocka_unit_test(test_blob_scan_steps_see_every_hash_once),
	    cmocka_unit_test(test_blob_dir_writable_checks_dir_or_parent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
