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

#include "chatd/api.h"
#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/limiter.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/worker.h"
#include "storage/storage.h"

#define CHATD_VERSION "0.1.0"

/* One option: --name VALUE, also settable as the environment variable
 * env and as "name = value" in the config file. Flags take no value.
 * Options of one command (cmd not NULL) come only from the command line. */
struct option_def {
	const char *name;
	const char *env;
	const char *def;
	const char *help;
	int flag;
	const char *cmd;
};

/* Where an option's value came from, lowest priority first. */
enum option_source { SRC_NONE = 0, SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };
static const char *source_names[] = {"unset", "default", "config file",
    "environment", "flag"};

static const struct option_def options[] = {
	{"listen", "CHATD_LISTEN", "127.0.0.1:8080", "address and port", 0,
	    NULL},
	{"db", "CHATD_DB", "./chat.db", "SQLite database file", 0, NULL},
	{"web", "CHATD_WEB", "web", "directory of the web page", 0, NULL},
	{"tls-cert", "CHATD_TLS_CERT", NULL, "TLS certificate chain (PEM)", 0,
	    NULL},
	{"tls-key", "CHATD_TLS_KEY", NULL, "TLS private key (PEM)", 0, NULL},
	{"registration", "CHATD_REGISTRATION", "open", "open or closed", 0,
	    NULL},
	{"rate-limits", "CHATD_RATE_LIMITS", "on", "on or off (all limits)", 0,
	    NULL},
	{"msg-rate", "CHATD_MSG_RATE", "10",
	    "WebSocket requests per second per connection", 0, NULL},
	{"msg-burst", "CHATD_MSG_BURST", "20", "burst of WebSocket requests",
	    0, NULL},
	{"origin", "CHATD_ORIGIN", NULL,
	    "extra allowed WebSocket Origin (repeatable; env: comma list)", 0,
	    NULL},
	{"token-days", "CHATD_TOKEN_DAYS", "30", "login token lifetime", 0,
	    NULL},
	{"max-clients", "CHATD_MAX_CLIENTS", "20000",
	    "connections before accept pauses", 0, NULL},
	{"header-timeout", "CHATD_HEADER_TIMEOUT", "10",
	    "seconds to send a request head", 0, NULL},
	{"idle-timeout", "CHATD_IDLE_TIMEOUT", "60",
	    "seconds an idle HTTP connection is kept", 0, NULL},
	{"ping-interval", "CHATD_PING_INTERVAL", "30",
	    "seconds of WebSocket silence before a ping, and for its pong", 0,
	    NULL},
	{"durability", "CHATD_DURABILITY", "normal",
	    "normal (survives kill -9) or full (and power loss)", 0, NULL},
	{"log-level", "CHATD_LOG_LEVEL", "info", "error, warn, info or debug",
	    0, NULL},
	{"log-format", "CHATD_LOG_FORMAT", "text", "text or json", 0, NULL},
	{"slow-query-ms", "CHATD_SLOW_QUERY_MS", "200",
	    "log database statements slower than this (0: off)", 0, NULL},
	{"config", "CHATD_CONFIG", NULL,
	    "config file of \"name = value\" lines (these options)", 0, NULL},
	{"help", NULL, NULL, "show this help", 1, NULL},
	{"version", NULL, NULL, "show the version", 1, NULL},
	{"room", NULL, NULL, "only this room", 0, "export"},
	{"since", NULL, NULL, "only messages changed after this seq", 0,
	    "export"},
	{"until", NULL, NULL, "only messages sent at or before this time (ms)",
	    0, "export"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Per option: where its value came from and the value (check-config). */
static enum option_source option_src[NOPTIONS];
static const char *option_val[NOPTIONS];

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: chatd [options]                 serve\n"
	    "       chatd [options] check-config    validate, print the "
	    "settings, exit\n"
	    "       chatd [options] user list\n"
	    "       chatd [options] user add NAME      (password on stdin)\n"
	    "       chatd [options] user passwd NAME   (password on stdin)\n"
	    "       chatd [options] user del NAME\n"
	    "       chatd [options] room list\n"
	    "       chatd [options] room del NAME\n"
	    "       chatd [options] backup FILE        (while serving)\n"
	    "       chatd [options] restore FILE       (chatd stopped)\n"
	    "       chatd [options] export [--room R] [--since SEQ] "
	    "[--until TS] > FILE\n"
	    "       chatd [options] import < FILE      (into an empty "
	    "database)\n\n"
	    "options (flag, environment variable; precedence: flag, then "
	    "environment,\nthen config file, then default):\n");
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].cmd == NULL)
			fprintf(f, "  --%-16s %-22s %s%s%s%s\n",
			    options[i].name,
			    options[i].env ? options[i].env : "",
			    options[i].help,
			    options[i].def ? " (default: " : "",
			    options[i].def ? options[i].def : "",
			    options[i].def ? ")" : "");
	fprintf(f, "\nexport options:\n");
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].cmd != NULL)
			fprintf(f, "  --%-16s %s\n", options[i].name,
			    options[i].help);
}

