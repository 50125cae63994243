/* chatd/admin_files.c — files in backup, restore, export and import */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "chatd/admin_files.h"
#include "chatd/blob.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

/* Copies the file from (in dir src) to to (in dir dst), fsynced. 0 or
 * -1 (errno). */
static int
admin_files_copy(int src, int dst, const char *name)
{
	char buf[65536], tmp[BLOB_HEX + 8];
	int in = openat(src, name, O_RDONLY | O_CLOEXEC), out, err = 0;
	ssize_t n;

	if (in < 0)
		return -1;
	snprintf(tmp, sizeof tmp, ".tmp-%.16s", name);
	out = openat(dst, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		err = errno;
		close(in);
		errno = err;
		return -1;
	}
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n) {
			err = errno ? errno : ENOSPC;
			break;
		}
	if (n < 0)
		err = errno;
	if (err == 0 && fsync(out) != 0)
		err = errno;
	close(in);
	if (close(out) != 0 && err == 0)
		err = errno;
	if (err == 0 && renameat(dst, tmp, dst, name) != 0)
		err = errno;
	if (err != 0) {
		unlinkat(dst, tmp, 0);
		errno = err;
		return -1;
	}
	return 0;
}

/* Puts name from src into dst: already there, a hard link, or a copy.
 * 0 or -1 (errno). */
static int
admin_files_put(int src, int dst, const char *name)
{
	if (faccessat(dst, name, F_OK, 0) == 0)
		return 0;
	if (linkat(src, name, dst, name, 0) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	return admin_files_copy(src, dst, name);
}

/* The files of one copy: directory descriptors and counts. */
struct admin_files_job {
	int src, dst;
	const char *what;
	unsigned n, failed;
};

/* file_cb: one file's bytes. */
static int
admin_files_put_cb(void *arg, const struct file_row *f)
{
	struct admin_files_job *j = arg;

	if (admin_files_put(j->src, j->dst, f->hash) != 0) {
		fprintf(stderr, "chatd: %s: file %s (%s): %s\n", j->what, f->id,
		        f->hash, strerror(errno));
		j->failed++;
	} else {
		j->n++;
	}
	return 0;
}

/* Opens (making it if needed) a directory. fd or -1 after printing. */
static int
admin_files_dir(const char *dir, int create, const char *what)
{
	int fd;

	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "chatd: %s: %s: %s\n", what, dir,
		        strerror(errno));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "chatd: %s: %s: %s\n", what, dir,
		        strerror(errno));
	return fd;
}

/* Copies the files a database names from the directory src to dst. */
static int
admin_files_sync(const char *db_path, const char *src, const char *dst,
                 const char *what)
{
	struct admin_files_job j = {.what = what};
	char err[512];
	struct db *db;
	int rc = -1;

	if (db_open(&db, db_path, err, sizeof err) != 0) {
		fprintf(stderr, "chatd: %s: %s\n", what, err);
		return -1;
	}
	j.src = admin_files_dir(src, 1, what);
	j.dst = j.src < 0 ? -1 : admin_files_dir(dst, 1, what);
	if (j.src >= 0 && j.dst >= 0 &&
	    file_list_all(db, admin_files_put_cb, &j) == 0 && j.failed == 0 &&
	    fsync(j.dst) == 0)
		rc = 0;
	if (rc == 0)
		log_info("%s: %u files' bytes in %s", what, j.n, dst);
	else if (j.failed == 0)
		fprintf(stderr,
		        "chatd: %s: the files could not be listed or "
		        "synced\n",
		        what);
	if (j.src >= 0)
		close(j.src);
	if (j.dst >= 0)
		close(j.dst);
	db_close(db);
	return rc;
}

int
admin_files_backup(struct config *cfg, const char *backup)
{
	char dst[4200];

	snprintf(dst, sizeof dst, "%s.files", backup);
	return admin_files_sync(backup, cfg->files_dir, dst, "backup");
}

