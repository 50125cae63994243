/* chatd/static.c — static files from the web root */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chatd/conn.h"
#include "chatd/http.h"
#include "chatd/server.h"
#include "chatd/static.h"
#include "chatd/url.h"
#include "chatd/xmalloc.h"

#define STATIC_MAX_FILE (16u * 1024 * 1024)

const char *
static_content_type(const char *name)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".htm", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".mjs", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".json", "application/json"},
		{".webmanifest", "application/manifest+json"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".jpg", "image/jpeg"},
		{".jpeg", "image/jpeg"},
		{".gif", "image/gif"},
		{".webp", "image/webp"},
		{".ico", "image/x-icon"},
		{".txt", "text/plain; charset=utf-8"},
		{".woff2", "font/woff2"},
		{".map", "application/json"},
	};
	const char *dot = strrchr(name, '.');

	if (dot != NULL && strchr(dot, '/') == NULL)
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			if (strcasecmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* 1 if a decoded path has a "." or ".." segment, or a backslash. */
static int
static_path_unsafe(const char *path)
{
	const char *seg = path;

	if (strchr(path, '\\') != NULL)
		return 1;
	while (seg != NULL) {
		const char *end;
		size_t n;

		while (*seg == '/')
			seg++;
		end = strchr(seg, '/');
		n = end ? (size_t)(end - seg) : strlen(seg);
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 1;
		seg = end;
	}
	return 0;
}

/* Resolves the request path to a regular file inside the web root (after
 * following symlinks); fills real and st. 0, or -1 for 404. */
static int
static_resolve(struct server *srv, const char *raw, char *real,
    struct stat *st)
{
	char dec[PATH_MAX], joined[sizeof srv->web_root + PATH_MAX + 16];
	size_t rootlen = strlen(srv->web_root);
	int n;

	if (url_path_decode(raw, dec, sizeof dec) < 0 || dec[0] != '/' ||
	    static_path_unsafe(dec))
		return -1;
	n = snprintf(joined, sizeof joined, "%s%s%s", srv->web_root, dec,
	    dec[strlen(dec) - 1] == '/' ? "index.html" : "");
	if (n < 0 || (size_t)n >= sizeof joined || realpath(joined, real) == NULL)
		return -1;
	if (strncmp(real, srv->web_root, rootlen) != 0 ||
	    (real[rootlen] != '/' && real[rootlen] != '\0'))
		return -1;
	if (stat(real, st) != 0)
		return -1;
	if (S_ISDIR(st->st_mode)) {
		if (strlen(real) + 12 >= PATH_MAX)
			return -1;
		strcat(real, "/index.html");
		if (stat(real, st) != 0)
			return -1;
	}
	return S_ISREG(st->st_mode) ? 0 : -1;
}

/* 1 if the request's validators match the file (answer 304). */
static int
static_not_modified(const struct http_request *req, const char *etag,
    const struct stat *st)
{
	const char *inm = http_request_header(req, "If-None-Match");
	const char *ims = http_request_header(req, "If-Modified-Since");
	struct tm tm;

	if (inm != NULL)
		return strstr(inm, etag) != NULL || strcmp(inm, "*") == 0;
	if (ims != NULL) {
		memset(&tm, 0, sizeof tm);
		if (strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm) != NULL)
			return timegm(&tm) >= st->st_mtim.tv_sec;
	}
	return 0;
}

void
static_serve(struct conn *c, const struct http_request *req)
{
	char real[PATH_MAX], etag[64], lm[64], extra[256];
	struct stat st;
	struct tm tm;
	char *body;
	ssize_t n;
	int fd;

	if (static_resolve(c->srv, req->path, real, &st) != 0 ||
	    st.st_size > STATIC_MAX_FILE) {
		http_respond_error(c, req, 404, "not_found", "no such file");
		return;
	}
	snprintf(etag, sizeof etag, "\"%llx-%llx\"",
	    (unsigned long long)st.st_size,
	    (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
		(unsigned long long)st.st_mtim.tv_nsec);
	gmtime_r(&st.st_mtim.tv_sec, &tm);
	strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(extra, sizeof extra,
	    "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: no-cache\r\n",
	    etag, lm);
	if (static_not_modified(req, etag, &st)) {
		http_respond(c, req, 304, NULL, NULL, 0, extra);
		return;
	}
	if ((fd = open(real, O_RDONLY | O_CLOEXEC)) < 0) {
		http_respond_error(c, req, 404, "not_found", "no such file");
		return;
	}
	body = xmalloc(st.st_size + 1);
	n = read(fd, body, st.st_size);
	close(fd);
	if (n != st.st_size)
		http_respond_error(c, req, 500, "internal", "read failed");
	else
		http_respond(c, req, 200, static_content_type(real), body, n,
		    extra);
	free(body);
}
