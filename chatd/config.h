/* chatd/config.h — the settings: command line, environment, config file */
#ifndef CHATD_CONFIG_H
#define CHATD_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "chatd/proxy.h"

#define CHATD_VERSION "0.1.0"
#define MAX_ORIGINS 16

struct config {
	const char *listen;        /* ADDR:PORT */
	const char *db_path;       /* a SQLite file or a PostgreSQL URI */
	const char *redis_url;     /* --redis: the nodes' fan-out; or NULL */
	const char *redis_password_file; /* its password, or NULL */
	const char *node_id;       /* --node-id; default hostname:port */
	const char *web_dir;
	const char *files_dir;     /* uploads' bytes; default DB.files */
	int64_t max_upload_mb;     /* one upload's limit */
	int64_t upload_quota_mb;   /* per user per hour; 0: none */
	const char *tls_cert;
	const char *tls_key;
	const char *origins[MAX_ORIGINS + 1]; /* extra allowed WS origins */
	int norigins;
	/* Peers whose X-Forwarded-For / Forwarded name the client
	 * (--trusted-proxy); empty: none, the headers are never read. */
	struct proxy_list trusted_proxies;
	int registration_open;
	int rate_limits;           /* 0: every limit off */
	double msg_rate;           /* WebSocket requests/s per connection */
	double msg_burst;
	int max_rooms_per_user;    /* memberships; a resource bound, always */
	int max_rooms_per_hour;    /* rooms a user creates; 0: no limit */
	int max_clients;
	int64_t token_ttl_ms;
	int header_timeout;        /* s */
	int idle_timeout;          /* s */
	int ping_interval;         /* s of WebSocket silence before a ping */
	int ws_compression;        /* negotiate permessage-deflate */
	int log_level;
	int log_json;
	int slow_query_ms;         /* log statements slower; 0: off */
	int query_timeout_ms;      /* a search's budget; 0: none */
	int db_wait_ms;            /* a change waits this long for the lock */
	int durability_full;       /* --durability full: fsync every commit */
	const char *config_file;   /* --config, or NULL */
	const char *export_room;   /* chatd export --room */
	int64_t export_since;      /* chatd export --since (seq), -1: none */
	int64_t export_until;      /* chatd export --until (ts), -1: none */
	int room_private;          /* chatd room create --private */
	const char *room_owner;    /* chatd room create --owner, or NULL */
	const char *room_topic;    /* chatd room create --topic, or NULL */
};

/* url with its password (user:PASSWORD@ or password=...; all of a
 * redis:// userinfo without a colon) replaced by ***, into buf: what logs
 * and check-config print of --db and --redis. */
const char *config_redact(const char *url, char *buf, size_t len);

/* Prints the commands and every option with its variable and default. */
void config_usage(FILE *f);
/* Fills cfg from the defaults, then the config file, then the
 * environment, then the flags (anywhere on the line; "--" ends them).
 * The other arguments go to pos[*npos] (pos holds argc). Returns 1 to go
 * on, 0 to exit successfully (--help, --version), or -1 after printing
 * why. Reads --redis-password-file (redis_set_password). cfg points into argv and into strings kept until exit. */
int config_load(struct config *cfg, int argc, char **argv, char **pos,
    int *npos);
/* chatd check-config: validates the settings and prints them with where
 * each came from; starts nothing. Exit status: 0, 1 if a setting is
 * bad, 2 on extra arguments. */
int config_check(struct config *cfg, int argc);

#endif
