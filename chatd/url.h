/* chatd/url.h — percent-decoding of paths and query strings */
#ifndef CHATD_URL_H
#define CHATD_URL_H

#include <stddef.h>

/*
 * Decodes a request path into out (NUL-terminated). Returns the decoded
 * length, or -1 when the path is malformed (bad %-escape), decodes to a
 * NUL byte or an encoded slash (%2F), or does not fit in outlen.
 */
long url_path_decode(const char *path, char *out, size_t outlen);
/*
 * Finds parameter name in a query string (a=1&b=2, '+' means space) and
 * decodes its value into out. Returns the value's length, -1 if absent,
 * -2 if malformed or too long for outlen.
 */
long url_query_get(const char *query, const char *name, char *out,
    size_t outlen);

/*
 * Decodes one part of a URL's userinfo, [s, end), into out
 * (NUL-terminated): %XX escapes; '+' and '/' are themselves. Returns the
 * decoded length, -1 for a bad escape or a decoded NUL, -2 if it does not
 * fit in outlen.
 */
long url_part_decode(const char *s, const char *end, char *out,
    size_t outlen);

/* The value of a hex digit (any case), or -1. */
int url_hexval(unsigned char c);

#endif
