/* chatd/admin_db.c — backup, restore, export, import; the serving lock */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatd/admin.h"
#include "chatd/admin_db.h"
#include "chatd/admin_files.h"
#include "chatd/auth.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "storage/jsonl.h"
#include "storage/storage.h"

_Static_assert(AUTH_HASH_TOO_COSTLY == JSONL_HASH_TOO_COSTLY,
               "import tells a costly hash from a malformed one");

/* 1 if st is the file of db_path or of its -wal, -shm or -journal
 * (compared by device and inode: a symlink or hard link to it is it). */
static int
admin_db_is_live(const char *db_path, const struct stat *st)
{
	static const char *suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[4200];
	struct stat live;

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", db_path, suffix[i]);
		if (stat(p, &live) == 0 && live.st_dev == st->st_dev &&
		    live.st_ino == st->st_ino)
			return 1;
	}
	return 0;
}

/* 1 (after printing why) if path, when it exists, is the live database
 * of --db or one of its journal files: what cmd must never write over,
 * or read as a copy of it. */
static int
admin_db_refuse_live(struct config *cfg, const char *cmd, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0 || !admin_db_is_live(cfg->db_path, &st))
		return 0;
	fprintf(stderr,
	        "chatd: %s: %s is the database of --db %s (or one of "
	        "its journal files)\n",
	        cmd, path, cfg->db_path);
	return 1;
}

/* 1 (after printing why) if the standard stream fd is the live
 * database of --db or one of its journal files. */
static int
admin_db_refuse_live_fd(struct config *cfg, const char *cmd, int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !admin_db_is_live(cfg->db_path, &st))
		return 0;
	fprintf(stderr,
	        "chatd: %s: standard %s is the database of --db %s "
	        "(or one of its journal files)\n",
	        cmd, fd == STDIN_FILENO ? "input" : "output", cfg->db_path);
	return 1;
}

/* chatd backup FILE: a consistent copy of the live database. */
int
admin_db_backup(struct config *cfg, int argc, char **argv)
{
	char err[512], tmp[4200];
	struct db *db;
	int64_t t0 = now_ms();
	int rc;

	if (argc != 1) {
		config_usage(stderr);
		return 2;
	}
	if (db_url_is_pg(cfg->db_path)) {
		fprintf(stderr, "chatd: backup: a PostgreSQL database is backed "
		                "up with pg_dump (docs/cluster.md)\n");
		return 1;
	}
	/* The copy is renamed over FILE: never over the database itself
	 * (nor is FILE.tmp, which it writes first). */
	snprintf(tmp, sizeof tmp, "%s.tmp", argv[0]);
	if (admin_db_refuse_live(cfg, "backup", argv[0]) ||
	    admin_db_refuse_live(cfg, "backup", tmp))
		return 1;
	if ((db = admin_open(cfg, 1)) == NULL)
		return 1;
	rc = db_backup(db, argv[0], err, sizeof err);
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "chatd: backup: %s\n", err);
		return 1;
	}
	/* The files the backup names, beside it (docs/files.md). */
	if (admin_files_backup(cfg, argv[0]) != 0)
		return 1;
	log_info("backup of %s written to %s in %lld ms", cfg->db_path,
	    argv[0], (long long)(now_ms() - t0));
	return 0;
}

/* The serving lock: flock, independent of SQLite's own POSIX locks. */
int
admin_db_lock(const char *path, int exclusive)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return -1;
	if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
		int busy = errno == EWOULDBLOCK;

		close(fd);
		return busy ? -2 : -1;
	}
	return fd;
}

