/* chatd/admin.c — the user and room commands, and admin_open for all */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chatd/admin.h"
#include "chatd/auth.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "storage/storage.h"

/* The database of --db, for an admin command. */
struct db *
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
admin_read_password(char *buf, size_t len)
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
admin_print_user(void *arg, const struct user *u)
{
	(void)arg;
	printf("%lld\t%s\n", (long long)u->id, u->username);
	return 0;
}

/* chatd user add|passwd|del|list: safe while chatd serves (WAL). */
int
admin_user(struct config *cfg, int argc, char **argv)
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
		rc = user_list(db, admin_print_user, NULL) == 0 ? 0 : 1;
	} else if (strcmp(argv[0], "add") == 0) {
		if (admin_read_password(pw, sizeof pw) == 0 &&
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
		} else if (admin_read_password(pw, sizeof pw) == 0 &&
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
admin_print_room(void *arg, const struct room *r)
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
int
admin_room(struct config *cfg, int argc, char **argv)
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
		rc = room_list_all(db, admin_print_room, NULL) == 0 ? 0 : 1;
	} else if ((rc = room_by_name(db, name, &r)) == 1) {
		fprintf(stderr, "chatd: no room %s\n", name);
	} else if (rc == 0 && (rc = room_delete(db, r.id)) == 0) {
		log_info("room del %s", name);
	}
	db_close(db);
	return rc == 0 ? 0 : 1;
}
