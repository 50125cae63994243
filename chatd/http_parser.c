/* chatd/http_parser.c — sans-IO HTTP/1.1 request parser (RFC 9112) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chatd/http_parser.h"
#include "chatd/url.h"
#include "chatd/xmalloc.h"

#define HEAD_INITIAL 256    /* first allocation of the head buffer */
#define HEAD_KEEP 1024      /* head buffers this small survive a reset */
#define BODY_INITIAL 1024   /* first allocation of the body buffer */
#define BODY_KEEP 4096      /* body buffers this small survive a reset */
#define CHUNK_LINE_MAX 1024 /* a chunk-size line, extensions included */

/* Sub-states while reading the body (p->sub in state BODY). */
enum {
	SUB_LENGTH = 0,    /* a Content-Length body */
	SUB_SIZE_FIRST,    /* first hex digit of a chunk size */
	SUB_SIZE,          /* further hex digits */
	SUB_SIZE_BWS,      /* blanks after the size, before ';' */
	SUB_EXT,           /* a chunk extension, ignored up to CR */
	SUB_SIZE_LF,       /* the LF ending a chunk-size line */
	SUB_DATA,          /* chunk data */
	SUB_DATA_CR,       /* the CR after chunk data */
	SUB_DATA_LF,       /* the LF after chunk data */
	SUB_TRAILER_START, /* first byte of a trailer line or the final CR */
	SUB_TRAILER,       /* inside a trailer line, ignored up to CR */
	SUB_TRAILER_LF,    /* the LF ending a trailer line */
	SUB_END_LF,        /* the LF of the empty line ending the message */
};

static int http_body_start(struct http_parser *p);

static const struct {
	const char *name;
	enum http_method method;
} http_methods[] = {
    {"GET", HTTP_GET},     {"HEAD", HTTP_HEAD},       {"POST", HTTP_POST},
    {"PUT", HTTP_PUT},     {"DELETE", HTTP_DELETE},   {"OPTIONS", HTTP_OPTIONS},
    {"PATCH", HTTP_PATCH}, {"CONNECT", HTTP_CONNECT}, {"TRACE", HTTP_TRACE},
};

/* 1 if c may appear in a token (RFC 9110 tchar). */
static int
http_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* 1 if c is a control character other than HTAB (forbidden in values). */
static int
http_is_bad_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* 1 for optional whitespace (SP or HTAB). */
static int
http_is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* 1 for a decimal digit. */
static int
http_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Enters state ERROR and returns err, which later feeds repeat. */
static ssize_t
http_parser_fail(struct http_parser *p, int err)
{
	p->state = HTTP_PARSER_ERROR;
	p->error = err;
	return err;
}

/* Forgets everything about the current request but the buffers. */
static void
http_parser_clear(struct http_parser *p)
{
	p->state = HTTP_PARSER_HEAD;
	p->head_len = 0;
	p->body_len = 0;
	p->sub = 0;
	p->remaining = 0;
	p->line_len = 0;
	p->line_start = 0;
	p->error = 0;
	p->stream = 0;
	p->streamed = 0;
	p->max_body = p->max_body0;
	p->chunk = NULL;
	p->chunk_len = 0;
	memset(&p->req, 0, sizeof(p->req));
	p->req.content_length = -1;
}

void
http_parser_init(struct http_parser *p, size_t max_head, size_t max_body)
{
	memset(p, 0, sizeof(*p));
	p->max_head = max_head ? max_head : HTTP_MAX_HEAD;
	p->max_body0 = max_body ? max_body : HTTP_MAX_BODY;
	http_parser_clear(p);
}

void
http_parser_defer_body(struct http_parser *p, int on)
{
	p->defer = on;
}

void
http_parser_free(struct http_parser *p)
{
	free(p->head);
	free(p->body);
	p->head = NULL;
	p->body = NULL;
	p->head_cap = 0;
	p->body_cap = 0;
	http_parser_clear(p);
}

void
http_parser_reset(struct http_parser *p)
{
	/* An idle keep-alive connection keeps only small buffers. */
	if (p->head_cap > HEAD_KEEP) {
		free(p->head);
		p->head = NULL;
		p->head_cap = 0;
	}
	if (p->body_cap > BODY_KEEP) {
		free(p->body);
		p->body = NULL;
		p->body_cap = 0;
	}
	http_parser_clear(p);
}