/* Removes path if it exists. 0 or -1 after printing why. */
static int
admin_db_remove(const char *path)
{
	if (unlink(path) != 0 && errno != ENOENT) {
		fprintf(stderr, "chatd: restore: cannot remove %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Removes path and its -wal, -shm and -journal, left by an interrupted
 * run (SQLite would replay them onto a new file of that name). */
static int
admin_db_remove_stale(const char *path)
{
	static const char *suffix[] = {"-wal", "-shm", "-journal"};
	char p[4200];

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffix[i]);
		if (admin_db_remove(p) != 0)
			return -1;
	}
	return admin_db_remove(path);
}

/* Copies the backup to tmp and gives it a new epoch; its epoch in out. */
static int
admin_db_restore_prepare(const char *backup, const char *tmp, char *epoch)
{
	char err[512];
	struct db *db;

	if (db_copy_file(backup, tmp, err, sizeof err) != 0) {
		fprintf(stderr, "chatd: restore: %s\n", err);
		return -1;
	}
	if (db_open(&db, tmp, err, sizeof err) != 0) {
		fprintf(stderr, "chatd: restore: %s\n", err);
		return -1;
	}
	if (db_new_epoch(db) != 0) {
		fprintf(stderr, "chatd: restore: cannot set a new epoch\n");
		db_close(db);
		return -1;
	}
	snprintf(epoch, EPOCH_LEN + 1, "%s", db_epoch(db));
	db_close(db);
	return 0;
}

/* chatd restore FILE: puts a backup in place of --db, chatd stopped. */
int
admin_db_restore(struct config *cfg, int argc, char **argv)
{
	char tmp[4096], wal[4096], shm[4096], epoch[EPOCH_LEN + 1];
	int lock = -1, rc = 1;

	if (argc != 1) {
		config_usage(stderr);
		return 2;
	}
	if (db_url_is_pg(cfg->db_path)) {
		fprintf(stderr, "chatd: restore: a PostgreSQL database is "
		                "restored with pg_restore (docs/cluster.md)\n");
		return 1;
	}
	/* Its WAL would be deleted under the copy of its main file. */
	if (admin_db_refuse_live(cfg, "restore", argv[0]))
		return 1;
	snprintf(tmp, sizeof tmp, "%s.restore", cfg->db_path);
	snprintf(wal, sizeof wal, "%s-wal", cfg->db_path);
	snprintf(shm, sizeof shm, "%s-shm", cfg->db_path);
	if (access(cfg->db_path, F_OK) == 0 &&
	    (lock = admin_db_lock(cfg->db_path, 1)) < 0) {
		fprintf(stderr, "chatd: restore: %s\n", lock == -2 ?
		    "chatd is serving this database: stop it first" :
		    strerror(errno));
		return 1;
	}
	if (admin_db_remove_stale(tmp) != 0 || admin_db_restore_prepare(argv[0], tmp, epoch) != 0)
		goto out;
	/* The target's old WAL must not be replayed onto the backup. */
	if (admin_db_remove(wal) != 0 || admin_db_remove(shm) != 0)
		goto out;
	if (rename(tmp, cfg->db_path) != 0) {
		fprintf(stderr, "chatd: restore: cannot rename %s: %s\n", tmp,
		    strerror(errno));
		goto out;
	}
	if (admin_files_restore(cfg, argv[0]) != 0)
		goto out;
	log_info("restored %s into %s; new epoch %s", argv[0], cfg->db_path,
	    epoch);
	rc = 0;
out:
	if (rc != 0)
		unlink(tmp);
	if (lock >= 0)
		close(lock);
	return rc;
}

/* chatd export [--room R] [--since SEQ] [--until TS]: JSON Lines. */
int
admin_db_export(struct config *cfg, int argc, char **argv)
{
	char name[ROOMNAME_MAX + 8];
	struct db *db;
	struct room r = {0};
	int rc = 1;

	(void)argv;
	if (argc != 0) {
		config_usage(stderr);
		return 2;
	}
	if (admin_db_refuse_live_fd(cfg, "export", STDOUT_FILENO))
		return 1;
	if (cfg->export_room != NULL) {
		snprintf(name, sizeof name, "%s", cfg->export_room);
		if (strlen(cfg->export_room) > ROOMNAME_MAX ||
		    auth_room_fold(name) < 0) {
			fprintf(stderr, "chatd: invalid room name '%s'\n",
			    cfg->export_room);
			return 1;
		}
	}
	if ((db = admin_open(cfg, 1)) == NULL)
		return 1;
	/* One read transaction: the export is one consistent snapshot. */
	if (db_begin_read(db) != 0)
		goto out;
	if (cfg->export_room != NULL && room_by_name(db, name, &r) != 0) {
		fprintf(stderr, "chatd: no room %s\n", name);
		goto out;
	}
	if (jsonl_export(db, stdout, r.id, cfg->export_since,
		cfg->export_until) != 0 ||
	    admin_files_export(cfg, db, stdout, r.id, cfg->export_since,
		cfg->export_until) != 0) {
		fprintf(stderr, "chatd: export failed\n");
		goto out;
	}
	rc = 0;
out:
	db_rollback(db);
	db_close(db);
	return rc;
}

/* chatd import < FILE: an export into an empty database, all or
 * nothing (one transaction). */
int
admin_db_import(struct config *cfg, int argc, char **argv)
{
	struct jsonl_names names = {auth_username_fold, auth_room_fold,
	    auth_hash_check, admin_files_import_bytes, cfg};
	size_t n;
	const char *why;
	struct db *db;
	int empty, lock = -1;

	(void)argv;
	if (argc != 0) {
		config_usage(stderr);
		return 2;
	}
	if (admin_db_refuse_live_fd(cfg, "import", STDIN_FILENO))
		return 1;
	/* A serving chatd allocates seqs in memory: never import under it. */
	if (access(cfg->db_path, F_OK) == 0 &&
	    (lock = admin_db_lock(cfg->db_path, 1)) < 0) {
		fprintf(stderr, "chatd: import: %s\n", lock == -2 ?
		    "chatd is serving this database: stop it first" :
		    strerror(errno));
		return 1;
	}
	if ((db = admin_open(cfg, 0)) == NULL) {
		if (lock >= 0)
			close(lock);
		return 1;
	}
	/* PostgreSQL: the same refusal, through its serving lock. */
	if ((empty = db_serving_lock(db, 1)) != 0) {
		fprintf(stderr, "chatd: import: %s\n", empty == 1 ?
		    "chatd is serving this database: stop it first" :
		    "database error");
		db_close(db);
		return 1;
	}
	if (db_begin(db) != 0 || (empty = import_is_empty(db)) < 0) {
		fprintf(stderr, "chatd: import: database error\n");
		goto fail;
	}
	if (!empty) {
		fprintf(stderr, "chatd: import: %s is not empty; import goes "
				"into a new database\n", cfg->db_path);
		goto fail;
	}
	if ((why = jsonl_import(db, stdin, &names, &n)) != NULL) {
		fprintf(stderr, "chatd: import: line %zu: %s\n", n, why);
		goto fail;
	}
	/* Search indexes the imported history now, not in the server. */
	if (message_index_pending(db, INT64_MAX) < 0 || db_commit(db) != 0) {
		fprintf(stderr, "chatd: import: commit failed\n");
		goto fail;
	}
	log_info("imported %zu lines into %s", n, cfg->db_path);
	db_close(db);
	if (lock >= 0)
		close(lock);
	return 0;
fail:
	db_rollback(db);
	db_close(db);
	if (lock >= 0)
		close(lock);
	return 1;
}
