/* fuzz sources: chatd/http_parser.c chatd/url.c chatd/xmalloc.c chatd/log.c */
/*
 * tests/fuzz/fuzz_http_parser.c — libFuzzer harness for the HTTP parser
 * and the URL decoders.
 *
 * Input layout: byte 0 picks the limits, bytes 1-3 pick the chunk sizes
 * (cycled), the rest is the byte stream of a connection. The stream is
 * parsed twice, whole and in those chunks, and both runs must agree on
 * every request and on the final error: the parser's result must not
 * depend on how TCP split the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/http_parser.h"
#include "chatd/url.h"

#define FUZZ_MAX_REQUESTS 64

/* What a run saw: per request a digest, then how it ended. */
struct fuzz_run {
	size_t nreq;
	uint64_t digest[FUZZ_MAX_REQUESTS];
	size_t consumed[FUZZ_MAX_REQUESTS];
	ssize_t end; /* 0: input exhausted, else the error */
};

/* Aborts with a message: libFuzzer records the input. */
static void
fuzz_fail(const char *why)
{
	(void)why;
	abort();
}

/* Folds bytes into an FNV-1a hash. */
static uint64_t
fuzz_hash(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Exercises the URL decoders on a string; checks their contracts. */
static void
fuzz_url(const char *s, const char *query)
{
	char out[256];
	long n;

	n = url_path_decode(s, out, sizeof(out));
	if (n >= 0 && ((size_t)n >= sizeof(out) || strlen(out) != (size_t)n ||
	               memchr(out, '\0', (size_t)n) != NULL))
		fuzz_fail("url_path_decode length");
	if (n >= 0 && (size_t)n > strlen(s))
		fuzz_fail("url_path_decode grew");
	n = url_query_get(query, "q", out, sizeof(out));
	if (n < -2 || (n >= 0 && strlen(out) != (size_t)n))
		fuzz_fail("url_query_get length");
	n = url_query_get(query, "", out, 8);
	if (n < -2 || (n >= 0 && strlen(out) != (size_t)n))
		fuzz_fail("url_query_get small");
}

/* Checks a completed request and returns its digest. */
static uint64_t
fuzz_request(const struct http_request *req)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	if (req == NULL || req->nheaders > HTTP_MAX_HEADERS)
		fuzz_fail("request");
	h = fuzz_hash(h, req->method_name, strlen(req->method_name) + 1);
	h = fuzz_hash(h, req->target, strlen(req->target) + 1);
	h = fuzz_hash(h, req->path, strlen(req->path) + 1);
	if (req->query != NULL)
		h = fuzz_hash(h, req->query, strlen(req->query) + 1);
	for (i = 0; i < req->nheaders; i++) {
		h = fuzz_hash(h, req->headers[i].name,
		              strlen(req->headers[i].name) + 1);
		h = fuzz_hash(h, req->headers[i].value,
		              strlen(req->headers[i].value) + 1);
	}
	if ((req->body == NULL) != (req->body_len == 0))
		fuzz_fail("body");
	if (req->body_len)
		h = fuzz_hash(h, req->body, req->body_len);
	h = fuzz_hash(h, &req->method, sizeof(req->method));
	h = fuzz_hash(h, &req->minor, sizeof(req->minor));
	h = fuzz_hash(h, &req->keep_alive, sizeof(req->keep_alive));
	h = fuzz_hash(h, &req->expect_continue, sizeof(req->expect_continue));
	h = fuzz_hash(h, &req->chunked, sizeof(req->chunked));
	h = fuzz_hash(h, &req->content_length, sizeof(req->content_length));
	h = fuzz_hash(h, &req->body_len, sizeof(req->body_len));
	if (req->minor != 0 && req->minor != 1)
		fuzz_fail("minor");
	if (req->content_length >= 0 &&
	    (uint64_t)req->content_length != req->body_len)
		fuzz_fail("content_length");
	fuzz_url(req->path, req->query);
	return h;
}

/* Parses data in pieces sized by sizes[] (cycled), resetting per request. */
static void
fuzz_parse(const uint8_t *data, size_t len, size_t max_head, size_t max_body,
           const size_t *sizes, size_t nsizes, struct fuzz_run *run)
{
	struct http_parser p;
	size_t off = 0, start = 0, k = 0, piece = 0;
	ssize_t n;

	memset(run, 0, sizeof(*run));
	http_parser_init(&p, max_head, max_body);
	while (off < len) {
		if (piece == 0)
			piece = sizes[k++ % nsizes];
		if (piece > len - off)
			piece = len - off;
		n = http_parser_feed(&p, data + off, piece);
		if (n < 0) {
			if (p.state != HTTP_PARSER_ERROR ||
			    http_error_status((int)n) < 400)
				fuzz_fail("error state");
			run->end = n;
			break;
		}
		if ((size_t)n > piece)
			fuzz_fail("consumed too much");
		off += (size_t)n;
		piece -= (size_t)n;
		if (p.state == HTTP_PARSER_DONE) {
			if (run->nreq < FUZZ_MAX_REQUESTS) {
				run->digest[run->nreq] =
				    fuzz_request(http_parser_request(&p));
				run->consumed[run->nreq] = off - start;
			}
			run->nreq++;
			start = off;
			http_parser_reset(&p);
		} else if (piece != 0) {
			fuzz_fail("stopped early");
		} else if (p.head_len > p.max_head || p.body_len > p.max_body) {
			fuzz_fail("limit");
		}
	}
	http_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_run whole, split;
	size_t sizes[3], max_head = 0, max_body = 0, i;
	char *str;

	if (size < 4)
		return 0;
	/* Small limits half the time, so the 431/413 paths are reached. */
	if (data[0] & 1) {
		max_head = 32 + (size_t)(data[0] >> 1) * 8;
		max_body = (size_t)(data[0] >> 1) * 4;
	}
	for (i = 0; i < 3; i++)
		sizes[i] = (size_t)data[1 + i] % 64 + 1;
	fuzz_parse(data + 4, size - 4, max_head, max_body, &size, 1, &whole);
	fuzz_parse(data + 4, size - 4, max_head, max_body, sizes, 3, &split);
	if (whole.nreq != split.nreq || whole.end != split.end ||
	    memcmp(whole.digest, split.digest, sizeof(whole.digest)) != 0 ||
	    memcmp(whole.consumed, split.consumed, sizeof(whole.consumed)) != 0)
		fuzz_fail("chunking changed the result");
	/* The raw input as a path and as a query string. */
	str = malloc(size - 3);
	memcpy(str, data + 4, size - 4);
	str[size - 4] = '\0';
	fuzz_url(str, str);
	free(str);
	return 0;
}
