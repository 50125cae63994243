/* chatd/http_parser.h — sans-IO HTTP/1.1 request parser */
#ifndef CHATD_HTTP_PARSER_H
#define CHATD_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEAD 8192     /* request line + headers + CRLFs */
#define HTTP_MAX_BODY 65536    /* decoded body */
#define HTTP_MAX_HEADERS 64

enum http_method {
	HTTP_UNKNOWN = 0, /* a syntactically valid token we don't know */
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_PATCH,
	HTTP_CONNECT,
	HTTP_TRACE,
};

/* Negative results of http_parser_feed; http_error_status maps them. */
enum http_parse_error {
	HTTP_E_BAD_REQUEST = -1,      /* 400: malformed syntax */
	HTTP_E_HEAD_TOO_LARGE = -2,   /* 431 */
	HTTP_E_BODY_TOO_LARGE = -3,   /* 413: known from Content-Length */
	HTTP_E_NOT_IMPLEMENTED = -4,  /* 501: transfer coding not chunked */
	HTTP_E_VERSION = -5,          /* 505: not HTTP/1.0 or HTTP/1.1 */
};

struct http_header {
	const char *name;  /* NUL-terminated, as sent */
	const char *value; /* NUL-terminated, surrounding whitespace trimmed */
};

/* A parsed request. Every pointer points into the parser's own buffers
 * and stays valid until http_parser_reset or http_parser_free. */
struct http_request {
	enum http_method method;
	const char *method_name; /* the method token as sent */
	const char *target;      /* the raw request-target */
	const char *path;        /* target before '?', still percent-encoded */
	const char *query;       /* target after '?', or NULL */
	int minor;               /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	int keep_alive;          /* per version and Connection header */
	int expect_continue;     /* Expect: 100-continue */
	int chunked;             /* Transfer-Encoding: chunked */
	int64_t content_length;  /* -1 when absent */
	const uint8_t *body;     /* decoded body (chunks joined); NULL if none */
	size_t body_len;
};

enum http_parser_state {
	HTTP_PARSER_HEAD = 0, /* reading request line and headers */
	HTTP_PARSER_HEAD_DONE, /* head complete, a body follows: the caller
	                          says how to read it (http_parser_body);
	                          only with http_parser_defer_body */
	HTTP_PARSER_BODY,     /* head complete, reading the body */
	HTTP_PARSER_DONE,     /* a whole request is available */
	HTTP_PARSER_ERROR,    /* a feed failed; reset before reuse */
};

/* Parser state. Fields other than state are private to http_parser.c. */
struct http_parser {
	enum http_parser_state state;
	size_t max_head;
	size_t max_body;
	size_t max_body0; /* max_body as given to init (a reset restores it) */
	char *head;      /* copy of the head, split in place into strings */
	size_t head_len;
	size_t head_cap;
	uint8_t *body;
	size_t body_len;
	size_t body_cap;
	int sub;          /* private sub-state (chunk parsing, CRLF scan) */
	uint64_t remaining; /* bytes left in the body or the current chunk */
	char line[64];    /* a chunk-size line being collected */
	size_t line_len;
	size_t line_start; /* offset in head of the line being read */
	int error;         /* the failed feed's result, in state ERROR */
	int defer;         /* stop in HEAD_DONE before a body */
	int stream;        /* body bytes are handed out, not kept */
	uint64_t streamed; /* body bytes handed out so far */
	const uint8_t *chunk; /* streaming: body bytes of the last feed */
	size_t chunk_len;
	struct http_request req;
};

/* Sets up an empty parser with the given limits (0: the defaults above). */
void http_parser_init(struct http_parser *p, size_t max_head, size_t max_body);
/* Frees the parser's buffers; the struct may be init'ed again. */
void http_parser_free(struct http_parser *p);
/* Forgets the current request so the next one on the connection can be
 * parsed; keeps buffers for reuse. */
void http_parser_reset(struct http_parser *p);
/*
 * Feeds bytes received from the client. Returns how many were consumed
 * (never more than one request's worth: when state becomes
 * HTTP_PARSER_DONE the bytes after the count belong to the next request,
 * or to the WebSocket after an upgrade), or a negative enum
 * http_parse_error, after which state is HTTP_PARSER_ERROR.
 * A Content-Length over max_body fails as soon as the head is complete.
 */
ssize_t http_parser_feed(struct http_parser *p, const uint8_t *buf,
    size_t len);
/* With on set, a request with a body stops in state HTTP_PARSER_HEAD_DONE
 * once its head is parsed (the feed returns the head's bytes), and the
 * body's limit is checked only by http_parser_body. Survives resets. */
void http_parser_defer_body(struct http_parser *p, int on);
/*
 * In state HTTP_PARSER_HEAD_DONE: reads the body with the limit max_body
 * (0: the parser's own). With stream set, body bytes are not kept: each
 * feed hands out at most one run of them (http_parser_chunk), pointing
 * into the fed buffer, and req->body stays NULL. Returns 0, or a negative
 * enum http_parse_error (413 for a Content-Length over the limit) after
 * which state is HTTP_PARSER_ERROR.
 */
int http_parser_body(struct http_parser *p, uint64_t max_body, int stream);
/* Streaming: the body bytes the last feed consumed (inside its buffer,
 * valid until that buffer changes), or NULL with *len 0. */
const uint8_t *http_parser_chunk(const struct http_parser *p, size_t *len);
/* The completed request; NULL unless state is HTTP_PARSER_DONE. While
 * state is HTTP_PARSER_BODY, the head fields are already valid. */
const struct http_request *http_parser_request(const struct http_parser *p);
/* The HTTP status for a negative feed result (400, 431, 413, 501, 505). */
int http_error_status(int err);

/* Value of the first header called name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req,
    const char *name);
/* 1 if the comma-separated value lists token (case-insensitive), else 0. */
int http_header_has_token(const char *value, const char *token);

#endif
