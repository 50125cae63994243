/* chatd/http.h — HTTP responses: status lines, headers, JSON errors */
#ifndef CHATD_HTTP_H
#define CHATD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chatd/http_parser.h"

struct conn;

/* The reason phrase for status ("Unknown" if none). */
const char *http_reason(int status);
/*
 * Writes a whole response. req may be NULL (parse errors); without
 * keep-alive the connection closes after the write. extra is NULL or
 * header lines, each ending in CRLF. A HEAD request gets no body.
 */
void http_respond(struct conn *c, const struct http_request *req, int status,
    const char *ctype, const void *body, size_t len, const char *extra);
/*
 * Sends a file: the status line, headers (each line ending in CRLF: the
 * caller's, not the page's security headers) and len bytes of fd from
 * offset, streamed with backpressure (conn_send_file). Takes fd. A HEAD
 * request gets the head only.
 */
void http_respond_file(struct conn *c, const struct http_request *req,
    int status, const char *headers, int fd, uint64_t offset, uint64_t len);
/* Responds with obj encoded as JSON; takes the reference to obj. */
void http_respond_json(struct conn *c, const struct http_request *req,
    int status, json_t *obj);
/* Responds {"error":{"code","message"}}. */
void http_respond_error(struct conn *c, const struct http_request *req,
    int status, const char *code, const char *message);
/* The error response for a request that could not be parsed or timed
 * out (400, 408, 413, 431, 501, 505); the connection then closes. */
void http_respond_error_status(struct conn *c, int status);

#endif
