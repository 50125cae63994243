/* chatd/ws_handshake.c — the RFC 6455 opening handshake (sans-IO) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "chatd/log.h"
#include "chatd/ws_deflate.h"
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
	return ws_handshake_response_ext(out, outlen, accept, NULL);
}

size_t
ws_handshake_response_ext(char *out, size_t outlen, const char *accept,
                          const char *ext)
{
	int has = ext != NULL && *ext != '\0';
	int n = snprintf(out, outlen,
	                 "HTTP/1.1 101 Switching Protocols\r\n"
	                 "Upgrade: websocket\r\n"
	                 "Connection: Upgrade\r\n"
	                 "Sec-WebSocket-Accept: %s\r\n"
	                 "%s%s%s"
	                 "\r\n",
	                 accept, has ? "Sec-WebSocket-Extensions: " : "",
	                 has ? ext : "", has ? "\r\n" : "");

	if (n < 0 || (size_t)n >= outlen)
		return 0;
	return (size_t)n;
}

/* One permessage-deflate offer, as parsed. */
struct ws_pmd_offer {
	int deflate;      /* the extension is permessage-deflate */
	int bad;          /* unknown, repeated or invalid parameter */
	int server_nct;   /* server_no_context_takeover */
	int client_nct;   /* client_no_context_takeover */
	int server_wbits; /* server_max_window_bits, 0 if absent */
	int client_wbits; /* client_max_window_bits: 0 absent, -1 no
	                     value, else the value */
};

/* 1 if c may appear in an HTTP token (RFC 7230 3.2.6). */
static int
ws_is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Skips spaces and tabs. */
static const char *
ws_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads a token at *p into out (cut to outlen - 1 bytes, *cut set if it
 * was longer). Returns its length, 0 if there is none. */
static size_t
ws_token(const char **p, char *out, size_t outlen, int *cut)
{
	size_t n = 0;

	while (ws_is_tchar((unsigned char)**p)) {
		if (n + 1 < outlen)
			out[n] = **p;
		else
			*cut = 1;
		n++;
		(*p)++;
	}
	out[n < outlen ? n : outlen - 1] = '\0';
	return n;
}

/* Reads a quoted-string at *p (after its '"') into out, unescaped, as
 * ws_token does. Returns its length, or -1 if it is not closed. */
static ssize_t
ws_quoted(const char **p, char *out, size_t outlen, int *cut)
{
	size_t n = 0;
	int c;

	for (;;) {
		if ((c = (unsigned char)**p) == '\0')
			return -1; /* *p stays on the NUL */
		(*p)++;
		if (c == '"')
			break;
		if (c == '\\') {
			if ((c = (unsigned char)**p) == '\0')
				return -1;
			(*p)++;
		}
		if (n + 1 < outlen)
			out[n] = c;
		else
			*cut = 1;
		n++;
	}
	out[n < outlen ? n : outlen - 1] = '\0';
	return (ssize_t)n;
}

/* A window bits value (RFC 7692 7.1.2.1: 8-15, no leading zero), or -1. */
static int
ws_wbits(const char *v)
{
	if (v[0] >= '8' && v[0] <= '9' && v[1] == '\0')
		return v[0] - '0';
	if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && v[2] == '\0')
		return 10 + v[1] - '0';
	return -1;
}

/* Applies one parameter (value NULL if it had none) to an offer. */
static void
ws_pmd_param(struct ws_pmd_offer *o, const char *name, const char *value)
{
	int *flag = NULL, w = value != NULL ? ws_wbits(value) : 0;

	if (strcasecmp(name, "server_no_context_takeover") == 0)
		flag = &o->server_nct;
	else if (strcasecmp(name, "client_no_context_takeover") == 0)
		flag = &o->client_nct;
	if (flag != NULL) {
		if (*flag || value != NULL)
			o->bad = 1;
		*flag = 1;
	} else if (strcasecmp(name, "server_max_window_bits") == 0) {
		if (o->server_wbits || value == NULL || w < 0)
			o->bad = 1;
		o->server_wbits = w;
	} else if (strcasecmp(name, "client_max_window_bits") == 0) {
		if (o->client_wbits || w < 0)
			o->bad = 1;
		o->client_wbits = value != NULL ? w : -1;
	} else {
		o->bad = 1; /* unknown: RFC 7692 5.1 declines the offer */
	}
}

