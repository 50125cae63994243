/* chatd/config.c — the settings: flags, environment, config file */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatd/blob.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/redis.h"
#include "storage/storage.h"

/* One option: --name VALUE, also settable as the environment variable
 * env and as "name = value" in the config file. Flags take no value
 * (flag 1: --help and --version, which print and exit; 2: a switch of a
 * command). Options of one command (cmd not NULL) come only from the
 * command line. */
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
	{"db", "CHATD_DB", "./chat.db",
	    "SQLite database file, or PostgreSQL URI (postgres://...)", 0,
	    NULL},
	{"redis", "CHATD_REDIS", NULL,
	    "Redis joining the nodes of a PostgreSQL chatd "
	    "(redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or unix:PATH)",
	    0, NULL},
	{"redis-password-file", "CHATD_REDIS_PASSWORD_FILE", NULL,
	    "file holding the password of --redis (one line; not with a "
	    "password in the URL)",
	    0, NULL},
	{"node-id", "CHATD_NODE_ID", NULL,
	    "this node's name in logs and metrics (default: hostname:port)", 0,
	    NULL},
	{"web", "CHATD_WEB", "web", "directory of the web page", 0, NULL},
	{"files", "CHATD_FILES", NULL,
	    "directory of uploaded files (default: the database path + "
	    "\".files\"; ./chatd.files on PostgreSQL)", 0, NULL},
	{"max-upload-mb", "CHATD_MAX_UPLOAD_MB", "25",
	    "largest file upload, in MiB", 0, NULL},
	{"upload-quota-mb", "CHATD_UPLOAD_QUOTA_MB", "500",
	    "MiB a user may upload per hour (0: no quota; a rate limit)", 0,
	    NULL},
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
	{"max-rooms-per-user", "CHATD_MAX_ROOMS_PER_USER", "1000",
	    "rooms a user may be a member of (always on)", 0, NULL},
	{"max-rooms-created-per-hour", "CHATD_MAX_ROOMS_CREATED_PER_HOUR",
	    "100", "rooms a user may create an hour (0: no limit)", 0, NULL},
	{"origin", "CHATD_ORIGIN", NULL,
	    "extra allowed WebSocket Origin (repeatable; env: comma list)", 0,
	    NULL},
	{"trusted-proxy", "CHATD_TRUSTED_PROXY", NULL,
	    "reverse proxies (CIDR[,CIDR]) whose X-Forwarded-For or "
	    "Forwarded names the client",
	    0, NULL},
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
	{"ws-compression", "CHATD_WS_COMPRESSION", "on",
	    "on or off: permessage-deflate when a client offers it", 0, NULL},
	{"durability", "CHATD_DURABILITY", "normal",
	    "normal (survives kill -9) or full (and power loss)", 0, NULL},
	{"log-level", "CHATD_LOG_LEVEL", "info", "error, warn, info or debug",
	    0, NULL},
	{"log-format", "CHATD_LOG_FORMAT", "text", "text or json", 0, NULL},
	{"slow-query-ms", "CHATD_SLOW_QUERY_MS", "200",
	    "log database statements slower than this (0: off)", 0, NULL},
	{"query-timeout-ms", "CHATD_QUERY_TIMEOUT_MS", "2000",
	    "a search still running after this many ms answers 503 (0: no "
	    "limit)", 0, NULL},
	{"db-wait-ms", "CHATD_DB_WAIT_MS", "5000",
	    "ms a change waits for a database lock another process holds", 0,
	    NULL},
	{"config", "CHATD_CONFIG", NULL,
	    "config file of \"name = value\" lines (these options)", 0, NULL},
	{"help", NULL, NULL, "show this help", 1, NULL},
	{"version", NULL, NULL, "show the version", 1, NULL},
	{"room", NULL, NULL, "only this room", 0, "export"},
	{"since", NULL, NULL, "only messages changed after this seq", 0,
	    "export"},
	{"until", NULL, NULL, "only messages sent at or before this time (ms)",
	    0, "export"},
	{"private", NULL, NULL, "a private room (members invite)", 2,
	    "room create"},
	{"owner", NULL, NULL, "its owner (a username)", 0, "room create"},
	{"topic", NULL, NULL, "its topic (0-250 characters)", 0,
	    "room create"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Per option: where its value came from and the value (check-config). */
static enum option_source option_src[NOPTIONS];
static const char *option_val[NOPTIONS];

void
config_usage(FILE *f)
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
	    "       chatd [options] room create NAME [--private] "
	    "[--owner USER] [--topic T]\n"
	    "       chatd [options] room role ROOM USER "
	    "owner|moderator|member\n"
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
	fprintf(f, "\ncommand options:\n");
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].cmd != NULL)
			fprintf(f, "  --%-16s %s (%s)\n", options[i].name,
			    options[i].help, options[i].cmd);
}

