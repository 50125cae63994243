/* chatd/ws_handshake.c — the RFC 6455 opening handshake (sans-IO) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "chatd/log.h"
#include "chatd/ws_handshake.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN 24 /* base64 of 16 bytes, with "==" */

/* An origin, normalised: lower-case scheme and host, explicit port. */
struct ws_origin {
	char scheme[16];
	char host[256];
	unsigned port;
};

/* 1 if c is in the base64 alphabet (padding excluded). */
static int
ws_is_base64(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* 1 if key is base64 for exactly 16 bytes (RFC 6455 4.2.1 item 5). */
static int
ws_key_valid(const char *key)
{
	unsigned char out[WS_KEY_LEN];
	int i;

	if (key == NULL || strlen(key) != WS_KEY_LEN)
		return 0;
	for (i = 0; i < WS_KEY_LEN - 2; i++)
		if (!ws_is_base64((unsigned char)key[i]))
			return 0;
	if (key[22] != '=' || key[23] != '=')
		return 0;
	/* 24 characters decode to 18 bytes, 2 of them padding: 16. */
	return EVP_DecodeBlock(out, (const unsigned char *)key, WS_KEY_LEN) ==
	       18;
}

void
ws_handshake_accept(const char *key, char accept[WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
	    !EVP_DigestUpdate(ctx, key, strlen(key)) ||
	    !EVP_DigestUpdate(ctx, WS_GUID, strlen(WS_GUID)) ||
	    !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 20) {
		log_error("%s: SHA-1 failed", __func__);
		abort();
	}
	EVP_MD_CTX_free(ctx);
	EVP_EncodeBlock((unsigned char *)accept, md, 20);
	accept[WS_ACCEPT_LEN] = '\0';
}

/* The default port of an origin scheme, 0 if it has none we know. */
static unsigned
ws_default_port(const char *scheme)
{
	if (strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0)
		return 80;
	if (strcmp(scheme, "https") == 0 || strcmp(scheme, "wss") == 0)
		return 443;
	return 0;
}

/* Parses "host", "host:port", "[v6]" or "[v6]:port" for scheme into o.
 * Returns 0, or -1 if malformed. */
static int
ws_origin_parse_host(const char *s, struct ws_origin *o)
{
	size_t n;
	const char *p;
	char *end;
	unsigned long port;

	if (*s == '[') {
		p = strchr(s, ']');
		if (p == NULL)
			return -1;
		p++;
	} else {
		p = s + strcspn(s, ":");
	}
	n = p - s;
	if (n == 0 || n >= sizeof(o->host) || strcspn(s, "/?#@ ") < n)
		return -1;
	for (size_t i = 0; i < n; i++)
		o->host[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i];
	o->host[n] = '\0';
	if (*p == '\0') {
		o->port = ws_default_port(o->scheme);
		return 0;
	}
	if (*p != ':' || p[1] < '0' || p[1] > '9' || strlen(p + 1) > 5)
		return -1;
	port = strtoul(p + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return -1;
	o->port = (unsigned)port;
	return 0;
}

/* Parses a serialised origin "scheme://host[:port]". Returns 0 or -1. */
static int
ws_origin_parse(const char *s, struct ws_origin *o)
{
	const char *p = strstr(s, "://");
	size_t n, i;

	if (p == NULL || p == s || (n = p - s) >= sizeof(o->scheme))
		return -1;
	for (i = 0; i < n; i++)
		o->scheme[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i];
	o->scheme[n] = '\0';
	return ws_origin_parse_host(p + 3, o);
}

/* 1 if two parsed origins are the same. */
static int
ws_origin_equal(const struct ws_origin *a, const struct ws_origin *b)
{
	return strcmp(a->scheme, b->scheme) == 0 &&
	       strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* 1 if origin (the header's value) may open a WebSocket here. */
static int
ws_origin_allowed(const char *origin, const char *host, int tls,
                  const char *const *allowed)
{
	struct ws_origin o, self, a;

	if (strcmp(origin, "null") == 0 || ws_origin_parse(origin, &o) < 0)
		return 0;
	strcpy(self.scheme, tls ? "https" : "http");
	if (host != NULL && ws_origin_parse_host(host, &self) == 0 &&
	    ws_origin_equal(&o, &self))
		return 1;
	for (; allowed != NULL && *allowed != NULL; allowed++) {
		if (ws_origin_parse(*allowed, &a) == 0 &&
		    ws_origin_equal(&o, &a))
			return 1;
	}
	return 0;
}

int
ws_handshake_check(const struct http_request *req, int tls,
                   const char *const *allowed_origins,
                   char accept[WS_ACCEPT_LEN + 1])
{
	const char *version, *key, *origin;

	if (req->method != HTTP_GET || req->minor < 1)
		return 400;
	if (!http_header_has_token(http_request_header(req, "Upgrade"),
	                           "websocket") ||
	    !http_header_has_token(http_request_header(req, "Connection"),
	                           "upgrade") ||
	    http_request_header(req, "Host") == NULL)
		return 400;
	version = http_request_header(req, "Sec-WebSocket-Version");
	if (version == NULL || strcmp(version, "13") != 0)
		return 426;
	key = http_request_header(req, "Sec-WebSocket-Key");
	if (!ws_key_valid(key))
		return 400;
	origin = http_request_header(req, "Origin");
	if (origin != NULL &&
	    !ws_origin_allowed(origin, http_request_header(req, "Host"), tls,
	                       allowed_origins)) {
		log_debug("%s: origin %s refused", __func__, origin);
		return 403;
	}
	ws_handshake_accept(key, accept);
	return 0;
}

size_t
ws_handshake_response(char *out, size_t outlen, const char *accept)
{
	int n = snprintf(out, outlen,
	                 "HTTP/1.1 101 Switching Protocols\r\n"
	                 "Upgrade: websocket\r\n"
	                 "Connection: Upgrade\r\n"
	                 "Sec-WebSocket-Accept: %s\r\n"
	                 "\r\n",
	                 accept);

	if (n < 0 || (size_t)n >= outlen)
		return 0;
	return (size_t)n;
}
