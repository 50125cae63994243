/* chatd/chat.h — the chat protocol over WebSocket (PROTOCOL.md) */
#ifndef CHATD_CHAT_H
#define CHATD_CHAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct conn;
struct server;
struct user;

#define CHAT_AUTH_TIMEOUT 10 /* s to send the auth message */

/* The WebSocket side of the server's connection callbacks (conn_app;
 * api_app in api.c holds them with the HTTP side): */
/* A fresh WebSocket: its session, not yet authenticated. */
void chat_ws_open(struct conn *c);
/* One request (PROTOCOL.md), answered or queued. Always 0: a connection
 * it closes is only marked. */
int chat_ws_message(struct conn *c, int binary, uint8_t *data, size_t len);
/* A connection is going away: presence, subscriptions, pending actions. */
void chat_gone(struct conn *c);

/* Sets up rooms, sessions and group commit on srv. 0 or -1. */
int chat_start(struct server *srv);
/* Frees what chat_start made (after every connection is gone). */
void chat_free(struct server *srv);
/* Commits the open group-commit transaction, if any, and delivers what
 * it held. Called before anything reads what clients may see. */
void chat_flush(struct server *srv);
/* Flushes, then adds up to max stored messages to the search indexes in
 * a transaction of its own. Returns how many ids it covered, -1, or
 * DB_BUSY (another process holds the write lock). */
int64_t chat_index(struct server *srv, int64_t max);
/* How long (ms) the oldest change waiting for the database's write lock
 * has waited; 0 if none waits. */
int64_t chat_lock_wait_ms(struct server *srv);
/* Changes waiting for the write lock. */
unsigned chat_lock_waiting(struct server *srv);
/* Writes the chatd_cluster_* lines of /metrics (several nodes; nothing
 * without --redis). */
void chat_cluster_metrics(struct server *srv, FILE *f);
/* 1 if changes have waited for the write lock long enough that /healthz
 * reports the server stalled: min(1 s, half of --db-wait-ms). */
int chat_stalled(struct server *srv);
/* An upgraded connection that authenticated with a header: hello. */
void chat_ws_authenticated(struct conn *c, const struct user *u,
    const uint8_t hash[32]);
/* Closes every WebSocket opened with the token hash (logout): 4001. */
void chat_logout(struct server *srv, int64_t user_id, const uint8_t hash[32]);
struct jsonw;
/* Writes the user's rooms as a JSON array of PROTOCOL.md room states
 * into w (hello, /api/me): two row reads a room, no message read (the
 * unread counts are counters). 0, or -1 on a database error (w then
 * holds part of the array). */
int chat_room_states(struct server *srv, int64_t user_id, struct jsonw *w);
struct message;
/* The same object, the same bytes as json_dumps(JSON_COMPACT) of it,
 * written by w (history, search, events). */
void chat_message_write(struct jsonw *w, const struct message *m);
/* A stored event: {"type": type, ...the message's members, "ref"?}; ref
 * NULL for none. */
void chat_event_write(struct jsonw *w, const char *type,
    const struct message *m, json_t *ref);
/* A message_cb writing each message into w, an open array. Always 0. */
int chat_message_cb(void *w, const struct message *m);
/* Whether user_id may read a room of kind (PROTOCOL.md v2): members
 * always (member: known to be one); others public rooms they are not
 * banned from. 1 may, 0 may not, -1 on a database error. */
int chat_message_readable(struct server *srv, int64_t room_id, int kind,
    int64_t user_id, int member);
/* 1 if the user has an authenticated WebSocket (GET /api/users). */
int chat_user_online(struct server *srv, int64_t user_id);
/* The paging rules of a history request, as the bad_request message of
 * both the WebSocket and the HTTP history. */
#define CHAT_PAGE_RULES                                                      \
	"before/after/around/limit: non-negative integers, at most one of "  \
	"before, after and around, limit 1-100"
/* 1 if before/after/limit (-1 when absent) make a valid page request. */
int chat_message_page_ok(int64_t before, int64_t after, int64_t limit);
/* A page of room history (PROTOCOL.md Paging) written into w, an open
 * object, as its members "messages" and "has_more"; before/after/limit
 * -1 when absent (limit: 50). 0 or -1 (w then holds part of the page). */
int chat_message_page(struct server *srv, int64_t room_id, int64_t before,
    int64_t after, int64_t limit, struct jsonw *w);
/* A page around message id around (PROTOCOL.md "Replies and jumping")
 * written into w, an open object, as "messages", "has_more_before" and
 * "has_more_after"; limit -1 when absent. 0 or -1. */
int chat_message_around(struct server *srv, int64_t room_id, int64_t around,
    int64_t limit, struct jsonw *w);

#endif
