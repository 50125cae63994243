/* chatd/url.c — percent-decoding of paths and query strings */
#include <string.h>

#include "chatd/url.h"

#define URL_END (-2)      /* url_next_byte: nothing left */
#define URL_BAD (-1)      /* url_next_byte: malformed escape */
#define URL_ESCAPED 0x100 /* url_next_byte: the byte came from %XX */

/* Value of a hex digit, or -1. */
int
url_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes the byte at *s (before end), advancing *s past it: a %XX
 * escape (returned or'ed with URL_ESCAPED), or with form set a '+'
 * meaning space, or a literal byte. URL_END at end, URL_BAD for a bad
 * escape.
 */
static int
url_next_byte(const char **s, const char *end, int form)
{
	const char *p = *s;
	int hi, lo;

	if (p >= end)
		return URL_END;
	if (*p == '%') {
		if (end - p < 3 || (hi = url_hexval(p[1])) < 0 ||
		    (lo = url_hexval(p[2])) < 0)
			return URL_BAD;
		*s = p + 3;
		return URL_ESCAPED | hi << 4 | lo;
	}
	*s = p + 1;
	if (form && *p == '+')
		return ' ';
	return (unsigned char)*p;
}

#define URL_PLUS 1  /* url_decode: '+' is a space (a query) */
#define URL_SLASH 2 /* url_decode: %2F may decode to '/' */

/*
 * Decodes [s, end) into out, NUL-terminated. Refuses (-1) a bad escape, a
 * decoded NUL, or an encoded '/' without URL_SLASH; -2 if out is too
 * small. flags: URL_PLUS, URL_SLASH.
 */
static long
url_decode(const char *s, const char *end, int flags, char *out,
    size_t outlen)
{
	size_t n = 0;
	int c;

	while ((c = url_next_byte(&s, end, flags & URL_PLUS)) != URL_END) {
		if (c == URL_BAD || (c & 0xff) == '\0' ||
		    (!(flags & URL_SLASH) && c == (URL_ESCAPED | '/')))
			return -1;
		if (n + 1 >= outlen)
			return -2;
		out[n++] = (char)(c & 0xff);
	}
	if (outlen == 0)
		return -2;
	out[n] = '\0';
	return (long)n;
}

long
url_path_decode(const char *path, char *out, size_t outlen)
{
	long n;

	if (path == NULL || out == NULL)
		return -1;
	n = url_decode(path, path + strlen(path), 0, out, outlen);
	return n < 0 ? -1 : n;
}

long
url_part_decode(const char *s, const char *end, char *out, size_t outlen)
{
	return url_decode(s, end, URL_SLASH, out, outlen);
}

/* 1 if the query key [s, end) decodes to exactly name. */
static int
url_key_matches(const char *s, const char *end, const char *name)
{
	int c;

	while ((c = url_next_byte(&s, end, 1)) != URL_END) {
		if (c == URL_BAD || (c & 0xff) == '\0' ||
		    (c & 0xff) != (unsigned char)*name)
			return 0;
		name++;
	}
	return *name == '\0';
}

long
url_query_get(const char *query, const char *name, char *out, size_t outlen)
{
	const char *s = query, *end, *eq;
	long n;

	if (query == NULL || name == NULL)
		return -1;
	while (*s != '\0') {
		end = s + strcspn(s, "&");
		eq = memchr(s, '=', (size_t)(end - s));
		if (end > s && url_key_matches(s, eq ? eq : end, name)) {
			n = url_decode(eq ? eq + 1 : end, end, URL_PLUS | URL_SLASH, out,
			    outlen);
			return n < 0 ? -2 : n;
		}
		s = *end != '\0' ? end + 1 : end;
	}
	return -1;
}