/* Grows the head buffer to hold at least need bytes. */
static void
http_head_reserve(struct http_parser *p, size_t need)
{
	size_t cap = p->head_cap ? p->head_cap : HEAD_INITIAL;

	if (need <= p->head_cap)
		return;
	while (cap < need)
		cap *= 2;
	if (cap > p->max_head && need <= p->max_head)
		cap = p->max_head;
	p->head = xrealloc(p->head, cap);
	p->head_cap = cap;
}

/* Appends n body bytes; callers have checked them against max_body.
 * Streaming, it only records them as the feed's chunk. */
static void
http_body_append(struct http_parser *p, const uint8_t *buf, size_t n)
{
	size_t need = p->body_len + n, cap;

	if (n == 0)
		return;
	if (p->stream) {
		p->chunk = buf;
		p->chunk_len = n;
		p->streamed += n;
		return;
	}
	if (need > p->body_cap) {
		cap = p->body_cap ? p->body_cap : BODY_INITIAL;
		while (cap < need)
			cap *= 2;
		if (cap > p->max_body)
			cap = need > p->max_body ? need : p->max_body;
		p->body = xrealloc(p->body, cap);
		p->body_cap = cap;
	}
	memcpy(p->body + p->body_len, buf, n);
	p->body_len = need;
}

/* Marks the request complete and publishes the body. */
static void
http_parser_done(struct http_parser *p)
{
	p->state = HTTP_PARSER_DONE;
	p->req.body = p->body_len ? p->body : NULL;
	p->req.body_len = p->body_len;
}

/*
 * Cuts the next line off *s: NUL-terminates it in place (dropping its LF
 * or CRLF), stores its length and advances *s past it. The head always
 * ends with LF, so a line is always found; a NUL byte sent by the client
 * is only data here (length-based checks reject it later).
 */
static char *
http_next_line(char **s, const char *end_of_head, size_t *len)
{
	char *line = *s;
	char *nl = memchr(line, '\n', (size_t)(end_of_head - line));
	char *end = nl;

	if (end > line && end[-1] == '\r')
		end--;
	*end = '\0';
	*nl = '\0';
	*len = (size_t)(end - line);
	*s = nl + 1;
	return line;
}

/* Parses "HTTP/x.y": the minor version, HTTP_E_VERSION or 400. */
static int
http_parse_version(const char *v, size_t len)
{
	if (len != 8 || memcmp(v, "HTTP/", 5) != 0 || !http_is_digit(v[5]) ||
	    v[6] != '.' || !http_is_digit(v[7]))
		return HTTP_E_BAD_REQUEST;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return HTTP_E_VERSION;
	return v[7] - '0';
}

/* Maps a method token to its enum (case-sensitive, as RFC 9110 says). */
static enum http_method
http_method_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
		if (strcmp(name, http_methods[i].name) == 0)
			return http_methods[i].method;
	return HTTP_UNKNOWN;
}

/*
 * Parses "method SP target SP version" in place. pathbuf has room for a
 * copy of the target, where path is split from the query.
 */
static int
http_parse_request_line(struct http_request *req, char *line, size_t len,
                        char *pathbuf)
{
	size_t i = 0, t;
	char *q;
	int minor;

	while (i < len && http_is_tchar(line[i]))
		i++;
	if (i == 0 || i == len || line[i] != ' ')
		return HTTP_E_BAD_REQUEST;
	line[i++] = '\0';
	t = i;
	while (i < len && (unsigned char)line[i] > 0x20 &&
	       (unsigned char)line[i] < 0x7f)
		i++;
	if (i == t || i == len || line[i] != ' ')
		return HTTP_E_BAD_REQUEST;
	line[i++] = '\0';
	if ((minor = http_parse_version(line + i, len - i)) < 0)
		return minor;
	req->method_name = line;
	req->method = http_method_lookup(line);
	req->target = line + t;
	req->minor = minor;
	memcpy(pathbuf, line + t, i - t);
	req->path = pathbuf;
	if ((q = strchr(pathbuf, '?')) != NULL) {
		*q = '\0';
		req->query = req->target + (q - pathbuf) + 1;
	}
	return 0;
}

/* Parses one "name: value" field line in place and records it. */
static int
http_parse_header(struct http_request *req, char *line, size_t len)
{
	size_t i = 0, v, e;

	if (len > 0 && http_is_ows(line[0]))
		return HTTP_E_BAD_REQUEST; /* obs-fold */
	while (i < len && http_is_tchar(line[i]))
		i++;
	if (i == 0 || i == len || line[i] != ':')
		return HTTP_E_BAD_REQUEST;
	line[i] = '\0';
	for (v = i + 1; v < len; v++)
		if (http_is_bad_ctl(line[v]))
			return HTTP_E_BAD_REQUEST;
	for (v = i + 1; v < len && http_is_ows(line[v]); v++)
		;
	for (e = len; e > v && http_is_ows(line[e - 1]); e--)
		;
	line[e] = '\0';
	if (req->nheaders == HTTP_MAX_HEADERS)
		return HTTP_E_HEAD_TOO_LARGE;
	req->headers[req->nheaders].name = line;
	req->headers[req->nheaders].value = line + v;
	req->nheaders++;
	return 0;
}

