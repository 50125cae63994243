/* chatd/api.h — the HTTP API, /healthz, /metrics, the /ws upgrade */
#ifndef CHATD_API_H
#define CHATD_API_H

#include "chatd/http_parser.h"

struct conn;
struct server;

/* The server's connection callbacks: HTTP requests here, WebSockets in
 * chat.c. */
extern const struct conn_app api_app;
/* Routes one HTTP request (api_app's request callback). */
void api_request(struct conn *c, const struct http_request *req);

#endif
