/* chatd/ws_handshake.h — the RFC 6455 opening handshake (sans-IO) */
#ifndef CHATD_WS_HANDSHAKE_H
#define CHATD_WS_HANDSHAKE_H

#include <stddef.h>

#include "chatd/http_parser.h"

#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/*
 * Checks an upgrade request (method GET, HTTP/1.1, Upgrade: websocket,
 * Connection listing Upgrade, a Sec-WebSocket-Key of 16 base64 bytes,
 * Sec-WebSocket-Version: 13) and its Origin: absent is allowed; else it
 * must equal the request's own origin ("http://" or "https://" per tls,
 * then Host, default ports folded) or one of allowed_origins (a NULL-
 * terminated list, may be NULL); "null" never matches.
 * Returns 0 and fills accept (NUL-terminated), or the HTTP status to
 * answer: 400 bad request, 426 wrong version (answer with
 * Sec-WebSocket-Version: 13), 403 origin refused.
 */
int ws_handshake_check(const struct http_request *req, int tls,
    const char *const *allowed_origins, char accept[WS_ACCEPT_LEN + 1]);
/* Computes Sec-WebSocket-Accept for key (SHA-1 + base64, RFC 6455 4.2.2). */
void ws_handshake_accept(const char *key, char accept[WS_ACCEPT_LEN + 1]);
/* Writes the 101 response head into out; returns its length, or 0 if
 * outlen is too small. */
size_t ws_handshake_response(char *out, size_t outlen, const char *accept);

#endif