/* Parses a whole non-negative number from s into *out. 0 or -1. */
static int
parse_num(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return *s == '\0' || *end != '\0' || errno || *out < 0 ? -1 : 0;
}

/* Parses a whole non-negative integer from s into *out. 0 or -1. */
static int
parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || errno || v < 0)
		return -1;
	*out = v;
	return 0;
}

/* Applies one option value to cfg; -1 after printing why. */
static int
config_set(struct config *cfg, const char *name, const char *val)
{
	double num = 0;

	if (strcmp(name, "listen") == 0)
		cfg->listen = val;
	else if (strcmp(name, "db") == 0)
		cfg->db_path = val;
	else if (strcmp(name, "web") == 0)
		cfg->web_dir = val;
	else if (strcmp(name, "tls-cert") == 0)
		cfg->tls_cert = val;
	else if (strcmp(name, "tls-key") == 0)
		cfg->tls_key = val;
	else if (strcmp(name, "config") == 0)
		cfg->config_file = val;
	else if (strcmp(name, "room") == 0)
		cfg->export_room = val;
	else if (strcmp(name, "since") == 0) {
		if (parse_int64(val, &cfg->export_since) != 0)
			goto bad;
	} else if (strcmp(name, "until") == 0) {
		if (parse_int64(val, &cfg->export_until) != 0)
			goto bad;
	} else if (strcmp(name, "origin") == 0) {
		if (cfg->norigins == MAX_ORIGINS)
			goto bad;
		cfg->origins[cfg->norigins++] = val;
	} else if (strcmp(name, "registration") == 0) {
		if (strcmp(val, "open") && strcmp(val, "closed"))
			goto bad;
		cfg->registration_open = strcmp(val, "open") == 0;
	} else if (strcmp(name, "rate-limits") == 0) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			goto bad;
		cfg->rate_limits = strcmp(val, "on") == 0;
	} else if (strcmp(name, "durability") == 0) {
		if (strcmp(val, "normal") && strcmp(val, "full"))
			goto bad;
		cfg->durability_full = strcmp(val, "full") == 0;
	} else if (strcmp(name, "log-level") == 0) {
		if ((cfg->log_level = log_level_parse(val)) < 0)
			goto bad;
	} else if (strcmp(name, "log-format") == 0) {
		if (strcmp(val, "text") && strcmp(val, "json"))
			goto bad;
		cfg->log_json = strcmp(val, "json") == 0;
	} else {
		if (parse_num(val, &num) != 0)
			goto bad;
		if (strcmp(name, "msg-rate") == 0)
			cfg->msg_rate = num;
		else if (strcmp(name, "msg-burst") == 0)
			cfg->msg_burst = num < 1 ? 1 : num;
		else if (strcmp(name, "token-days") == 0 && num >= 1)
			cfg->token_ttl_ms = (int64_t)(num * 86400000.0);
		else if (strcmp(name, "max-clients") == 0 && num >= 1)
			cfg->max_clients = (int)num;
		else if (strcmp(name, "header-timeout") == 0 && num >= 1)
			cfg->header_timeout = (int)num;
		else if (strcmp(name, "idle-timeout") == 0 && num >= 1)
			cfg->idle_timeout = (int)num;
		else if (strcmp(name, "ping-interval") == 0 && num >= 1)
			cfg->ping_interval = (int)num;
		else if (strcmp(name, "slow-query-ms") == 0)
			cfg->slow_query_ms = (int)num;
		else
			goto bad;
	}
	return 0;
