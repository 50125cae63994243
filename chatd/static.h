/* chatd/static.h — static files from the web root */
#ifndef CHATD_STATIC_H
#define CHATD_STATIC_H

#include "chatd/http_parser.h"

struct conn;

/* Answers a GET or HEAD for a file under the server's web root: the file
 * with its Content-Type and validators (ETag, Last-Modified, 304), or
 * 404 for anything missing or outside the root. */
void static_serve(struct conn *c, const struct http_request *req);
/* The Content-Type for a file name, by extension. */
const char *static_content_type(const char *name);

#endif