/* Parses a whole non-negative number from s into *out. 0 or -1. */
static int
config_parse_num(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return *s == '\0' || *end != '\0' || errno || *out < 0 ? -1 : 0;
}

/* Parses a whole non-negative integer from s into *out. 0 or -1. */
static int
config_parse_int64(const char *s, int64_t *out)
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
	else if (strcmp(name, "redis") == 0)
		cfg->redis_url = val;
	else if (strcmp(name, "redis-password-file") == 0)
		cfg->redis_password_file = val;
	else if (strcmp(name, "node-id") == 0)
		cfg->node_id = val;
	else if (strcmp(name, "web") == 0)
		cfg->web_dir = val;
	else if (strcmp(name, "files") == 0)
		cfg->files_dir = val;
	else if (strcmp(name, "max-upload-mb") == 0) {
		if (config_parse_int64(val, &cfg->max_upload_mb) != 0 ||
		    cfg->max_upload_mb < 1 || cfg->max_upload_mb > 1048576)
			goto bad;
	} else if (strcmp(name, "upload-quota-mb") == 0) {
		if (config_parse_int64(val, &cfg->upload_quota_mb) != 0 ||
		    cfg->upload_quota_mb > 1048576 * 1024LL)
			goto bad;
	}
	else if (strcmp(name, "tls-cert") == 0)
		cfg->tls_cert = val;
	else if (strcmp(name, "tls-key") == 0)
		cfg->tls_key = val;
	else if (strcmp(name, "config") == 0)
		cfg->config_file = val;
	else if (strcmp(name, "room") == 0)
		cfg->export_room = val;
	else if (strcmp(name, "owner") == 0)
		cfg->room_owner = val;
	else if (strcmp(name, "topic") == 0)
		cfg->room_topic = val;
	else if (strcmp(name, "since") == 0) {
		if (config_parse_int64(val, &cfg->export_since) != 0)
			goto bad;
	} else if (strcmp(name, "until") == 0) {
		if (config_parse_int64(val, &cfg->export_until) != 0)
			goto bad;
	} else if (strcmp(name, "origin") == 0) {
		if (cfg->norigins == MAX_ORIGINS)
			goto bad;
		cfg->origins[cfg->norigins++] = val;
	} else if (strcmp(name, "trusted-proxy") == 0) {
		char why[128];

		if (proxy_list_parse(&cfg->trusted_proxies, val, why,
			sizeof why) != 0) {
			fprintf(stderr,
			    "chatd: invalid value for --trusted-proxy: %s\n",
			    why);
			return -1;
		}
	} else if (strcmp(name, "registration") == 0) {
		if (strcmp(val, "open") && strcmp(val, "closed"))
			goto bad;
		cfg->registration_open = strcmp(val, "open") == 0;
	} else if (strcmp(name, "rate-limits") == 0) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			goto bad;
		cfg->rate_limits = strcmp(val, "on") == 0;
	} else if (strcmp(name, "ws-compression") == 0) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			goto bad;
		cfg->ws_compression = strcmp(val, "on") == 0;
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
		if (config_parse_num(val, &num) != 0)
			goto bad;
		if (strcmp(name, "msg-rate") == 0)
			cfg->msg_rate = num;
		else if (strcmp(name, "msg-burst") == 0)
			cfg->msg_burst = num < 1 ? 1 : num;
		else if (strcmp(name, "token-days") == 0 && num > 0)
			cfg->token_ttl_ms = (int64_t)(num * 86400000.0);
		else if (strcmp(name, "max-rooms-per-user") == 0 && num >= 1 &&
		    num <= 1000000)
			cfg->max_rooms_per_user = (int)num;
		else if (strcmp(name, "max-rooms-created-per-hour") == 0 &&
		    num <= 1000000)
			cfg->max_rooms_per_hour = (int)num;
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
		else if (strcmp(name, "query-timeout-ms") == 0 && num >= 0 &&
		    num <= 3600000)
			cfg->query_timeout_ms = (int)num;
		else if (strcmp(name, "db-wait-ms") == 0 && num >= 0 &&
		    num <= 3600000)
			cfg->db_wait_ms = (int)num;
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
config_option_find(const char *name, size_t nl)
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
		o = eq ? config_option_find(name, strlen(name)) : NOPTIONS;
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