bad:
	fprintf(stderr, "chatd: invalid value for --%s: '%s'\n", name, val);
	return -1;
}

/* Applies option o's value from src. A repeatable option (origin) set
 * from a higher source replaces the values from lower ones. */
static int
config_apply(struct config *cfg, size_t o, const char *val,
    enum option_source src)
{
	if (strcmp(options[o].name, "origin") == 0 && option_src[o] != src)
		cfg->norigins = 0;
	if (config_set(cfg, options[o].name, val) != 0)
		return -1;
	option_src[o] = src;
	option_val[o] = val;
	return 0;
}

/* The index of the option called name (nl bytes), or NOPTIONS. */
static size_t
option_find(const char *name, size_t nl)
{
	for (size_t o = 0; o < NOPTIONS; o++)
		if (strlen(options[o].name) == nl &&
		    strncmp(options[o].name, name, nl) == 0)
			return o;
	return NOPTIONS;
}

/* Strings the config points into, from the config file and the
 * environment: kept (reachable) until exit, even once overridden. */
static char **config_strings;
static size_t config_nstrings;

/* Keeps s until exit and returns it. */
static char *
config_keep(char *s)
{
	config_strings = realloc(config_strings,
	    (config_nstrings + 1) * sizeof *config_strings);
	if (config_strings == NULL)
		abort();
	config_strings[config_nstrings++] = s;
	return s;
}

