/* chatd/blob.h — file bytes on disk, named by their SHA-256 */
#ifndef CHATD_BLOB_H
#define CHATD_BLOB_H

/*
 * A directory of files named by the lower-case hex SHA-256 of their
 * bytes (identical bytes are stored once). An upload is written to a
 * temporary ".tmp-*" name in the same directory, hashed as it goes,
 * fsynced, renamed to its hash and the directory fsynced: a crash leaves
 * either the whole file or a temporary one, which blob_store_open
 * removes. blob_upload_commit may run on another thread; the rest runs
 * on the caller's.
 */

#include <stddef.h>
#include <stdint.h>

#define BLOB_HEX 64 /* hex characters of a hash */

struct blob_store {
	char dir[4096];
	int dirfd;
	/* 0: this process alone uses dir. Else several do (the nodes of a
	 * cluster): a temporary file or stored bytes younger than this many
	 * ms may be another process's upload in progress, and are left. */
	int64_t shared_ms;
};

struct blob_upload {
	int fd;       /* -1 when closed */
	char tmp[32]; /* its temporary name in the directory */
	void *md;     /* the running SHA-256 (EVP_MD_CTX) */
	uint64_t size;
	char hash[BLOB_HEX + 1]; /* after blob_upload_finish */
};

/* Creates dir if missing (mode 0700) and opens it; removes temporary
 * files left by a crash (shared_ms > 0: only those older than that, see
 * struct blob_store). 0, or -1 with a reason in err. */
int blob_store_open(struct blob_store *bs, const char *dir,
                    int64_t shared_ms, char *err, size_t errlen);
void blob_store_close(struct blob_store *bs);
/* 1 if s is BLOB_HEX lower-case hex digits (a stored name), else 0. */
int blob_name_ok(const char *s);

/* Starts an upload: a new temporary file. 0, or -1 (errno set). */
int blob_upload_start(struct blob_store *bs, struct blob_upload *u);
/* Appends and hashes len bytes. 0, or -1 with errno (ENOSPC: disk
 * full). */
int blob_upload_write(struct blob_upload *u, const void *data, size_t len);
/* Ends the hash (u->hash). */
void blob_upload_finish(struct blob_upload *u);
/* Makes the upload durable under its hash: fsync, rename (over identical
 * bytes, if already there), fsync of the directory. Safe on a worker
 * thread. 0, or -1 with errno; the temporary file is gone either way. */
int blob_upload_commit(struct blob_store *bs, struct blob_upload *u);
/* Drops an upload: closes and removes its temporary file. Idempotent. */
void blob_upload_abort(struct blob_store *bs, struct blob_upload *u);

/* Opens the bytes of hash for reading; their size in *size. fd, or -1. */
int blob_open(struct blob_store *bs, const char *hash, uint64_t *size);
/* Removes the bytes of hash. 0, 1 if kept because they are younger than
 * bs->shared_ms (another process may be storing them), or -1 (errno;
 * ENOENT counts as done). */
int blob_remove(struct blob_store *bs, const char *hash);
/* Calls cb for every stored hash (not temporaries) with its size and
 * modification time (ms). 0 or -1. */
typedef void (*blob_cb)(void *arg, const char *hash, uint64_t size,
                        int64_t mtime_ms);
int blob_scan(struct blob_store *bs, blob_cb cb, void *arg);
/* The same walk in steps, so that a large store is not read in one go:
 * blob_scan_open (NULL on error), blob_scan_step calls cb for at most max
 * more hashes and returns 1 while more may follow, 0 at the end, -1 on
 * an error; blob_scan_close ends it (NULL is a no-op). */
struct blob_scan;
struct blob_scan *blob_scan_open(struct blob_store *bs);
int blob_scan_step(struct blob_scan *s, size_t max, blob_cb cb, void *arg);
void blob_scan_close(struct blob_scan *s);
/* 0 if a file can be created in dir (check-config), else -1 with a
 * reason in err. dir need not exist if its parent is writable. */
int blob_dir_writable(const char *dir, char *err, size_t errlen);

#endif