/* Parses a Content-Length value: digits only; -1 if malformed or huge. */
static int64_t
http_parse_length(const char *s)
{
	int64_t n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!http_is_digit(*s) || n > (INT64_MAX - (*s - '0')) / 10)
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

/* Derives framing, keep-alive and expectations from the fields. */
static int
http_apply_headers(struct http_parser *p)
{
	struct http_request *req = &p->req;
	int hosts = 0, te = 0, te_other = 0, conn_close = 0, conn_ka = 0;
	int64_t n;
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		const char *name = req->headers[i].name;
		const char *value = req->headers[i].value;

		if (strcasecmp(name, "Host") == 0) {
			hosts++;
		} else if (strcasecmp(name, "Content-Length") == 0) {
			if ((n = http_parse_length(value)) < 0)
				return HTTP_E_BAD_REQUEST;
			if (req->content_length >= 0 &&
			    req->content_length != n)
				return HTTP_E_BAD_REQUEST;
			req->content_length = n;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			if (te++ > 0 || *value == '\0')
				return HTTP_E_BAD_REQUEST;
			if (strcasecmp(value, "chunked") == 0)
				req->chunked = 1;
			else
				te_other = 1;
		} else if (strcasecmp(name, "Connection") == 0) {
			conn_close |= http_header_has_token(value, "close");
			conn_ka |= http_header_has_token(value, "keep-alive");
		} else if (strcasecmp(name, "Expect") == 0) {
			if (strcasecmp(value, "100-continue") == 0)
				req->expect_continue = 1;
		}
	}
	if (hosts > 1 || (req->minor == 1 && hosts == 0))
		return HTTP_E_BAD_REQUEST;
	if (te && req->content_length >= 0)
		return HTTP_E_BAD_REQUEST;
	if (te_other)
		return HTTP_E_NOT_IMPLEMENTED;
	if (!p->defer && req->content_length > (int64_t)p->max_body)
		return HTTP_E_BODY_TOO_LARGE;
	/* HTTP/1.0 has no Expect; chunked there means faulty framing. */
	if (req->minor == 0)
		req->expect_continue = 0;
	if (req->minor == 1)
		req->keep_alive = !conn_close;
	else
		req->keep_alive = conn_ka && !conn_close && !te;
	return 0;
}

/* Splits the complete head into the request and picks the body state. */
static int
http_parse_head(struct http_parser *p)
{
	char *s, *line, *nl, *end;
	size_t len, skip = 0;
	int r;

	/* Empty lines before the request-line are ignored (RFC 9112 2.2). */
	while (p->head[skip] == '\n' ||
	       (p->head[skip] == '\r' && p->head[skip + 1] == '\n'))
		skip += p->head[skip] == '\n' ? 1 : 2;
	nl = memchr(p->head + skip, '\n', p->head_len - skip);
	/* Room after the head for the path, split from the query. */
	http_head_reserve(p, p->head_len + (size_t)(nl - p->head) + 1);
	s = p->head + skip;
	end = p->head + p->head_len;
	line = http_next_line(&s, end, &len);
	r = http_parse_request_line(&p->req, line, len, end);
	if (r < 0)
		return r;
	/* The first empty line is the last one: http_head_feed saw to it. */
	for (;;) {
		line = http_next_line(&s, end, &len);
		if (len == 0)
			break;
		if ((r = http_parse_header(&p->req, line, len)) < 0)
			return r;
	}
	if ((r = http_apply_headers(p)) < 0)
		return r;
	if (p->defer && (p->req.chunked || p->req.content_length > 0)) {
		p->state = HTTP_PARSER_HEAD_DONE;
		return 0;
	}
	return http_body_start(p);
}

int
http_parser_body(struct http_parser *p, uint64_t max_body, int stream)
{
	if (p->state != HTTP_PARSER_HEAD_DONE)
		return http_parser_fail(p, HTTP_E_BAD_REQUEST);
	if (max_body != 0)
		p->max_body = max_body;
	p->stream = stream;
	if (p->req.content_length > (int64_t)p->max_body)
		return http_parser_fail(p, HTTP_E_BODY_TOO_LARGE);
	return http_body_start(p);
}

