/* chatd/chat.h — the chat protocol over WebSocket (PROTOCOL.md) */
#ifndef CHATD_CHAT_H
#define CHATD_CHAT_H

#include <stdint.h>

#include <jansson.h>

struct conn;
struct server;
struct user;

/* The connection callbacks of the chat server. */
extern const struct conn_app chat_app;

/* Sets up rooms, sessions and group commit on srv. 0 or -1. */
int chat_start(struct server *srv);
/* Frees what chat_start made (after every connection is gone). */
void chat_free(struct server *srv);
/* Commits the open group-commit transaction, if any, and delivers what
 * it held. Called before anything reads what clients may see. */
void chat_flush(struct server *srv);
/* Flushes, then adds up to max stored messages to the search indexes in
 * a transaction of its own. Returns how many ids it covered, or -1. */
int64_t chat_index(struct server *srv, int64_t max);
/* An upgraded connection that authenticated with a header: hello. */
void chat_ws_authenticated(struct conn *c, const struct user *u,
    const uint8_t hash[32]);
/* Closes every WebSocket opened with the token hash (logout): 4001. */
void chat_logout(struct server *srv, int64_t user_id, const uint8_t hash[32]);
/* The user's rooms as PROTOCOL.md room states (hello, /api/me); NULL on
 * a database error. */
json_t *chat_room_states(struct server *srv, int64_t user_id);
struct message;
/* The same object, the same bytes as json_dumps(JSON_COMPACT) of it,
 * written by w (history, search, events). */
struct jsonw;
void chat_message_write(struct jsonw *w, const struct message *m);
/* A stored event: {"type": type, ...the message's members, "ref"?}; ref
 * NULL for none. */
void chat_event_write(struct jsonw *w, const char *type,
    const struct message *m, json_t *ref);

#endif
