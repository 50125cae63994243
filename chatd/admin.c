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
#include "chatd/utf8.h"
#include "storage/storage.h"

/* The database of --db, for an admin command. */
struct db *
admin_open(struct config *cfg, int must_exist)
{
	char err[512], shown[4096];
	struct db *db;
	int pg = db_url_is_pg(cfg->db_path);

	config_redact(cfg->db_path, shown, sizeof shown);
	if (must_exist && !pg && access(cfg->db_path, F_OK) != 0) {
		fprintf(stderr, "chatd: --db %s: %s\n", shown, strerror(errno));
		return NULL;
	}
	if (db_open(&db, cfg->db_path, err, sizeof err) != 0) {
		fprintf(stderr, "chatd: --db %s: %s\n", shown, err);
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

/* The names of enum room_kind and enum room_role. */
static const char *const admin_kinds[] = {"public", "dm", "private"};
static const char *const admin_roles[] = {"member", "moderator", "owner"};

static int
admin_print_room(void *arg, const struct room *r)
{
	(void)arg;
	printf("%s\t%s\t%lld\t%lld\n", r->name,
	    admin_kinds[r->kind >= 0 && r->kind <= 2 ? r->kind : 0],
	    (long long)r->members, (long long)r->last_seq);
	return 0;
}

/* Folds a command-line name: a username (room 0) or a room name (1).
 * 0, or -1 after printing why. */
static int
admin_name(const char *arg, int room, char *out, size_t len)
{
	snprintf(out, len, "%s", arg);
	if (strlen(arg) > (room ? ROOMNAME_MAX : USERNAME_MAX) ||
	    (room ? auth_room_fold(out) < 0 : auth_username_fold(out) != 0)) {
		fprintf(stderr, "chatd: invalid %s name '%s'\n",
		    room ? "room" : "user", arg);
		return -1;
	}
	return 0;
}

/* chatd room create NAME [--private] [--owner USER] [--topic T]. The
 * room, its owner as its first member, and its topic in one
 * transaction. 0, or 1 after printing why. */
static int
admin_room_create(struct config *cfg, struct db *db, const char *name)
{
	const char *topic = cfg->room_topic ? cfg->room_topic : "";
	struct user owner;
	struct room r;
	int rc;

	if (strncmp(name, "dm:", 3) == 0) {
		fprintf(stderr, "chatd: direct-message rooms are not created "
				"here\n");
		return 1;
	}
	if (!utf8_valid((const uint8_t *)topic, strlen(topic)) ||
	    utf8_codepoints((const uint8_t *)topic, strlen(topic)) >
		ROOM_TOPIC_MAX) {
		fprintf(stderr, "chatd: the topic must be 0-250 characters of "
				"UTF-8\n");
		return 1;
	}
	if (db_begin(db) != 0)
		return 1;
	if (cfg->room_owner != NULL &&
	    (rc = user_by_name(db, cfg->room_owner, &owner, NULL, 0)) != 0) {
		if (rc == 1)
			fprintf(stderr, "chatd: no user %s\n", cfg->room_owner);
		goto fail;
	}
	rc = room_create(db, name, cfg->room_private ? ROOM_PRIVATE :
	    ROOM_PUBLIC, now_ms(), &r);
	if (rc == 1)
		fprintf(stderr, "chatd: room %s exists\n", name);
	if (rc != 0 || (topic[0] && room_set_topic(db, r.id, topic) != 0))
		goto fail;
	/* A new room has no messages: the owner's read_seq is 0. */
	if (cfg->room_owner != NULL &&
	    (member_add(db, r.id, owner.id, 0, now_ms()) != 0 ||
		member_set_role(db, r.id, owner.id, ROLE_OWNER) != 0))
		goto fail;
	if (db_commit(db) != 0)
		goto fail;
	log_info("room create %s", name);
	return 0;
fail:
	db_rollback(db);
	return 1;
}

/* chatd room role ROOM USER ROLE: an admin gives a member a role (how
 * rooms from before roles get an owner). 0, or 1 after printing why. */
static int
admin_room_role(struct db *db, const char *room, const char *user,
    const char *role)
{
	struct room r;
	struct user u;
	int want = -1, rc;

	for (int i = 0; i < 3; i++)
		if (strcmp(role, admin_roles[i]) == 0)
			want = i;
	if (want < 0) {
		fprintf(stderr, "chatd: the role is owner, moderator or "
				"member\n");
		return 1;
	}
	if ((rc = room_by_name(db, room, &r)) == 1)
		fprintf(stderr, "chatd: no room %s\n", room);
	else if (rc == 0 && r.kind == ROOM_DM)
		fprintf(stderr, "chatd: direct-message rooms have no roles\n");
	else if (rc == 0 && (rc = user_by_name(db, user, &u, NULL, 0)) == 1)
		fprintf(stderr, "chatd: no user %s\n", user);
	else if (rc == 0 && (rc = member_set_role(db, r.id, u.id, want)) == 1)
		fprintf(stderr, "chatd: %s is not a member of %s\n", user,
		    room);
	else if (rc == 0) {
		log_info("room role %s %s %s", room, user, role);
		return 0;
	}
	return 1;
}

/* chatd room list|del|create|role: safe while chatd serves (a deleted
 * room is gone for connected clients at their next request: the server's
 * room cache checks that its rooms still exist; roles and topics are read
 * from the database at each use). */
int
admin_room(struct config *cfg, int argc, char **argv)
{
	char name[ROOMNAME_MAX + 8] = "", user[USERNAME_MAX + 8] = "";
	struct db *db;
	struct room r;
	int rc = 1;

	if (argc < 1 || !((strcmp(argv[0], "list") == 0 && argc == 1) ||
			    (strcmp(argv[0], "del") == 0 && argc == 2) ||
			    (strcmp(argv[0], "create") == 0 && argc == 2) ||
			    (strcmp(argv[0], "role") == 0 && argc == 4))) {
		config_usage(stderr);
		return 2;
	}
	if (argc >= 2 && admin_name(argv[1], 1, name, sizeof name) != 0)
		return 1;
	if (argc == 4 && admin_name(argv[2], 0, user, sizeof user) != 0)
		return 1;
	if (cfg->room_owner != NULL) {
		static char owner[USERNAME_MAX + 8];

		if (admin_name(cfg->room_owner, 0, owner, sizeof owner) != 0)
			return 1;
		cfg->room_owner = owner;
	}
	if ((db = admin_open(cfg, 0)) == NULL)
		return 1;
	if (argv[0][0] == 'c') {
		rc = admin_room_create(cfg, db, name);
	} else if (argv[0][0] == 'r') {
		rc = admin_room_role(db, name, user, argv[3]);
	} else if (argc == 1) {
		rc = room_list_all(db, admin_print_room, NULL) == 0 ? 0 : 1;
	} else if ((rc = room_by_name(db, name, &r)) == 1) {
		fprintf(stderr, "chatd: no room %s\n", name);
	} else if (rc == 0 && (rc = room_delete(db, r.id)) == 0) {
		log_info("room del %s", name);
	}
	db_close(db);
	return rc == 0 ? 0 : 1;
}