/* Copies s without leading and trailing white space. */
static char *
config_trim(const char *s, size_t n)
{
	char *out;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	out = malloc(n + 1);
	if (out == NULL)
		abort();
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

/* Reads the config file: "name = value" lines of the options that have
 * an environment variable; '#' starts a comment line. -1 after printing
 * FILE:LINE: why. */
static int
config_file_load(struct config *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *name, *val;
	size_t cap = 0, o;
	ssize_t n;
	int lineno = 0, rc = 0;

	if (f == NULL) {
		fprintf(stderr, "chatd: --config %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while (rc == 0 && (n = getline(&line, &cap, f)) != -1) {
		char *eq = strchr(line, '=');

		lineno++;
		name = config_trim(line, eq ? (size_t)(eq - line) : (size_t)n);
		if (name[0] == '\0' || name[0] == '#') {
			free(name);
			continue;
		}
		o = eq ? option_find(name, strlen(name)) : NOPTIONS;
		if (o == NOPTIONS || options[o].env == NULL ||
		    strcmp(options[o].name, "config") == 0) {
			fprintf(stderr, "chatd: %s:%d: %s '%s'\n", path,
			    lineno, eq ? "unknown option" : "expected name = "
							    "value, got", name);
			rc = -1;
		} else {
			val = config_keep(config_trim(eq + 1, strlen(eq + 1)));
			if (config_apply(cfg, o, val, SRC_FILE) != 0) {
				fprintf(stderr, "chatd: (at %s:%d)\n", path,
				    lineno);
				rc = -1;
			}
		}
		free(name);
	}
	free(line);
	fclose(f);
	return rc;
}

/* Sets option o from its environment variable, if set. */
static int
config_env(struct config *cfg, size_t o)
{
	const char *env = options[o].env ? getenv(options[o].env) : NULL;

	if (env == NULL || *env == '\0')
		return 0;
	if (strcmp(options[o].name, "origin") == 0) {
		char *list = config_keep(strdup(env)), *save = NULL, *tok;

		for (tok = strtok_r(list, ",", &save); tok;
		    tok = strtok_r(NULL, ",", &save))
			if (config_apply(cfg, o, tok, SRC_ENV) != 0)
				return -1;
		return 0;
	}
	return config_apply(cfg, o, env, SRC_ENV);
}

/* The --config value from the command line, else CHATD_CONFIG, else
 * NULL. */
static const char *
config_path(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			return argv[i + 1];
	}
	return getenv("CHATD_CONFIG") && *getenv("CHATD_CONFIG") ?
		   getenv("CHATD_CONFIG") : NULL;
}

/* Defaults, then the config file, then the environment, then flags
 * (anywhere on the line; "--" ends them). The other arguments go to
 * pos[*npos]. Returns 1 to go on, 0 to exit successfully (--help,
 * --version), or -1 on error. */
static int
config_load(struct config *cfg, int argc, char **argv, char **pos, int *npos)
{
	const char *file = config_path(argc, argv);
	int i, only_pos = 0;

	cfg->export_since = cfg->export_until = -1;
	for (size_t o = 0; o < NOPTIONS; o++)
		if (options[o].def &&
		    config_apply(cfg, o, options[o].def, SRC_DEFAULT) != 0)
			return -1;
	if (file != NULL && config_file_load(cfg, file) != 0)
		return -1;
	for (size_t o = 0; o < NOPTIONS; o++)
		if (config_env(cfg, o) != 0)
			return -1;
	*npos = 0;
	for (i = 1; i < argc; i++) {
		const char *name = argv[i] + 2, *eq;
		size_t o;

		if (only_pos || strncmp(argv[i], "--", 2) != 0) {
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (argv[i][2] == '\0') {
			only_pos = 1;
			continue;
		}
		eq = strchr(name, '=');
		o = option_find(name, eq ? (size_t)(eq - name) : strlen(name));
		if (o == NOPTIONS) {
			fprintf(stderr, "chatd: unknown option '%s' (see "
					"chatd --help)\n", argv[i]);
			return -1;
		}
		if (options[o].flag) {
			if (strcmp(options[o].name, "help") == 0)
				usage(stdout);
			else
				printf("chatd %s\n", CHATD_VERSION);
			return 0;
		}
		if (eq == NULL && i + 1 >= argc) {
			fprintf(stderr, "chatd: --%s needs a value\n",
			    options[o].name);
			return -1;
		}
		if (config_apply(cfg, o, eq ? eq + 1 : argv[++i], SRC_FLAG) !=
		    0)
			return -1;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		fprintf(stderr, "chatd: --tls-cert and --tls-key go together\n");
		return -1;
	}
	return 1;
}

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
		usage(stderr);
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
		usage(stderr);
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
		usage(stderr);
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
		usage(stderr);
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
		usage(stderr);
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

/* Writes one JSON object as a line on stdout. -1 on a write error. */
static int
emit(json_t *o)
{
	int rc = json_dumpf(o, stdout, JSON_COMPACT) == 0 &&
			 putchar('\n') != EOF ? 0 : -1;

	json_decref(o);
	return rc;
}

static int
export_user_line(void *arg, const struct export_user *u)
{
	json_t *o = json_pack("{s:s,s:I,s:s,s:I}", "type", "user", "id",
	    (json_int_t)u->id, "username", u->username, "created_at",
	    (json_int_t)u->created_at);

	(void)arg;
	if (u->pwhash != NULL && strcmp(u->pwhash, "!") != 0)
		json_object_set_new(o, "pwhash", json_string(u->pwhash));
	if (u->deleted)
		json_object_set_new(o, "deleted", json_true());
	return emit(o);
}

static int
export_room_line(void *arg, const struct room *r)
{
	(void)arg;
	return emit(json_pack("{s:s,s:s,s:s,s:I,s:I}", "type", "room", "room",
	    r->name, "kind", r->kind == ROOM_DM ? "dm" : "public",
	    "created_at", (json_int_t)r->created_at, "last_seq",
	    (json_int_t)r->last_seq));
}

static int
export_member_line(void *arg, const struct export_member *m)
{
	(void)arg;
	return emit(json_pack("{s:s,s:s,s:s,s:I,s:I}", "type", "member",
	    "room", m->room, "user", m->username, "read_seq",
	    (json_int_t)m->read_seq, "joined_at", (json_int_t)m->joined_at));
}

/* A message line: {"type":"message"} and the PROTOCOL.md message object
 * (a tombstone keeps edited_ts if it had one), plus client_msg_id. */
static int
export_message_line(void *arg, const struct message *m,
    const char *client_msg_id)
{
	json_t *o = json_pack("{s:s}", "type", "message");
	json_t *body = chat_message_json(m);

	(void)arg;
	json_object_update(o, body);
	json_decref(body);
	if (m->deleted && m->edited_ts > 0)
		json_object_set_new(o, "edited_ts", json_integer(m->edited_ts));
	if (client_msg_id != NULL)
		json_object_set_new(o, "client_msg_id",
		    json_string(client_msg_id));
	return emit(o);
}

/* The header line and every user, room and membership. */
static int
export_all(struct db *db)
{
	int64_t floor;

	if (export_meta(db, &floor) != 0 ||
	    emit(json_pack("{s:s,s:i,s:s,s:I}", "type", "chatd_export",
		"version", 1, "epoch", db_epoch(db), "seq_floor",
		(json_int_t)floor)) != 0)
		return -1;
	if (export_users(db, export_user_line, NULL) != 0 ||
	    room_list_all(db, export_room_line, NULL) != 0 ||
	    export_members(db, export_member_line, NULL) != 0)
		return -1;
	return 0;
}

/* chatd export [--room R] [--since SEQ] [--until TS]: JSON Lines. */
static int
cmd_export(struct config *cfg, int argc, char **argv)
{
	char name[ROOMNAME_MAX + 8];
	int full = cfg->export_room == NULL && cfg->export_since < 0 &&
		   cfg->export_until < 0;
	struct db *db;
	struct room r = {0};
	int rc = 1;

	(void)argv;
	if (argc != 0) {
		usage(stderr);
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
	if ((full && export_all(db) != 0) ||
	    export_messages(db, r.id, cfg->export_since, cfg->export_until,
		export_message_line, NULL) != 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "chatd: export failed\n");
		goto out;
	}
	rc = 0;
out:
	db_rollback(db);
	db_close(db);
	return rc;
}

/* The integer field key of o into *out (absent: def, if def >= 0). */
static int
json_int_field(json_t *o, const char *key, int64_t def, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL && def >= 0) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

/* Copies the name field key of o into out (size n), folded: a username
 * (room 0) or a room name (room 1). -1 if missing or invalid. */
static int
json_name_field(json_t *o, const char *key, int room, char *out, size_t n)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL || strlen(s) >= n ||
	    strlen(s) > (room ? ROOMNAME_MAX : USERNAME_MAX))
		return -1;
	snprintf(out, n, "%s", s);
	return room ? (auth_room_fold(out) < 0 ? -1 : 0) :
		      auth_username_fold(out);
}

