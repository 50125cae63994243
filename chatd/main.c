/* chatd/main.c — command line: serve, and the admin commands */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/config.h"
#include "chatd/limiter.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/worker.h"
#include "storage/jsonl.h"
#include "storage/storage.h"

/* Opens the configured database for an admin command; NULL after
 * printing why. must_exist: refuse to create a new, empty one. */
static struct db *
admin_open(struct config *cfg, int must_exist)
{
	char err[512];
	struct db *db;

	if (must_exist && access(cfg->db_path, F_OK) != 0) {
		fprintf(stderr, "chatd: --db %s: %s\n", cfg->db_path,
		    strerror(errno));
		return NULL;
	}
	if (db_open(&db, cfg->db_path, err, sizeof err) != 0) {
		fprintf(stderr, "chatd: --db %s: %s\n", cfg->db_path, err);
		return NULL;
	}
	db_set_slow_ms(cfg->slow_query_ms);
	return db;
}

/* Reads a password line from stdin (no echo handling: pipe it). */
static int
read_password(char *buf, size_t len)
{
	size_t n;

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password: ");
	if (fgets(buf, (int)len, stdin) == NULL)
		return -1;
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (auth_password_ok(n) != 0) {
		fprintf(stderr, "chatd: the password must be 8-256 bytes\n");
		return -1;
	}
	return 0;
}

static int
print_user(void *arg, const struct user *u)
{
	(void)arg;
	printf("%lld\t%s\n", (long long)u->id, u->username);
	return 0;
}

/* chatd user add|passwd|del|list: safe while chatd serves (WAL). */
static int
cmd_user(struct config *cfg, int argc, char **argv)
{
	char name[64] = "", pw[PASSWORD_MAX + 4], hash[AUTH_HASH_MAX];
	struct db *db;
	struct user u;
	int rc = 1, found;

	if (argc < 1 || (strcmp(argv[0], "list") != 0 && argc != 2)) {
		config_usage(stderr);
		return 2;
	}
	if (argc == 2) {
		snprintf(name, sizeof name, "%s", argv[1]);
		if (strlen(argv[1]) > USERNAME_MAX ||
		    auth_username_fold(name) != 0) {
			fprintf(stderr, "chatd: invalid username '%s'\n",
			    argv[1]);
			return 1;
		}
	}
	if ((db = admin_open(cfg, 0)) == NULL)
		return 1;
	found = argc == 2 ? user_by_name(db, name, &u, NULL, 0) : 0;
	if (strcmp(argv[0], "list") == 0) {
		rc = user_list(db, print_user, NULL) == 0 ? 0 : 1;
	} else if (strcmp(argv[0], "add") == 0) {
		if (read_password(pw, sizeof pw) == 0 &&
		    auth_hash_password(pw, strlen(pw), hash, sizeof hash) == 0) {
			int r = user_create(db, name, hash, now_ms(), &u.id);

			if (r == 1)
				fprintf(stderr, "chatd: %s is taken\n", name);
			rc = r == 0 ? 0 : 1;
		}
	} else if (strcmp(argv[0], "passwd") == 0 ||
	    strcmp(argv[0], "del") == 0) {
		if (found != 0) {
			fprintf(stderr, "chatd: no user %s\n", name);
		} else if (argv[0][0] == 'd') {
			rc = user_delete(db, u.id) == 0 ? 0 : 1;
		} else if (read_password(pw, sizeof pw) == 0 &&
		    auth_hash_password(pw, strlen(pw), hash, sizeof hash) == 0) {
			rc = user_set_password(db, u.id, hash) == 0 ? 0 : 1;
		}
	} else {
		config_usage(stderr);
		rc = 2;
	}
	if (rc == 0 && strcmp(argv[0], "list") != 0)
		log_info("user %s %s", argv[0], name);
	db_close(db);
	return rc;
}

static int
print_room(void *arg, const struct room *r)
{
	(void)arg;
	printf("%s\t%s\t%lld\t%lld\n", r->name,
	    r->kind == ROOM_DM ? "dm" : "public", (long long)r->members,
	    (long long)r->last_seq);
	return 0;
}

