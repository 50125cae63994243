/* chatd/server.h — the server: listener, signals, shared state */
#ifndef CHATD_SERVER_H
#define CHATD_SERVER_H

/*
 * Above conn and http, below the application (static, api, hub, chat*):
 * the server owns the listener and the shared state, and lends each
 * connection what it needs through struct conn_env (chatd/conn.h).
 */

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
struct reader;
struct limiter;
struct files;

#define MAX_CLIENTS 20000   /* accept pauses above this many connections */

struct server {
	struct config *cfg;
	size_t ws_max_message;       /* 0: WS_MAX_MESSAGE */
	struct event_base *base;
	struct evconnlistener *listener;
	struct ssl_ctx_st *ssl;
	struct db *db;
	struct chat *chat;           /* rooms, sessions, group commit */
	struct chat_cluster *cluster; /* the other nodes; NULL: one node */
	struct worker *worker;       /* password hashing threads */
	struct reader *reader;       /* search threads (chatd/reader.c) */
	struct reader *gauges;       /* one thread: /metrics' database counts */
	struct files *files;         /* uploads (chatd/files.c) */
	struct limiter *login_user;  /* failed logins per username */
	struct limiter *login_addr;  /* failed logins per address */
	struct limiter *register_addr;
	struct limiter *room_create;  /* rooms created per username; NULL:
	                                 no limit */
	struct event *sig_term;
	struct event *sig_int;
	struct event *accept_timer;  /* re-enables accept after EMFILE */
	struct conn_env env;         /* lent to every conn; its list of them */
	int listener_paused;
	char web_root[4096];         /* realpath of cfg->web_dir */
	char dummy_hash[128];        /* for equal-time failed logins */
	struct metrics m;
	int64_t started_ms;
};

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
/* Milliseconds since the Unix epoch. */
int64_t now_ms(void);

#endif
