/* chatd/main.c — command line: serve, and the admin commands */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/limiter.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/worker.h"
#include "storage/storage.h"

#define CHATD_VERSION "0.1.0"

/* One option: --name VALUE, also settable as the environment variable
 * env. Flags take no value. */
struct option_def {
	const char *name;
	const char *env;
	const char *def;
	const char *help;
	int flag;
};

static const struct option_def options[] = {
	{"listen", "CHATD_LISTEN", "127.0.0.1:8080", "address and port", 0},
	{"db", "CHATD_DB", "./chat.db", "SQLite database file", 0},
	{"web", "CHATD_WEB", "web", "directory of the web page", 0},
	{"tls-cert", "CHATD_TLS_CERT", NULL, "TLS certificate chain (PEM)", 0},
	{"tls-key", "CHATD_TLS_KEY", NULL, "TLS private key (PEM)", 0},
	{"registration", "CHATD_REGISTRATION", "open", "open or closed", 0},
	{"rate-limits", "CHATD_RATE_LIMITS", "on", "on or off (all limits)", 0},
	{"msg-rate", "CHATD_MSG_RATE", "10",
	    "WebSocket requests per second per connection", 0},
	{"msg-burst", "CHATD_MSG_BURST", "20", "burst of WebSocket requests",
	    0},
	{"origin", "CHATD_ORIGIN", NULL,
	    "extra allowed WebSocket Origin (repeatable; env: comma list)", 0},
	{"token-days", "CHATD_TOKEN_DAYS", "30", "login token lifetime", 0},
	{"max-clients", "CHATD_MAX_CLIENTS", "20000",
	    "connections before accept pauses", 0},
	{"header-timeout", "CHATD_HEADER_TIMEOUT", "10",
	    "seconds to send a request head", 0},
	{"idle-timeout", "CHATD_IDLE_TIMEOUT", "60",
	    "seconds an idle HTTP connection is kept", 0},
	{"log-level", "CHATD_LOG_LEVEL", "info", "error, warn, info or debug",
	    0},
	{"log-format", "CHATD_LOG_FORMAT", "text", "text or json", 0},
	{"help", NULL, NULL, "show this help", 1},
	{"version", NULL, NULL, "show the version", 1},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: chatd [options]                serve\n"
	    "       chatd [options] user add NAME     (password on stdin)\n"
	    "       chatd [options] user passwd NAME  (password on stdin)\n"
	    "       chatd [options] user del NAME\n"
	    "       chatd [options] user list\n\n"
	    "options (each also from its environment variable):\n");
	for (size_t i = 0; i < NOPTIONS; i++)
		fprintf(f, "  --%-16s %-22s %s%s%s%s\n", options[i].name,
		    options[i].env ? options[i].env : "", options[i].help,
		    options[i].def ? " (default: " : "",
		    options[i].def ? options[i].def : "",
		    options[i].def ? ")" : "");
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
	else if (strcmp(name, "origin") == 0) {
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
		else
			goto bad;
	}
	return 0;
bad:
	fprintf(stderr, "chatd: invalid value for --%s: '%s'\n", name, val);
	return -1;
}

/* Defaults, then environment, then flags (anywhere on the line; "--"
 * ends them). The other arguments go to pos[*npos]. Returns 1 to go on,
 * 0 to exit successfully (--help, --version), or -1 on error. */
static int
config_load(struct config *cfg, int argc, char **argv, char **pos, int *npos)
{
	int i, only_pos = 0;

	for (size_t o = 0; o < NOPTIONS; o++) {
		const char *env = options[o].env ? getenv(options[o].env) : NULL;

		if (options[o].def && config_set(cfg, options[o].name,
					  options[o].def) != 0)
			return -1;
		if (env == NULL || *env == '\0')
			continue;
		if (strcmp(options[o].name, "origin") == 0) {
			char *list = strdup(env), *save = NULL, *tok;

			for (tok = strtok_r(list, ",", &save); tok;
			    tok = strtok_r(NULL, ",", &save))
				if (config_set(cfg, "origin", tok) != 0)
					return -1;
			continue; /* list stays allocated: cfg points in */
		}
		if (config_set(cfg, options[o].name, env) != 0)
			return -1;
	}
	*npos = 0;
	for (i = 1; i < argc; i++) {
		const char *name = argv[i] + 2, *eq = strchr(name, '=');
		size_t nl, o;

		if (only_pos || strncmp(argv[i], "--", 2) != 0) {
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (argv[i][2] == '\0') {
			only_pos = 1;
			continue;
		}
		eq = strchr(name, '=');
		nl = eq ? (size_t)(eq - name) : strlen(name);
		for (o = 0; o < NOPTIONS; o++)
			if (strlen(options[o].name) == nl &&
			    strncmp(options[o].name, name, nl) == 0)
				break;
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
		if (config_set(cfg, options[o].name,
			eq ? eq + 1 : argv[++i]) != 0)
			return -1;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		fprintf(stderr, "chatd: --tls-cert and --tls-key go together\n");
		return -1;
	}
	return 1;
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
	char err[512];
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
	if (db_open(&db, cfg->db_path, err, sizeof err) != 0) {
		fprintf(stderr, "chatd: --db %s: %s\n", cfg->db_path, err);
		return 1;
	}
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
	db_close(db);
	return rc;
}

/* Runs the server until SIGTERM/SIGINT. */
static int
cmd_serve(struct config *cfg)
{
	struct server srv;
	int rc;

	memset(&srv, 0, sizeof srv);
	if (auth_hash_password("not a real password", 19, srv.dummy_hash,
		sizeof srv.dummy_hash) != 0)
		return 1;
	if (server_start(&srv, cfg, &chat_app) != 0 || chat_start(&srv) != 0) {
		server_free(&srv);
		return 1;
	}
	if ((srv.worker = worker_new(srv.base, 2)) == NULL) {
		fprintf(stderr, "chatd: cannot start worker threads\n");
		server_free(&srv);
		return 1;
	}
	srv.login_user = limiter_new(1.0 / 60, 5, 4096);
	srv.login_addr = limiter_new(1.0 / 3, 20, 4096);
	srv.register_addr = limiter_new(1.0 / 60, 5, 4096);
	rc = server_run(&srv);
	worker_free(srv.worker);
	chat_flush(&srv);
	server_free(&srv);
	chat_free(&srv);
	limiter_free(srv.login_user);
	limiter_free(srv.login_addr);
	limiter_free(srv.register_addr);
	return rc;
}

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
	if (npos > 0 && strcmp(pos[0], "user") == 0) {
		rc = cmd_user(&cfg, npos - 1, pos + 1);
		free(pos);
		return rc;
	}
	if (npos > 0) {
		fprintf(stderr, "chatd: unknown command '%s' (see chatd "
				"--help)\n", pos[0]);
		free(pos);
		return 2;
	}
	free(pos);
	return cmd_serve(&cfg);
}