/* chatd room list|del: safe while chatd serves (a deleted room is gone
 * for connected clients at their next request: the server's room cache
 * checks that its rooms still exist). */
static int
cmd_room(struct config *cfg, int argc, char **argv)
{
	char name[ROOMNAME_MAX + 8] = "";
	struct db *db;
	struct room r;
	int rc = 1;

	if (argc < 1 || !((strcmp(argv[0], "list") == 0 && argc == 1) ||
			    (strcmp(argv[0], "del") == 0 && argc == 2))) {
		config_usage(stderr);
		return 2;
	}
	if (argc == 2) {
		snprintf(name, sizeof name, "%s", argv[1]);
		if (strlen(argv[1]) > ROOMNAME_MAX ||
		    auth_room_fold(name) < 0) {
			fprintf(stderr, "chatd: invalid room name '%s'\n",
			    argv[1]);
			return 1;
		}
	}
	if ((db = admin_open(cfg, 0)) == NULL)
		return 1;
	if (argc == 1) {
		rc = room_list_all(db, print_room, NULL) == 0 ? 0 : 1;
	} else if ((rc = room_by_name(db, name, &r)) == 1) {
		fprintf(stderr, "chatd: no room %s\n", name);
	} else if (rc == 0 && (rc = room_delete(db, r.id)) == 0) {
		log_info("room del %s", name);
	}
	db_close(db);
	return rc == 0 ? 0 : 1;
}

/* chatd backup FILE: a consistent copy of the live database. */
static int
cmd_backup(struct config *cfg, int argc, char **argv)
{
	char err[512];
	struct db *db;
	int64_t t0 = now_ms();
	int rc;

	if (argc != 1) {
		config_usage(stderr);
		return 2;
	}
	if ((db = admin_open(cfg, 1)) == NULL)
		return 1;
	rc = db_backup(db, argv[0], err, sizeof err);
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "chatd: backup: %s\n", err);
		return 1;
	}
	log_info("backup of %s written to %s in %lld ms", cfg->db_path,
	    argv[0], (long long)(now_ms() - t0));
	return 0;
}

/* Takes a BSD lock on the database file: shared while serving,
 * exclusive while restoring (flock, independent of SQLite's own POSIX
 * locks). Returns the descriptor holding it, -2 if the other side holds
 * it, -1 on another error. */
static int
db_file_lock(const char *path, int exclusive)
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
remove_if_there(const char *path)
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
remove_stale(const char *path)
{
	static const char *suffix[] = {"-wal", "-shm", "-journal"};
	char p[4200];

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffix[i]);
		if (remove_if_there(p) != 0)
			return -1;
	}
	return remove_if_there(path);
}

