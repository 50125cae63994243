/* chatd/api.h — the HTTP API, /healthz, /metrics, the /ws upgrade */
#ifndef CHATD_API_H
#define CHATD_API_H

#include "chatd/http_parser.h"

struct conn;
struct server;

/* Routes one HTTP request (the conn_app request callback). */
void api_request(struct conn *c, const struct http_request *req);

#endif