/* Parses one parameter after its ';' (RFC 6455 9.1: a token, maybe "="
 * and a token or a quoted-string whose content is a token). Returns 0,
 * or -1 on a syntax error. */
static int
ws_ext_param(const char **p, struct ws_pmd_offer *o)
{
	char name[32], value[16];
	int cut = 0, has_value = 0;
	ssize_t n;

	*p = ws_ows(*p);
	if (ws_token(p, name, sizeof(name), &cut) == 0)
		return -1;
	*p = ws_ows(*p);
	if (**p == '=') {
		*p = ws_ows(*p + 1);
		has_value = 1;
		if (**p == '"') {
			(*p)++;
			n = ws_quoted(p, value, sizeof(value), &cut);
			if (n <= 0)
				return -1; /* unclosed, or "": not a token */
			for (const char *v = value; *v; v++)
				if (!ws_is_tchar((unsigned char)*v))
					return -1;
		} else if (ws_token(p, value, sizeof(value), &cut) == 0) {
			return -1;
		}
	}
	if (o->deflate)
		ws_pmd_param(o, cut ? "" : name, has_value ? value : NULL);
	return 0;
}

/* Parses one extension of a list, up to its ',' or the end. Returns 0,
 * or -1 on a syntax error (*p is then somewhere inside it). */
static int
ws_ext_parse(const char **p, struct ws_pmd_offer *o)
{
	char name[32];
	int cut = 0;

	memset(o, 0, sizeof(*o));
	if (ws_token(p, name, sizeof(name), &cut) == 0)
		return -1;
	o->deflate = !cut && strcasecmp(name, "permessage-deflate") == 0;
	for (;;) {
		*p = ws_ows(*p);
		if (**p == ',' || **p == '\0')
			return 0;
		if (**p != ';')
			return -1;
		(*p)++;
		if (ws_ext_param(p, o) < 0)
			return -1;
	}
}

/* Skips to the ',' ending a malformed extension (outside quotes). */
static const char *
ws_ext_skip(const char *p)
{
	int quoted = 0;

	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted)
			break;
	}
	return p;
}

/* 1 if the server accepts an offer it parsed without fault. */
static int
ws_pmd_acceptable(const struct ws_pmd_offer *o)
{
	/* One server stream deflates for everyone with a 2^15 window: a
	 * client that wants a smaller one is served by its next offer. */
	return o->deflate && !o->bad &&
	       (o->server_wbits == 0 || o->server_wbits >= WS_DEFLATE_WBITS);
}

/* Writes the answer to an accepted offer; returns the client's window. */
static int
ws_pmd_answer(const struct ws_pmd_offer *o, char ext[WS_EXT_LEN])
{
	int n = snprintf(ext, WS_EXT_LEN,
	                 "permessage-deflate; server_no_context_takeover; "
	                 "client_no_context_takeover");

	if (o->server_wbits > 0)
		n += snprintf(ext + n, WS_EXT_LEN - n,
		              "; server_max_window_bits=%d", o->server_wbits);
	if (o->client_wbits > 0)
		snprintf(ext + n, WS_EXT_LEN - n, "; client_max_window_bits=%d",
		         o->client_wbits);
	return o->client_wbits > 0 ? o->client_wbits : 15;
}

int
ws_handshake_deflate(const struct http_request *req, char ext[WS_EXT_LEN])
{
	struct ws_pmd_offer o;
	const char *p;
	size_t i;

	ext[0] = '\0';
	for (i = 0; i < req->nheaders; i++) {
		if (strcasecmp(req->headers[i].name,
		               "Sec-WebSocket-Extensions") != 0)
			continue;
		p = req->headers[i].value;
		while (*p != '\0') {
			p = ws_ows(p);
			if (*p == ',') { /* empty list elements are allowed */
				p++;
				continue;
			}
			if (*p == '\0')
				break;
			if (ws_ext_parse(&p, &o) < 0) {
				p = ws_ext_skip(p);
				continue;
			}
			if (ws_pmd_acceptable(&o))
				return ws_pmd_answer(&o, ext);
		}
	}
	return 0;
}