/* Copies the backup to tmp and gives it a new epoch; its epoch in out. */
static int
restore_prepare(const char *backup, const char *tmp, char *epoch)
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
static int
cmd_restore(struct config *cfg, int argc, char **argv)
{
	char tmp[4096], wal[4096], shm[4096], epoch[EPOCH_LEN + 1];
	int lock = -1, rc = 1;

	if (argc != 1) {
		config_usage(stderr);
		return 2;
	}
	snprintf(tmp, sizeof tmp, "%s.restore", cfg->db_path);
	snprintf(wal, sizeof wal, "%s-wal", cfg->db_path);
	snprintf(shm, sizeof shm, "%s-shm", cfg->db_path);
	if (access(cfg->db_path, F_OK) == 0 &&
	    (lock = db_file_lock(cfg->db_path, 1)) < 0) {
		fprintf(stderr, "chatd: restore: %s\n", lock == -2 ?
		    "chatd is serving this database: stop it first" :
		    strerror(errno));
		return 1;
	}
	if (remove_stale(tmp) != 0 || restore_prepare(argv[0], tmp, epoch) != 0)
		goto out;
	/* The target's old WAL must not be replayed onto the backup. */
	if (remove_if_there(wal) != 0 || remove_if_there(shm) != 0)
		goto out;
	if (rename(tmp, cfg->db_path) != 0) {
		fprintf(stderr, "chatd: restore: cannot rename %s: %s\n", tmp,
		    strerror(errno));
		goto out;
	}
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
static int
cmd_export(struct config *cfg, int argc, char **argv)
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
static int
cmd_import(struct config *cfg, int argc, char **argv)
{
	static const struct jsonl_names names = {auth_username_fold,
	    auth_room_fold};
	size_t n;
	const char *why;
	struct db *db;
	int empty, lock = -1;

	(void)argv;
	if (argc != 0) {
		config_usage(stderr);
		return 2;
	}
	/* A serving chatd allocates seqs in memory: never import under it. */
	if (access(cfg->db_path, F_OK) == 0 &&
	    (lock = db_file_lock(cfg->db_path, 1)) < 0) {
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

/* Frees the server in the one safe order: what is pending is committed
 * and delivered, then the connections go (their sessions point into the
 * chat state), then the chat state (its events need the event base),
 * then the base and the database. */
static void
serve_teardown(struct server *srv)
{
	chat_flush(srv);
	server_close_conns(srv);
	chat_free(srv);
	server_free(srv);
}

/* Runs the server until SIGTERM/SIGINT. */
static int
cmd_serve(struct config *cfg)
{
	struct server srv;
	int rc, lock;

	memset(&srv, 0, sizeof srv);
	db_set_slow_ms(cfg->slow_query_ms);
	if (auth_hash_password("not a real password", 19, srv.dummy_hash,
		sizeof srv.dummy_hash) != 0)
		return 1;
	if (server_start(&srv, cfg, &chat_app) != 0 || chat_start(&srv) != 0) {
		serve_teardown(&srv);
		return 1;
	}
	/* Held while serving: chatd restore refuses to replace the file. */
	if ((lock = db_file_lock(cfg->db_path, 0)) == -2) {
		fprintf(stderr, "chatd: %s is being restored\n", cfg->db_path);
		serve_teardown(&srv);
		return 1;
	}
	if ((srv.worker = worker_new(srv.base, 2)) == NULL) {
		fprintf(stderr, "chatd: cannot start worker threads\n");
		serve_teardown(&srv);
		if (lock >= 0)
			close(lock);
		return 1;
	}
	srv.login_user = limiter_new(1.0 / 60, 5, 4096);
	srv.login_addr = limiter_new(1.0 / 3, 20, 4096);
	srv.register_addr = limiter_new(1.0 / 60, 5, 4096);
	rc = server_run(&srv);
	worker_free(srv.worker);
	serve_teardown(&srv);
	limiter_free(srv.login_user);
	limiter_free(srv.login_addr);
	limiter_free(srv.register_addr);
	if (lock >= 0)
		close(lock);
	return rc;
}

/* The admin commands: name, and the function that runs it. */
static const struct {
	const char *name;
	int (*fn)(struct config *cfg, int argc, char **argv);
} commands[] = {
	{"user", cmd_user},
	{"room", cmd_room},
	{"backup", cmd_backup},
	{"restore", cmd_restore},
	{"export", cmd_export},
	{"import", cmd_import},
};

int
main(int argc, char **argv)
{
	static struct config cfg;
	char **pos = calloc(argc + 1, sizeof *pos);
	int npos, rc;

	rc = config_load(&cfg, argc, argv, pos, &npos);
	if (rc <= 0) {
		free(pos);
		return rc == 0 ? 0 : 2;
	}
	log_setup(cfg.log_level, cfg.log_json);
	if (npos == 0) {
		free(pos);
		return cmd_serve(&cfg);
	}
	if (cfg.export_room != NULL || cfg.export_since >= 0 ||
	    cfg.export_until >= 0) {
		if (strcmp(pos[0], "export") != 0) {
			fprintf(stderr, "chatd: --room, --since and --until "
					"are options of export\n");
			free(pos);
			return 2;
		}
	}
	rc = -1;
	if (strcmp(pos[0], "check-config") == 0)
		rc = config_check(&cfg, npos - 1);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(pos[0], commands[i].name) == 0)
			rc = commands[i].fn(&cfg, npos - 1, pos + 1);
	if (rc == -1) {
		fprintf(stderr, "chatd: unknown command '%s' (see chatd "
				"--help)\n", pos[0]);
		rc = 2;
	}
	free(pos);
	return rc;
}
