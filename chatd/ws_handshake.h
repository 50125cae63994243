/* chatd/ws_handshake.h — the RFC 6455 opening handshake (sans-IO) */
#ifndef CHATD_WS_HANDSHAKE_H
#define CHATD_WS_HANDSHAKE_H

#include <stddef.h>

#include "chatd/http_parser.h"

#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */
#define WS_EXT_LEN 128   /* room for the Sec-WebSocket-Extensions answer */

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
/*
 * Negotiates permessage-deflate (RFC 7692): reads every offer in the
 * Sec-WebSocket-Extensions headers in order and accepts the first that
 * is well-formed and acceptable: only server_no_context_takeover,
 * client_no_context_takeover, server_max_window_bits (accepted only as
 * 15, the window the server deflates with) and client_max_window_bits,
 * each at most once with a valid value (8-15, quoted or not). A malformed
 * or unacceptable offer is declined, never failed. The answer always asks
 * for no context takeover both ways (each message stands alone), and
 * names client_max_window_bits when the offer had a value for it.
 * Returns the window bits the client deflates with (8-15) and writes the
 * header's value into ext; 0 if no offer was accepted (ext is "").
 */
int ws_handshake_deflate(const struct http_request *req,
    char ext[WS_EXT_LEN]);
/* Writes the 101 response head into out; returns its length, or 0 if
 * outlen is too small. */
size_t ws_handshake_response(char *out, size_t outlen, const char *accept);
/* ws_handshake_response with a Sec-WebSocket-Extensions header of value
 * ext, unless ext is NULL or "". */
size_t ws_handshake_response_ext(char *out, size_t outlen, const char *accept,
    const char *ext);

#endif