/* Reads --redis-password-file for every Redis connection
 * (redis_set_password), refusing a --redis URL with a password too: which
 * one was meant is not for chatd to guess. 0, or -1 after printing why. */
static int
config_redis_password(const struct config *cfg)
{
	char pw[REDIS_PASSWORD_MAX + 2], why[768];
	struct redis_addr a;
	int rc = -1;

	if (cfg->redis_url == NULL) {
		fprintf(stderr, "chatd: --redis-password-file is the password "
		                "of --redis, which is not set\n");
		return -1;
	}
	if (redis_url_parse(cfg->redis_url, &a, why, sizeof why) != 0)
		fprintf(stderr, "chatd: --redis: %s\n", why);
	else if (a.password[0] != '\0')
		fprintf(stderr, "chatd: --redis has a password and "
		                "--redis-password-file is set: give it one "
		                "way, not both\n");
	else if (redis_password_read(cfg->redis_password_file, pw, sizeof pw,
	             why, sizeof why) != 0)
		fprintf(stderr, "chatd: --redis-password-file %s\n", why);
	else {
		redis_set_password(pw);
		rc = 0;
	}
	explicit_bzero(pw, sizeof pw);
	explicit_bzero(&a, sizeof a);
	return rc;
}

int
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
		o = config_option_find(name, eq ? (size_t)(eq - name) : strlen(name));
		if (o == NOPTIONS) {
			fprintf(stderr, "chatd: unknown option '%s' (see "
					"chatd --help)\n", argv[i]);
			return -1;
		}
		if (options[o].flag == 2) {
			cfg->room_private = 1; /* --private, the only switch */
			continue;
		}
		if (options[o].flag) {
			if (strcmp(options[o].name, "help") == 0)
				config_usage(stdout);
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
	if (cfg->files_dir == NULL && cfg->db_path != NULL &&
	    db_url_is_pg(cfg->db_path)) {
		cfg->files_dir = "./chatd.files";
	} else if (cfg->files_dir == NULL && cfg->db_path != NULL) {
		char *d = malloc(strlen(cfg->db_path) + 7);

		if (d == NULL)
			abort();
		sprintf(d, "%s.files", cfg->db_path);
		cfg->files_dir = config_keep(d);
	}
	if (cfg->redis_url != NULL &&
	    (cfg->db_path == NULL || !db_url_is_pg(cfg->db_path))) {
		fprintf(stderr, "chatd: --redis joins nodes that share a "
		                "PostgreSQL database: --db must be a "
		                "postgres:// URI\n");
		return -1;
	}
	if (cfg->redis_password_file != NULL && config_redis_password(cfg) != 0)
		return -1;
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		fprintf(stderr, "chatd: --tls-cert and --tls-key go together\n");
		return -1;
	}
	return 1;
}

/* A problem found by check-config. */
static int
config_check_fail(const char *what, const char *path, const char *why)
{
	fprintf(stderr, "chatd: check-config: %s %s: %s\n", what, path, why);
	return 1;
}

/* check-config: --listen is ADDR:PORT or [V6]:PORT. */
static int
config_check_listen(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	int64_t port;

	if (colon == NULL || config_parse_int64(colon + 1, &port) != 0 ||
	    port > 65535)
		return config_check_fail("--listen", spec, "expected ADDR:PORT");
	return 0;
}

