/* chatd/api.h — the HTTP API, /healthz, /metrics, the /ws upgrade */
#ifndef CHATD_API_H
#define CHATD_API_H

#include <stdint.h>

#include <jansson.h>

#include "chatd/http_parser.h"

struct conn;
struct server;

/* Routes one HTTP request (the conn_app request callback). */
void api_request(struct conn *c, const struct http_request *req);
/* A page of room history as message objects written to w, an open
 * array (PROTOCOL.md Paging; before/after -1 when absent). 0 or -1 (w
 * then holds part of the page). */
struct jsonw;
int api_history(struct server *srv, int64_t room_id, int64_t before,
    int64_t after, int limit, struct jsonw *w, int *has_more);
/* The user's room states appended to rooms. 0 or -1. */
int api_room_states(struct server *srv, int64_t user_id, json_t *rooms);

#endif