/* One user line. */
static const char *
import_user_line(struct db *db, json_t *o)
{
	struct export_user u = {0};
	json_t *pw = json_object_get(o, "pwhash");

	if (json_int_field(o, "id", -1, &u.id) != 0 || u.id == 0 ||
	    json_name_field(o, "username", 0, u.username,
		sizeof u.username) != 0 ||
	    json_int_field(o, "created_at", 0, &u.created_at) != 0 ||
	    (pw != NULL && !json_is_string(pw)))
		return "bad user line";
	u.pwhash = json_string_value(pw);
	u.deleted = json_is_true(json_object_get(o, "deleted"));
	switch (import_user(db, &u)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate user";
	default:
		return "database error";
	}
}

/* One room line. */
static const char *
import_room_line(struct db *db, json_t *o)
{
	struct room r = {0};
	const char *kind = json_string_value(json_object_get(o, "kind"));
	int k;

	if (json_name_field(o, "room", 1, r.name, sizeof r.name) != 0 ||
	    json_int_field(o, "created_at", 0, &r.created_at) != 0 ||
	    json_int_field(o, "last_seq", 0, &r.last_seq) != 0)
		return "bad room line";
	k = strncmp(r.name, "dm:", 3) == 0 ? ROOM_DM : ROOM_PUBLIC;
	if (kind != NULL && strcmp(kind, k == ROOM_DM ? "dm" : "public") != 0)
		return "the room's kind does not match its name";
	r.kind = k;
	switch (import_room(db, &r)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate room";
	default:
		return "database error";
	}
}