const uint8_t *
http_parser_chunk(const struct http_parser *p, size_t *len)
{
	*len = p->chunk_len;
	return p->chunk_len ? p->chunk : NULL;
}

/* Picks the body state once the head is parsed. 0. */
static int
http_body_start(struct http_parser *p)
{
	if (p->req.chunked) {
		p->state = HTTP_PARSER_BODY;
		p->sub = SUB_SIZE_FIRST;
		p->line_len = 0;
	} else if (p->req.content_length > 0) {
		p->state = HTTP_PARSER_BODY;
		p->sub = SUB_LENGTH;
		p->remaining = (uint64_t)p->req.content_length;
	} else {
		http_parser_done(p);
	}
	return 0;
}

/*
 * Copies head bytes up to the empty line that ends the head. A line is
 * ended by LF or CRLF; a bare CR is caught when the head is parsed.
 */
static ssize_t
http_head_feed(struct http_parser *p, const uint8_t *buf, size_t len)
{
	size_t off = 0, n, line;
	const uint8_t *nl;
	int r;

	while (off < len) {
		nl = memchr(buf + off, '\n', len - off);
		n = nl ? (size_t)(nl - buf) + 1 - off : len - off;
		if (n > p->max_head - p->head_len)
			return http_parser_fail(p, HTTP_E_HEAD_TOO_LARGE);
		http_head_reserve(p, p->head_len + n);
		memcpy(p->head + p->head_len, buf + off, n);
		p->head_len += n;
		off += n;
		if (nl == NULL)
			break;
		line = p->head_len - p->line_start;
		if (line == 1 ||
		    (line == 2 && p->head[p->line_start] == '\r')) {
			if (p->sub) {
				if ((r = http_parse_head(p)) < 0)
					return http_parser_fail(p, r);
				return (ssize_t)off;
			}
		} else {
			p->sub = 1; /* the request-line has begun */
		}
		p->line_start = p->head_len;
	}
	return (ssize_t)off;
}

/* Accumulates one hex digit of a chunk size; 400 on overflow. */
static int
http_chunk_digit(struct http_parser *p, int d)
{
	if (p->remaining > (UINT64_MAX >> 4))
		return HTTP_E_BAD_REQUEST;
	p->remaining = p->remaining << 4 | (uint64_t)d;
	return 0;
}

/* Ends a chunk-size line: checks the size against max_body. */
static int
http_chunk_size_end(struct http_parser *p)
{
	if (p->remaining > p->max_body - (p->stream ? p->streamed :
						      p->body_len))
		return HTTP_E_BODY_TOO_LARGE;
	p->sub = SUB_SIZE_LF;
	return 0;
}

/* Handles one byte of chunked framing outside chunk data. */
static int
http_chunk_byte(struct http_parser *p, unsigned char c)
{
	int d = url_hexval(c);

	switch (p->sub) {
	case SUB_SIZE_FIRST:
		if (d < 0)
			return HTTP_E_BAD_REQUEST;
		p->sub = SUB_SIZE;
		return http_chunk_digit(p, d);
	case SUB_SIZE:
		if (d >= 0)
			return http_chunk_digit(p, d);
		if (c == '\r')
			return http_chunk_size_end(p);
		if (c == ';')
			p->sub = SUB_EXT;
		else if (http_is_ows(c))
			p->sub = SUB_SIZE_BWS;
		else
			return HTTP_E_BAD_REQUEST;
		return 0;
	case SUB_SIZE_BWS:
		if (c == ';')
			p->sub = SUB_EXT;
		else if (!http_is_ows(c))
			return HTTP_E_BAD_REQUEST;
		return 0;
	case SUB_EXT:
		if (c == '\r')
			return http_chunk_size_end(p);
		return http_is_bad_ctl(c) ? HTTP_E_BAD_REQUEST : 0;
	case SUB_SIZE_LF:
		if (c != '\n')
			return HTTP_E_BAD_REQUEST;
		p->line_len = 0;
		p->sub = p->remaining ? SUB_DATA : SUB_TRAILER_START;
		return 0;
	case SUB_DATA_CR:
		p->sub = SUB_DATA_LF;
		return c == '\r' ? 0 : HTTP_E_BAD_REQUEST;
	case SUB_DATA_LF:
		p->sub = SUB_SIZE_FIRST;
		return c == '\n' ? 0 : HTTP_E_BAD_REQUEST;
	case SUB_TRAILER_START:
		if (c == '\r') {
			p->sub = SUB_END_LF;
			return 0;
		}
		p->sub = SUB_TRAILER;
		/* fallthrough */
	case SUB_TRAILER:
		if (c == '\r')
			p->sub = SUB_TRAILER_LF;
		else if (http_is_bad_ctl(c))
			return HTTP_E_BAD_REQUEST;
		return 0;
	case SUB_TRAILER_LF:
		p->sub = SUB_TRAILER_START;
		return c == '\n' ? 0 : HTTP_E_BAD_REQUEST;
	case SUB_END_LF:
		if (c != '\n')
			return HTTP_E_BAD_REQUEST;
		http_parser_done(p);
		return 0;
	}
	return HTTP_E_BAD_REQUEST;
}

