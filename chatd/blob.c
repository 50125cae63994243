/* chatd/blob.c — file bytes on disk, named by their SHA-256 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "chatd/blob.h"
#include "chatd/log.h"
#include "chatd/xmalloc.h"

#define BLOB_TMP_PREFIX ".tmp-"

/* mkdir -p of dir (0700 for what it creates). 0 or -1 (errno). */
static int
blob_mkdirs(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* 1 if name in bs was modified less than bs->shared_ms ago (another
 * process may still be writing or committing it), else 0. */
static int
blob_fresh(struct blob_store *bs, const char *name)
{
	struct stat st;
	struct timespec now;
	int64_t age_ms;

	if (bs->shared_ms <= 0 || fstatat(bs->dirfd, name, &st, 0) != 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	age_ms = ((int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec) * 1000 +
	    ((int64_t)now.tv_nsec - (int64_t)st.st_mtim.tv_nsec) / 1000000;
	return age_ms < bs->shared_ms;
}

/* Removes the temporary files of uploads a crash cut short (shared: only
 * old ones, another process's upload may be running). */
static void
blob_remove_temps(struct blob_store *bs)
{
	int fd = dup(bs->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, BLOB_TMP_PREFIX,
		            strlen(BLOB_TMP_PREFIX)) == 0 &&
		    !blob_fresh(bs, e->d_name) &&
		    unlinkat(bs->dirfd, e->d_name, 0) == 0)
			log_info("%s: removed %s/%s, left by an interrupted "
			         "upload",
			         __func__, bs->dir, e->d_name);
	closedir(d);
}

int
blob_store_open(struct blob_store *bs, const char *dir, int64_t shared_ms,
                char *err, size_t errlen)
{
	bs->dirfd = -1;
	bs->shared_ms = shared_ms;
	snprintf(bs->dir, sizeof bs->dir, "%s", dir);
	if (blob_mkdirs(dir) != 0 ||
	    (bs->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	blob_remove_temps(bs);
	return 0;
}

void
blob_store_close(struct blob_store *bs)
{
	if (bs->dirfd >= 0)
		close(bs->dirfd);
	bs->dirfd = -1;
}

int
blob_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == BLOB_HEX;
}

int
blob_upload_start(struct blob_store *bs, struct blob_upload *u)
{
	unsigned char r[8];

	memset(u, 0, sizeof *u);
	u->fd = -1;
	if (RAND_bytes(r, sizeof r) != 1) {
		errno = EIO;
		return -1;
	}
	snprintf(u->tmp, sizeof u->tmp,
	         BLOB_TMP_PREFIX "%02x%02x%02x%02x"
	                         "%02x%02x%02x%02x",
	         r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	u->fd = openat(bs->dirfd, u->tmp,
	               O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (u->fd < 0)
		return -1;
	u->md = EVP_MD_CTX_new();
	if (u->md == NULL ||
	    EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
		blob_upload_abort(bs, u);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
blob_upload_write(struct blob_upload *u, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	EVP_DigestUpdate(u->md, data, len);
	u->size += len;
	while (len > 0) {
		n = write(u->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
blob_upload_finish(struct blob_upload *u)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(u->md, d, &n);
	EVP_MD_CTX_free(u->md);
	u->md = NULL;
	for (unsigned int i = 0; i < 32 && i < n; i++) {
		u->hash[2 * i] = hex[d[i] >> 4];
		u->hash[2 * i + 1] = hex[d[i] & 15];
	}
	u->hash[BLOB_HEX] = '\0';
}

int
blob_upload_commit(struct blob_store *bs, struct blob_upload *u)
{
	int err = 0;

	if (fsync(u->fd) != 0)
		err = errno;
	if (close(u->fd) != 0 && err == 0)
		err = errno;
	u->fd = -1;
	if (err == 0 && renameat(bs->dirfd, u->tmp, bs->dirfd, u->hash) != 0)
		err = errno;
	if (err == 0) {
		u->tmp[0] = '\0';
		if (fsync(bs->dirfd) != 0)
			err = errno;
	}
	if (err != 0) {
		blob_upload_abort(bs, u);
		errno = err;
		return -1;
	}
	return 0;
}

void
blob_upload_abort(struct blob_store *bs, struct blob_upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	if (u->tmp[0] != '\0')
		unlinkat(bs->dirfd, u->tmp, 0);
	u->tmp[0] = '\0';
	if (u->md != NULL)
		EVP_MD_CTX_free(u->md);
	u->md = NULL;
}

int
blob_open(struct blob_store *bs, const char *hash, uint64_t *size)
{
	struct stat st;
	int fd;

	if (!blob_name_ok(hash)) {
		errno = EINVAL;
		return -1;
	}
	fd = openat(bs->dirfd, hash, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

int
blob_remove(struct blob_store *bs, const char *hash)
{
	if (!blob_name_ok(hash)) {
		errno = EINVAL;
		return -1;
	}
	if (blob_fresh(bs, hash))
		return 1;
	if (unlinkat(bs->dirfd, hash, 0) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

struct blob_scan {
	struct blob_store *bs;
	DIR *d;
};

struct blob_scan *
blob_scan_open(struct blob_store *bs)
{
	int fd = dup(bs->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct blob_scan *s;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	rewinddir(d);
	s = xmalloc(sizeof *s);
	s->bs = bs;
	s->d = d;
	return s;
}

int
blob_scan_step(struct blob_scan *s, size_t max, blob_cb cb, void *arg)
{
	struct dirent *e;
	struct stat st;
	size_t n = 0;

	while (n < max) {
		errno = 0;
		if ((e = readdir(s->d)) == NULL)
			return errno != 0 ? -1 : 0;
		if (!blob_name_ok(e->d_name) ||
		    fstatat(s->bs->dirfd, e->d_name, &st,
		            AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		cb(arg, e->d_name, (uint64_t)st.st_size,
		   (int64_t)st.st_mtim.tv_sec * 1000 +
		       st.st_mtim.tv_nsec / 1000000);
		n++;
	}
	return 1;
}

void
blob_scan_close(struct blob_scan *s)
{
	if (s == NULL)
		return;
	closedir(s->d);
	free(s);
}

int
blob_scan(struct blob_store *bs, blob_cb cb, void *arg)
{
	struct blob_scan *s = blob_scan_open(bs);
	int rc;

	if (s == NULL)
		return -1;
	rc = blob_scan_step(s, SIZE_MAX, cb, arg);
	blob_scan_close(s);
	return rc < 0 ? -1 : 0;
}

int
blob_dir_writable(const char *dir, char *err, size_t errlen)
{
	char buf[4096];
	struct stat st;

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "not a directory");
			return -1;
		}
		if (access(dir, W_OK | X_OK) != 0) {
			snprintf(err, errlen, "%s", strerror(errno));
			return -1;
		}
		return 0;
	}
	/* Created at start: the nearest existing parent must allow it. */
	snprintf(buf, sizeof buf, "%s", dir);
	for (;;) {
		char *parent = dirname(buf);

		if (stat(parent, &st) == 0) {
			if (!S_ISDIR(st.st_mode) ||
			    access(parent, W_OK | X_OK) != 0) {
				snprintf(err, errlen,
				         "does not exist and %s "
				         "is not a writable directory",
				         parent);
				return -1;
			}
			return 0;
		}
		if (strcmp(parent, "/") == 0 || strcmp(parent, ".") == 0) {
			snprintf(err, errlen, "no existing parent directory");
			return -1;
		}
		memmove(buf, parent, strlen(parent) + 1);
	}
}