/* One member line. */
static const char *
import_member_line(struct db *db, json_t *o)
{
	char room[ROOMNAME_MAX + 1], user[USERNAME_MAX + 1];
	int64_t read_seq, joined;

	if (json_name_field(o, "room", 1, room, sizeof room) != 0 ||
	    json_name_field(o, "user", 0, user, sizeof user) != 0 ||
	    json_int_field(o, "read_seq", 0, &read_seq) != 0 ||
	    json_int_field(o, "joined_at", 0, &joined) != 0)
		return "bad member line";
	switch (import_member(db, room, user, read_seq, joined)) {
	case 0:
		return NULL;
	case 1:
		return "duplicate member";
	default:
		return "database error";
	}
}

/* One message line (PROTOCOL.md message or tombstone). */
static const char *
import_message_line(struct db *db, json_t *o)
{
	struct message m = {0};
	json_t *text = json_object_get(o, "text");
	json_t *cid = json_object_get(o, "client_msg_id");

	m.deleted = json_is_true(json_object_get(o, "deleted"));
	if (json_int_field(o, "id", -1, &m.id) != 0 || m.id == 0 ||
	    json_int_field(o, "seq", m.id, &m.seq) != 0 || m.seq < m.id ||
	    json_name_field(o, "room", 1, m.room, sizeof m.room) != 0 ||
	    json_name_field(o, "user", 0, m.username, sizeof m.username) !=
		0 ||
	    json_int_field(o, "ts", -1, &m.ts) != 0 ||
	    json_int_field(o, "edited_ts", 0, &m.edited_ts) != 0 ||
	    (!m.deleted && !json_is_string(text)) ||
	    (cid != NULL && (!json_is_string(cid) ||
				json_string_length(cid) > 64)))
		return "bad message line";
	if (!m.deleted) {
		m.text = json_string_value(text);
		m.text_len = json_string_length(text);
	}
	switch (import_message(db, &m, json_string_value(cid))) {
	case 0:
		return NULL;
	case 1:
		return "duplicate message id, seq or client_msg_id";
	default:
		return "database error";
	}
}

/* The header line: the epoch and seq_floor of the exported database. */
static const char *
import_header_line(struct db *db, json_t *o)
{
	const char *epoch = json_string_value(json_object_get(o, "epoch"));
	int64_t version, floor;

	if (json_int_field(o, "version", -1, &version) != 0 || version != 1)
		return "unsupported export version";
	if (json_int_field(o, "seq_floor", 0, &floor) != 0 ||
	    (epoch != NULL && (strlen(epoch) != EPOCH_LEN ||
				  strspn(epoch, "0123456789abcdef") !=
				      EPOCH_LEN)))
		return "bad header line";
	return import_meta(db, epoch, floor) == 0 ? NULL : "database error";
}

/* Imports one line; NULL or why it failed. */
static const char *
import_line(struct db *db, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	const char *type, *why;

	if (!json_is_object(o)) {
		json_decref(o);
		return "not a JSON object";
	}
	type = json_string_value(json_object_get(o, "type"));
	if (type == NULL)
		why = "no type";
	else if (strcmp(type, "message") == 0)
		why = import_message_line(db, o);
	else if (strcmp(type, "user") == 0)
		why = import_user_line(db, o);
	else if (strcmp(type, "room") == 0)
		why = import_room_line(db, o);
	else if (strcmp(type, "member") == 0)
		why = import_member_line(db, o);
	else if (strcmp(type, "chatd_export") == 0)
		why = import_header_line(db, o);
	else
		why = "unknown type";
	json_decref(o);
	return why;
}

/* chatd import < FILE: an export into an empty database, all or
 * nothing (one transaction). */