/*
 * Counts a framing byte against its limit: a chunk-size line may be
 * CHUNK_LINE_MAX long, all trailers together max_head (else 431).
 */
static int
http_chunk_count(struct http_parser *p)
{
	p->line_len++;
	if (p->sub >= SUB_TRAILER_START)
		return p->line_len > p->max_head ? HTTP_E_HEAD_TOO_LARGE : 0;
	return p->line_len > CHUNK_LINE_MAX ? HTTP_E_BAD_REQUEST : 0;
}

/* Reads a chunked body until the empty line after the trailers. */
static ssize_t
http_chunked_feed(struct http_parser *p, const uint8_t *buf, size_t len)
{
	size_t off = 0, n;
	int r;

	while (off < len && p->state == HTTP_PARSER_BODY) {
		if (p->sub == SUB_DATA) {
			n = len - off;
			if (n > p->remaining)
				n = (size_t)p->remaining;
			http_body_append(p, buf + off, n);
			p->remaining -= n;
			off += n;
			if (p->remaining == 0)
				p->sub = SUB_DATA_CR;
			if (p->stream)
				break; /* one chunk per feed */
			continue;
		}
		if ((r = http_chunk_count(p)) < 0 ||
		    (r = http_chunk_byte(p, buf[off])) < 0)
			return http_parser_fail(p, r);
		off++;
	}
	return (ssize_t)off;
}

/* Reads body bytes in state BODY. */
static ssize_t
http_body_feed(struct http_parser *p, const uint8_t *buf, size_t len)
{
	size_t n = len;

	if (p->sub != SUB_LENGTH)
		return http_chunked_feed(p, buf, len);
	if (n > p->remaining)
		n = (size_t)p->remaining;
	http_body_append(p, buf, n);
	p->remaining -= n;
	if (p->remaining == 0)
		http_parser_done(p);
	return (ssize_t)n;
}

ssize_t
http_parser_feed(struct http_parser *p, const uint8_t *buf, size_t len)
{
	ssize_t h = 0, b;

	p->chunk = NULL;
	p->chunk_len = 0;
	switch (p->state) {
	case HTTP_PARSER_DONE:
	case HTTP_PARSER_HEAD_DONE:
		return 0;
	case HTTP_PARSER_ERROR:
		return p->error;
	case HTTP_PARSER_HEAD:
		if ((h = http_head_feed(p, buf, len)) < 0)
			return h;
		if (p->state != HTTP_PARSER_BODY)
			return h;
		/* fallthrough */
	case HTTP_PARSER_BODY:
		b = http_body_feed(p, buf + h, len - (size_t)h);
		return b < 0 ? b : h + b;
	}
	return http_parser_fail(p, HTTP_E_BAD_REQUEST);
}

const struct http_request *
http_parser_request(const struct http_parser *p)
{
	return p->state == HTTP_PARSER_DONE ? &p->req : NULL;
}

int
http_error_status(int err)
{
	switch (err) {
	case HTTP_E_HEAD_TOO_LARGE:
		return 431;
	case HTTP_E_BODY_TOO_LARGE:
		return 413;
	case HTTP_E_NOT_IMPLEMENTED:
		return 501;
	case HTTP_E_VERSION:
		return 505;
	default:
		return 400;
	}
}

const char *
http_request_header(const struct http_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

int
http_header_has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token), n;
	const char *s = value, *e;

	if (value == NULL)
		return 0;
	while (*s != '\0') {
		while (http_is_ows(*s) || *s == ',')
			s++;
		n = strcspn(s, ",");
		for (e = s + n; e > s && http_is_ows(e[-1]); e--)
			;
		if ((size_t)(e - s) == tlen && strncasecmp(s, token, tlen) == 0)
			return 1;
		s += n;
	}
	return 0;
}
