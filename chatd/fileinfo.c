/* chatd/fileinfo.c — file names, types, Content-Disposition and Range */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chatd/fileinfo.h"
#include "chatd/url.h"
#include "chatd/utf8.h"

/* 1 for a byte that may not be in a name: separators, C0 and DEL. */
static int
fileinfo_bad_byte(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '/' || c == '\\';
}

long
fileinfo_name(const char *raw, size_t rawlen, char *out)
{
	const unsigned char *s = (const unsigned char *)raw;
	size_t i = 0, n = 0;
	int hi, lo;

	while (i < rawlen) {
		unsigned char c = s[i];

		if (c == '%') {
			if (rawlen - i < 3)
				return -1;
			if ((hi = url_hexval(s[i + 1])) < 0 ||
			    (lo = url_hexval(s[i + 2])) < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 3;
		} else {
			i++;
		}
		if (n == FILE_NAME_MAX || fileinfo_bad_byte(c))
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (n == 0 || !utf8_valid((const uint8_t *)out, n))
		return -1;
	/* C1 controls, U+0080..U+009F, are C2 80..C2 9F in UTF-8. */
	for (i = 0; i + 1 < n; i++)
		if ((unsigned char)out[i] == 0xc2 &&
		    (unsigned char)out[i + 1] >= 0x80 &&
		    (unsigned char)out[i + 1] <= 0x9f)
			return -1;
	return (long)n;
}

int
fileinfo_query_raw(const char *query, const char *name, const char **val,
                   size_t *len)
{
	size_t nl = strlen(name), n;
	const char *s = query;

	while (s != NULL && *s != '\0') {
		n = strcspn(s, "&");
		if (n > nl && strncmp(s, name, nl) == 0 && s[nl] == '=') {
			*val = s + nl + 1;
			*len = n - nl - 1;
			return 0;
		}
		s += n;
		if (*s == '&')
			s++;
	}
	return -1;
}

/* 1 for a token character (RFC 9110 tchar). */
static int
fileinfo_tchar(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

void
fileinfo_type(const char *ctype, char *out)
{
	size_t n, i, slash = 0, end;

	snprintf(out, FILE_TYPE_MAX + 1, "%s", FILE_TYPE_DEFAULT);
	if (ctype == NULL || (n = strlen(ctype)) == 0 || n > FILE_TYPE_MAX)
		return;
	for (end = 0; end < n && ctype[end] != ';'; end++)
		;
	while (end > 0 && (ctype[end - 1] == ' ' || ctype[end - 1] == '\t'))
		end--;
	for (i = 0; i < end; i++) {
		if (ctype[i] == '/' && slash == 0 && i > 0)
			slash = i;
		else if (!fileinfo_tchar((unsigned char)ctype[i]))
			return;
	}
	if (slash == 0 || slash + 1 >= end)
		return;
	for (i = end; i < n; i++)
		if ((unsigned char)ctype[i] < 0x20 ||
		    (unsigned char)ctype[i] > 0x7e)
			return;
	for (i = 0; i < n; i++)
		out[i] =
		    i < end ? (char)tolower((unsigned char)ctype[i]) : ctype[i];
	out[n] = '\0';
}

int
fileinfo_inline(const char *type)
{
	static const char *const images[] = {"image/png", "image/jpeg",
	                                     "image/gif", "image/webp"};
	size_t n = strcspn(type, "; \t");

	for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
		if (strlen(images[i]) == n &&
		    strncasecmp(type, images[i], n) == 0)
			return 1;
	return 0;
}

/* 1 for an RFC 8187 attr-char, sent as itself in filename*. */
static int
fileinfo_attr_char(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$&+-.^_`|~", c));
}

size_t
fileinfo_disposition(const char *name, int is_inline, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)name;
	size_t n;

	n = (size_t)snprintf(out, FILE_DISPOSITION_MAX, "%s; filename=\"",
	                     is_inline ? "inline" : "attachment");
	/* The fallback for old clients: ASCII, without quote, backslash
	 * or '%' (which some would decode). */
	for (size_t i = 0; s[i] != '\0'; i++)
		out[n++] =
		    s[i] < 0x80 && s[i] != '"' && s[i] != '\\' && s[i] != '%'
		        ? (char)s[i]
		        : '_';
	memcpy(out + n, "\"; filename*=UTF-8''", 20);
	n += 20;
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (fileinfo_attr_char(s[i])) {
			out[n++] = (char)s[i];
		} else {
			out[n++] = '%';
			out[n++] = hex[s[i] >> 4];
			out[n++] = hex[s[i] & 15];
		}
	}
	out[n] = '\0';
	return n;
}

/* Parses digits at *s into *v (no sign, no overflow). 1, or 0 if none. */
static int
fileinfo_num(const char **s, uint64_t *v)
{
	const char *p = *s;

	*v = 0;
	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (*v > (UINT64_MAX - 9) / 10)
			return 0;
		*v = *v * 10 + (uint64_t)(*p - '0');
	}
	*s = p;
	return 1;
}

enum fileinfo_range
fileinfo_range(const char *range, uint64_t size, uint64_t *off, uint64_t *len)
{
	const char *s = range;
	uint64_t first, last;
	int has_first, has_last;

	if (s == NULL || strncasecmp(s, "bytes=", 6) != 0)
		return FILE_RANGE_NONE;
	s += 6;
	while (*s == ' ' || *s == '\t')
		s++;
	has_first = fileinfo_num(&s, &first);
	if (*s++ != '-')
		return FILE_RANGE_NONE;
	has_last = fileinfo_num(&s, &last);
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '\0' || (!has_first && !has_last))
		return FILE_RANGE_NONE; /* several ranges, or bad syntax */
	if (!has_first) {
		/* The last `last` bytes. */
		if (last == 0 || size == 0)
			return FILE_RANGE_UNSATISFIABLE;
		if (last > size)
			last = size;
		*off = size - last;
		*len = last;
		return FILE_RANGE_PARTIAL;
	}
	if (has_last && last < first)
		return FILE_RANGE_NONE; /* invalid: ignored */
	if (first >= size)
		return FILE_RANGE_UNSATISFIABLE;
	if (!has_last || last >= size)
		last = size - 1;
	*off = first;
	*len = last - first + 1;
	return FILE_RANGE_PARTIAL;
}
