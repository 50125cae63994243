/* chatd/http.c — HTTP responses: status lines, headers, JSON errors */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chatd/conn.h"
#include "chatd/http.h"
#include "chatd/metrics.h"

/* Headers every response carries: the page must not be framed, sniffed
 * or leak its address; scripts and styles only from the page's origin;
 * images also from blob: URLs (attachments fetched with the token). */
#define HTTP_SECURITY_HEADERS                                                  \
	"X-Content-Type-Options: nosniff\r\n"                                  \
	"X-Frame-Options: DENY\r\n"                                            \
	"Referrer-Policy: no-referrer\r\n"                                     \
	"Cross-Origin-Opener-Policy: same-origin\r\n"                          \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; "     \
	"style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "   \
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n"

const char *
http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 206: return "Partial Content";
	case 413: return "Content Too Large";
	case 416: return "Range Not Satisfiable";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

/* The Date header value, formatted at most once a second. */
static const char *
http_date(void)
{
	static char buf[64];
	static time_t last;
	time_t now = time(NULL);
	struct tm tm;

	if (now != last) {
		last = now;
		gmtime_r(&now, &tm);
		strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	}
	return buf;
}

void
http_respond(struct conn *c, const struct http_request *req, int status,
    const char *ctype, const void *body, size_t len, const char *extra)
{
	char head[1024];
	int keep = req != NULL && req->keep_alive;
	int n;

	n = snprintf(head, sizeof head,
	    "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: chatd\r\n"
	    HTTP_SECURITY_HEADERS "%s%s%s%s",
	    status, http_reason(status), http_date(),
	    ctype ? "Content-Type: " : "", ctype ? ctype : "",
	    ctype ? "\r\n" : "", keep ? "" : "Connection: close\r\n");
	if (status != 204 && status != 304 && n < (int)sizeof head)
		n += snprintf(head + n, sizeof head - n,
		    "Content-Length: %zu\r\n", len);
	if (extra != NULL && n < (int)sizeof head)
		n += snprintf(head + n, sizeof head - n, "%s", extra);
	if (n < (int)sizeof head)
		n += snprintf(head + n, sizeof head - n, "\r\n");
	if (n >= (int)sizeof head)
		n = sizeof head - 1;
	conn_write(c, head, n);
	if (len > 0 && status != 204 && status != 304 &&
	    !(req != NULL && req->method == HTTP_HEAD))
		conn_write(c, body, len);
	metrics_http(c->env->m, req, status);
	if (!keep)
		conn_flush_close(c, "no keep-alive");
}

void
http_respond_file(struct conn *c, const struct http_request *req, int status,
    const char *headers, int fd, uint64_t offset, uint64_t len)
{
	char head[512];
	int keep = req != NULL && req->keep_alive, n;

	n = snprintf(head, sizeof head,
	    "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: chatd\r\n%s",
	    status, http_reason(status), http_date(),
	    keep ? "" : "Connection: close\r\n");
	conn_write(c, head, (size_t)n);
	conn_write(c, headers, strlen(headers));
	conn_write(c, "\r\n", 2);
	metrics_http(c->env->m, req, status);
	if (len == 0 || (req != NULL && req->method == HTTP_HEAD)) {
		close(fd);
		if (!keep)
			conn_flush_close(c, "no keep-alive");
		return;
	}
	conn_send_file(c, fd, offset, len, keep);
}

void
http_respond_json(struct conn *c, const struct http_request *req, int status,
    json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	http_respond(c, req, status, "application/json", s, strlen(s), NULL);
	free(s);
	json_decref(obj);
}

void
http_respond_error(struct conn *c, const struct http_request *req, int status,
    const char *code, const char *message)
{
	http_respond_json(c, req, status,
	    json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
		message));
}

void
http_respond_error_status(struct conn *c, int status)
{
	const char *code;

	switch (status) {
	case 408: code = "timeout"; break;
	case 413: code = "too_large"; break;
	case 431: code = "header_too_large"; break;
	case 501: code = "not_implemented"; break;
	case 505: code = "bad_version"; break;
	default: code = "bad_request"; break;
	}
	http_respond_error(c, NULL, status, code, http_reason(status));
}