static int
cmd_import(struct config *cfg, int argc, char **argv)
{
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	const char *why = NULL;
	struct db *db;
	int empty, lock = -1;

	(void)argv;
	if (argc != 0) {
		usage(stderr);
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
	while (why == NULL && (len = getline(&line, &cap, stdin)) != -1) {
		n++;
		while (len > 0 && (line[len - 1] == '\n' ||
				      line[len - 1] == '\r'))
			len--;
		if (len > 0)
			why = import_line(db, line, (size_t)len);
	}
	if (why == NULL && ferror(stdin))
		why = "read error";
	if (why != NULL) {
		fprintf(stderr, "chatd: import: line %zu: %s\n", n, why);
		goto fail;
	}
	/* Search indexes the imported history now, not in the server. */
	if (message_index_pending(db, INT64_MAX) < 0 || db_commit(db) != 0) {
		fprintf(stderr, "chatd: import: commit failed\n");
		goto fail;
	}
	free(line);
	log_info("imported %zu lines into %s", n, cfg->db_path);
	db_close(db);
	if (lock >= 0)
		close(lock);
	return 0;
fail:
	free(line);
	db_rollback(db);
	db_close(db);
	if (lock >= 0)
		close(lock);
	return 1;
}

/* A problem found by check-config. */
static int
check_fail(const char *what, const char *path, const char *why)
{
	fprintf(stderr, "chatd: check-config: %s %s: %s\n", what, path, why);
	return 1;
}

/* check-config: --listen is ADDR:PORT or [V6]:PORT. */
static int
check_listen(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	int64_t port;

	if (colon == NULL || parse_int64(colon + 1, &port) != 0 ||
	    port > 65535)
		return check_fail("--listen", spec, "expected ADDR:PORT");
	return 0;
}

/* check-config: the database exists and is SQLite, or can be created. */
static int
check_db(const char *path)
{
	char head[16], dir[4096];
	int fd;

	if (access(path, F_OK) != 0) {
		snprintf(dir, sizeof dir, "%s", path);
		if (access(dirname(dir), W_OK | X_OK) != 0)
			return check_fail("--db", path,
			    "does not exist and its directory is not "
			    "writable");
		return 0;
	}
	if (access(path, R_OK | W_OK) != 0)
		return check_fail("--db", path, strerror(errno));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return check_fail("--db", path, strerror(errno));
	if (read(fd, head, sizeof head) != (ssize_t)sizeof head ||
	    memcmp(head, "SQLite format 3", 16) != 0) {
		close(fd);
		return check_fail("--db", path, "not a SQLite database");
	}
	close(fd);
	return 0;
}

/* chatd check-config: validates the settings and prints them with where
 * each came from; starts nothing. */
static int
cmd_check_config(struct config *cfg, int argc)
{
	struct stat st;
	int bad = 0;

	if (argc != 0) {
		usage(stderr);
		return 2;
	}
	bad |= check_listen(cfg->listen);
	bad |= check_db(cfg->db_path);
	if (stat(cfg->web_dir, &st) != 0 || !S_ISDIR(st.st_mode))
		bad |= check_fail("--web", cfg->web_dir, "not a directory");
	if (cfg->tls_cert && access(cfg->tls_cert, R_OK) != 0)
		bad |= check_fail("--tls-cert", cfg->tls_cert,
		    strerror(errno));
	if (cfg->tls_key && access(cfg->tls_key, R_OK) != 0)
		bad |= check_fail("--tls-key", cfg->tls_key, strerror(errno));
	for (size_t o = 0; o < NOPTIONS; o++) {
		if (options[o].flag || options[o].cmd != NULL)
			continue;
		if (strcmp(options[o].name, "origin") == 0) {
			for (int i = 0; i < cfg->norigins; i++)
				printf("%s = %s\t# %s\n", options[o].name,
				    cfg->origins[i],
				    source_names[option_src[o]]);
			continue;
		}
		if (option_val[o] != NULL)
			printf("%s = %s\t# %s\n", options[o].name,
			    option_val[o], source_names[option_src[o]]);
	}
	if (bad)
		return 1;
	fprintf(stderr, "chatd: configuration OK\n");
	return 0;
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
	if (server_start(&srv, cfg, &api_app) != 0 || chat_start(&srv) != 0) {
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
		rc = cmd_check_config(&cfg, npos - 1);
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
