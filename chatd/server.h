/* chatd/server.h — the server: configuration, listener, shared state */
#ifndef CHATD_SERVER_H
#define CHATD_SERVER_H

#include <stdint.h>

#include "chatd/config.h"
#include "chatd/conn.h"
#include "chatd/metrics.h"

struct event_base;
struct evconnlistener;
struct event;
struct ssl_ctx_st;
struct db;
struct chat;
struct worker;
struct limiter;
struct ws_deflate;

#define MAX_CLIENTS 20000   /* accept pauses above this many connections */

/* Counters exported at /metrics: plain integers, bumped on the loop. */
struct metrics {
	uint64_t conns_accepted;
	uint64_t http_requests;
	uint64_t http_status[6];     /* by class: 1xx..5xx at [1..5] */
	uint64_t ws_upgrades;
	uint64_t ws_messages_in;
	uint64_t messages_stored;
	uint64_t deliveries;
	uint64_t rate_limited;
	uint64_t commits;
	uint64_t ws_close_codes[16]; /* see metrics_close_index */
	uint64_t auth_failures;
	uint64_t password_checks;    /* login Argon2 verifications run */
	uint64_t hash_busy;          /* 503 busy: hashing queue full */
	uint64_t http_route[ROUTE_COUNT][6]; /* by route and status class */
	int64_t txn_start_us;        /* metrics_now_us() at db_begin */
	int64_t commit_us;           /* metrics_now_us() after the commit */
	struct histogram txn_time;   /* group commit: BEGIN to COMMIT done */
	struct histogram delivery;   /* commit to frames queued */
	uint64_t deflate_runs;       /* messages run through deflate */
	uint64_t deflate_frames;     /* compressed frames sent */
	uint64_t deflate_plain_bytes; /* to deflating peers: frames' bytes
	                                 had all gone uncompressed */
	uint64_t deflate_sent_bytes; /* ... and the bytes of what was sent */
};

struct server {
	struct config *cfg;
	const struct conn_app *app;
	size_t ws_max_message;       /* 0: WS_MAX_MESSAGE */
	struct event_base *base;
	struct evconnlistener *listener;
	struct ssl_ctx_st *ssl;
	struct db *db;
	struct chat *chat;           /* rooms, sessions, group commit */
	struct worker *worker;       /* password hashing threads */
	struct limiter *login_user;  /* failed logins per username */
	struct limiter *login_addr;  /* failed logins per address */
	struct limiter *register_addr;
	struct ws_deflate *deflate;  /* the one compressor, made on first use */
	struct event *sig_term;
	struct event *sig_int;
	struct event *accept_timer;  /* re-enables accept after EMFILE */
	struct conn_list conns;
	unsigned nconns;
	uint64_t next_conn_id;
	int listener_paused;
	int stopping;
	char web_root[4096];         /* realpath of cfg->web_dir */
	char dummy_hash[128];        /* for equal-time failed logins */
	struct metrics m;
	int64_t started_ms;
};

/* Counts a WebSocket close code in m->ws_close_codes. */
void metrics_close_code(struct metrics *m, int code);
/* Opens the database, binds the listener and sets up signals. 0, or -1
 * after printing one line saying why. */
int server_start(struct server *srv, struct config *cfg,
    const struct conn_app *app);
/* Runs the loop until SIGTERM/SIGINT, then shuts down cleanly. */
int server_run(struct server *srv);
/* Closes every connection (the application's gone callback runs). */
void server_close_conns(struct server *srv);
/* Frees everything server_start made. */
void server_free(struct server *srv);
/* A connection left: lets accept resume if it was paused. */
void server_conn_gone(struct server *srv);
/* Milliseconds since the Unix epoch. */
int64_t now_ms(void);

#endif