int
admin_files_restore(struct config *cfg, const char *backup)
{
	char src[4200];
	struct stat st;

	snprintf(src, sizeof src, "%s.files", backup);
	if (stat(src, &st) != 0) {
		/* A backup made before files existed, or without any. */
		log_info("restore: no %s: no files to bring back", src);
		return 0;
	}
	return admin_files_sync(cfg->db_path, src, cfg->files_dir, "restore");
}

/* What admin_files_line needs. */
struct admin_files_export {
	int dir;
	FILE *out;
	int failed;
};

/* file_cb: one "file" line. */
static int
admin_files_line(void *arg, const struct file_row *f)
{
	struct admin_files_export *x = arg;
	unsigned char *bytes = NULL, *b64 = NULL;
	uint64_t size = 0;
	int fd = openat(x->dir, f->hash, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;
	json_t *o;

	if (fd >= 0) {
		struct stat st;

		if (fstat(fd, &st) == 0 && (int64_t)st.st_size == f->size &&
		    st.st_size < (1LL << 30)) {
			size = (uint64_t)st.st_size;
			bytes = xmalloc(size + 1);
			n = read(fd, bytes, size);
		}
		close(fd);
	}
	if (n < 0 || (uint64_t)n != size) {
		fprintf(stderr, "chatd: export: file %s: bytes %s missing\n",
		        f->id, f->hash);
		free(bytes);
		x->failed = 1;
		return 1;
	}
	b64 = xmalloc((size + 2) / 3 * 4 + 1);
	EVP_EncodeBlock(b64, bytes, (int)size);
	o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:I,s:I,s:s}", "type",
	              "file", "id", f->id, "room", f->room, "user", f->username,
	              "message", (json_int_t)f->message_id, "pos",
	              (json_int_t)f->pos, "name", f->name, "content_type",
	              f->type, "size", (json_int_t)f->size, "created_at",
	              (json_int_t)f->created_at, "data", (const char *)b64);
	if (o == NULL || json_dumpf(o, x->out, JSON_COMPACT) != 0 ||
	    fputc('\n', x->out) == EOF)
		x->failed = 1;
	json_decref(o);
	free(bytes);
	free(b64);
	return x->failed;
}

int
admin_files_export(struct config *cfg, struct db *db, FILE *out,
                   int64_t room_id, int64_t since, int64_t until)
{
	struct admin_files_export x = {.out = out};
	struct stat st;

	if (stat(cfg->files_dir, &st) != 0) {
		/* No files directory: no file was ever uploaded here. */
		x.dir = -1;
	} else if ((x.dir = admin_files_dir(cfg->files_dir, 0, "export")) < 0) {
		return -1;
	}
	if (file_list_export(db, room_id, since, until, admin_files_line, &x) !=
	        0 &&
	    !x.failed) {
		fprintf(stderr, "chatd: export: database error\n");
		x.failed = 1;
	}
	if (x.dir >= 0)
		close(x.dir);
	return x.failed ? -1 : 0;
}

int
admin_files_import_bytes(void *arg, const unsigned char *data, size_t len,
                         char hash[65])
{
	struct config *cfg = arg;
	static struct blob_store bs;
	static int open;
	struct blob_upload u;
	char err[256];

	if (!open) {
		if (blob_store_open(&bs, cfg->files_dir, 0, err, sizeof err) !=
		    0) {
			fprintf(stderr, "chatd: import: --files %s: %s\n",
			        cfg->files_dir, err);
			return -1;
		}
		open = 1;
	}
	if (blob_upload_start(&bs, &u) != 0 ||
	    blob_upload_write(&u, data, len) != 0) {
		fprintf(stderr, "chatd: import: %s: %s\n", cfg->files_dir,
		        strerror(errno));
		blob_upload_abort(&bs, &u);
		return -1;
	}
	blob_upload_finish(&u);
	if (blob_upload_commit(&bs, &u) != 0) {
		fprintf(stderr, "chatd: import: %s: %s\n", cfg->files_dir,
		        strerror(errno));
		return -1;
	}
	memcpy(hash, u.hash, BLOB_HEX + 1);
	return 0;
}