const char *
config_redact(const char *url, char *buf, size_t len)
{
	const char *scheme = strstr(url, "://"), *at, *colon, *pw;
	size_t n;

	if (strncasecmp(url, "redis", 5) == 0 ||
	    strncasecmp(url, "unix:", 5) == 0)
		return redis_url_redact(url, buf, len);
	snprintf(buf, len, "%s", url);
	if (scheme != NULL && (at = strchr(scheme + 3, '@')) != NULL &&
	    (colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3))) !=
	        NULL) {
		n = (size_t)(colon + 1 - url);
		snprintf(buf, len, "%.*s***%s", (int)n, url, at);
	}
	if ((pw = strstr(buf, "password=")) != NULL) {
		char *p = (char *)pw + 9;
		size_t rest = strcspn(p, "& ");

		memmove(p + 3, p + rest, strlen(p + rest) + 1);
		memcpy(p, "***", 3);
	}
	return buf;
}

/* check-config: the database exists and is SQLite, or can be created;
 * or PostgreSQL answers at the URI. */
static int
config_check_db(const char *path)
{
	char head[16], dir[4096], why[256];
	int fd;

	if (db_url_is_pg(path)) {
		if (db_pg_check(path, why, sizeof why) != 0)
			return config_check_fail(
			    "--db", config_redact(path, dir, sizeof dir), why);
		return 0;
	}
	if (access(path, F_OK) != 0) {
		snprintf(dir, sizeof dir, "%s", path);
		if (access(dirname(dir), W_OK | X_OK) != 0)
			return config_check_fail("--db", path,
			    "does not exist and its directory is not "
			    "writable");
		return 0;
	}
	if (access(path, R_OK | W_OK) != 0)
		return config_check_fail("--db", path, strerror(errno));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return config_check_fail("--db", path, strerror(errno));
	if (read(fd, head, sizeof head) != (ssize_t)sizeof head ||
	    memcmp(head, "SQLite format 3", 16) != 0) {
		close(fd);
		return config_check_fail("--db", path, "not a SQLite database");
	}
	close(fd);
	return 0;
}

int
config_check(struct config *cfg, int argc)
{
	struct stat st;
	char why[256];
	int bad = 0;

	if (argc != 0) {
		config_usage(stderr);
		return 2;
	}
	bad |= config_check_listen(cfg->listen);
	bad |= config_check_db(cfg->db_path);
	if (cfg->redis_url != NULL &&
	    redis_check(cfg->redis_url, why, sizeof why) != 0) {
		char shown[4096];

		bad |= config_check_fail("--redis",
		    config_redact(cfg->redis_url, shown, sizeof shown), why);
	}
	if (stat(cfg->web_dir, &st) != 0 || !S_ISDIR(st.st_mode))
		bad |= config_check_fail("--web", cfg->web_dir, "not a directory");
	if (blob_dir_writable(cfg->files_dir, why, sizeof why) != 0)
		bad |= config_check_fail("--files", cfg->files_dir, why);
	if (cfg->tls_cert && access(cfg->tls_cert, R_OK) != 0)
		bad |= config_check_fail("--tls-cert", cfg->tls_cert,
		    strerror(errno));
	if (cfg->tls_key && access(cfg->tls_key, R_OK) != 0)
		bad |= config_check_fail("--tls-key", cfg->tls_key, strerror(errno));
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
		if (option_val[o] == NULL &&
		    strcmp(options[o].name, "files") == 0)
			printf("files = %s\t# default\n", cfg->files_dir);
		else if (option_val[o] != NULL &&
		         (strcmp(options[o].name, "db") == 0 ||
		          strcmp(options[o].name, "redis") == 0)) {
			char buf[4096];

			printf("%s = %s\t# %s\n", options[o].name,
			    config_redact(option_val[o], buf, sizeof buf),
			    source_names[option_src[o]]);
		} else if (option_val[o] != NULL)
			printf("%s = %s\t# %s\n", options[o].name,
			    option_val[o], source_names[option_src[o]]);
	}
	if (bad)
		return 1;
	fprintf(stderr, "chatd: configuration OK\n");
	return 0;
}
