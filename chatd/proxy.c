/* chatd/proxy.c — trusted reverse proxies and the client address */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chatd/proxy.h"

/* The longest text proxy_addr_parse looks at (an IPv6 address with an
 * embedded IPv4 one is at most 45 characters). */
#define PROXY_TEXT_MAX 63

/* A v4-mapped IPv6 address's first 12 bytes. */
static const uint8_t proxy_mapped[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};

int
proxy_addr_parse(const char *s, size_t len, struct proxy_addr *a)
{
	char buf[PROXY_TEXT_MAX + 1];

	if (len == 0 || len > PROXY_TEXT_MAX || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, buf, a->b) == 1) {
		a->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, a->b) != 1)
		return -1;
	a->family = 6;
	if (memcmp(a->b, proxy_mapped, sizeof proxy_mapped) == 0) {
		memmove(a->b, a->b + 12, 4);
		memset(a->b + 4, 0, 12);
		a->family = 4;
	}
	return 0;
}

void
proxy_addr_format(const struct proxy_addr *a, char *out, size_t outlen)
{
	if (inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, out,
	              (socklen_t)outlen) == NULL &&
	    outlen > 0)
		out[0] = '\0';
}

/* a as a v4-mapped IPv6 address, if it is IPv4. */
static struct proxy_addr
proxy_addr_v6(const struct proxy_addr *a)
{
	struct proxy_addr m = *a;

	if (a->family == 4) {
		m.family = 6;
		memcpy(m.b, proxy_mapped, 12);
		memcpy(m.b + 12, a->b, 4);
	}
	return m;
}

/* 1 if a is in n. An IPv6 network holds the IPv4 addresses whose mapped
 * form it holds (::/0 is everything). */
static int
proxy_net_has(const struct proxy_net *n, const struct proxy_addr *a)
{
	struct proxy_addr m = n->a.family == 6 ? proxy_addr_v6(a) : *a;
	unsigned full = n->bits / 8, rem = n->bits % 8;

	if (m.family != n->a.family || memcmp(m.b, n->a.b, full) != 0)
		return 0;
	return rem == 0 || ((m.b[full] ^ n->a.b[full]) & (0xff00 >> rem)) == 0;
}

int
proxy_list_has(const struct proxy_list *l, const struct proxy_addr *a)
{
	for (size_t i = 0; i < l->n; i++)
		if (proxy_net_has(&l->nets[i], a))
			return 1;
	return 0;
}

/* Parses "ADDR" or "ADDR/BITS" (len bytes at s) into n. 0 or -1. */
static int
proxy_net_parse(const char *s, size_t len, struct proxy_net *n)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	int v6 = memchr(s, ':', alen) != NULL;
	unsigned bits = 0;

	if (proxy_addr_parse(s, alen, &n->a) != 0)
		return -1;
	if (slash == NULL) {
		n->bits = n->a.family == 4 ? 32 : 128;
		return 0;
	}
	if (len - alen < 2 || len - alen > 4)
		return -1;
	for (const char *p = slash + 1; p < s + len; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		bits = bits * 10 + (unsigned)(*p - '0');
	}
	if (bits > (v6 ? 128u : 32u))
		return -1;
	/* A v4-mapped network written in IPv6: IPv4 if it fits in v4. */
	if (v6 && n->a.family == 4) {
		if (bits >= 96)
			bits -= 96;
		else
			n->a = proxy_addr_v6(&n->a);
	}
	n->bits = bits;
	return 0;
}

int
proxy_list_parse(struct proxy_list *l, const char *s, char *err, size_t errlen)
{
	const char *p = s, *end;
	size_t len;

	l->n = 0;
	for (; *p != '\0'; p = *end ? end + 1 : end) {
		end = p + strcspn(p, ",");
		while (p < end && isspace((unsigned char)*p))
			p++;
		len = (size_t)(end - p);
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0)
			continue;
		if (l->n == PROXY_MAX_NETS) {
			snprintf(err, errlen, "more than %d networks",
			         PROXY_MAX_NETS);
			return -1;
		}
		if (proxy_net_parse(p, len, &l->nets[l->n]) != 0) {
			snprintf(err, errlen,
			         "'%.*s' is not an address or ADDR/BITS",
			         len > 64 ? 64 : (int)len, p);
			return -1;
		}
		l->n++;
	}
	return 0;
}

/* 1 if the len bytes at s are an obfuscated identifier's characters
 * (RFC 7239: ALPHA, DIGIT, ".", "_", "-"), at least one. */
static int
proxy_obf_ok(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

/* 0 if [p, end) is empty or ":PORT" (1-5 digits up to 65535, or an
 * obfuscated "_..." port), else -1. */
static int
proxy_port_ok(const char *p, const char *end)
{
	unsigned port = 0;

	if (p == end)
		return 0;
	if (*p++ != ':' || p == end)
		return -1;
	if (*p == '_')
		return proxy_obf_ok(p + 1, (size_t)(end - p - 1)) ? 0 : -1;
	if (end - p > 5)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (unsigned)(*p - '0');
	}
	return port <= 65535 ? 0 : -1;
}

/* Parses one node of either header: ADDR, IPV4:PORT, [IPV6] or
 * [IPV6]:PORT, a bare IPv6 address, "unknown" or "_obfuscated". 0 (*a
 * set), PROXY_WALK_UNKNOWN or PROXY_WALK_MALFORMED. */
static int
proxy_node_parse(const char *s, size_t len, struct proxy_addr *a)
{
	const char *end = s + len, *close, *colon;

	if (len == 7 && strncasecmp(s, "unknown", 7) == 0)
		return PROXY_WALK_UNKNOWN;
	if (len > 0 && s[0] == '_')
		return proxy_obf_ok(s + 1, len - 1) ? PROXY_WALK_UNKNOWN
		                                    : PROXY_WALK_MALFORMED;
	if (len > 0 && s[0] == '[') {
		close = memchr(s, ']', len);
		if (close == NULL || proxy_port_ok(close + 1, end) != 0 ||
		    memchr(s, ':', (size_t)(close - s)) == NULL ||
		    proxy_addr_parse(s + 1, (size_t)(close - s - 1), a) != 0)
			return PROXY_WALK_MALFORMED;
		return 0;
	}
	colon = memchr(s, ':', len);
	if (colon != NULL &&
	    memchr(colon + 1, ':', (size_t)(end - colon - 1)) == NULL) {
		/* One colon: IPv4 and a port. */
		if (proxy_port_ok(colon, end) != 0 ||
		    memchr(s, '.', (size_t)(colon - s)) == NULL)
			return PROXY_WALK_MALFORMED;
		len = (size_t)(colon - s);
	}
	return proxy_addr_parse(s, len, a) == 0 ? 0 : PROXY_WALK_MALFORMED;
}

/*
 * A walk over a header's nodes, fed left to right: the answer is the
 * right-most node that stops a right-to-left walk (an untrusted address,
 * an unknown node, a bad value), or, if none does, the left-most node.
 * Fed in order, nothing needs to be stored but the last stop.
 */
struct proxy_walker {
	const struct proxy_list *l;
	size_t nodes;
	struct proxy_addr first;  /* the left-most node (if an address) */
	int stop;                 /* the last stop's result, or -2: none */
	struct proxy_addr client; /* the last stop's address, if FOUND */
};

/* Starts a walk. */
static void
proxy_walk_init(struct proxy_walker *w, const struct proxy_list *l)
{
	memset(w, 0, sizeof *w);
	w->l = l;
	w->stop = -2;
}

/* Feeds the next node: rc from proxy_node_parse, a if rc is 0. */
static void
proxy_walk_node(struct proxy_walker *w, int rc, const struct proxy_addr *a)
{
	if (w->nodes++ == 0 && rc == 0)
		w->first = *a;
	if (rc != 0) {
		w->stop = rc;
	} else if (!proxy_list_has(w->l, a)) {
		w->stop = PROXY_WALK_FOUND;
		w->client = *a;
	}
}

/* Ends a walk: an enum proxy_walk, *out set if FOUND. */
static int
proxy_walk_end(struct proxy_walker *w, struct proxy_addr *out)
{
	if (w->nodes == 0)
		return PROXY_WALK_NONE;
	if (w->stop == -2) {
		*out = w->first; /* all trusted: the left-most */
		return PROXY_WALK_FOUND;
	}
	if (w->stop == PROXY_WALK_FOUND)
		*out = w->client;
	return w->stop;
}

/* Skips optional white space (spaces and tabs). */
static const char *
proxy_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int
proxy_xff(const struct proxy_list *l, const char *const *lines, size_t n,
          struct proxy_addr *out)
{
	struct proxy_walker w;
	struct proxy_addr a;
	const char *p, *end;
	size_t len;

	proxy_walk_init(&w, l);
	for (size_t i = 0; i < n; i++) {
		for (p = lines[i]; *p != '\0'; p = *end ? end + 1 : end) {
			end = p + strcspn(p, ",");
			p = proxy_ows(p);
			len = p < end ? (size_t)(end - p) : 0;
			while (len > 0 &&
			       (p[len - 1] == ' ' || p[len - 1] == '\t'))
				len--;
			if (len > 0) /* empty list elements don't count */
				proxy_walk_node(
				    &w, proxy_node_parse(p, len, &a), &a);
		}
	}
	return proxy_walk_end(&w, out);
}

/* 1 if ch may be in an RFC 9110 token. */
static int
proxy_tchar(int ch)
{
	return ch != '\0' && (isalnum((unsigned char)ch) ||
	                      strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Reads a Forwarded value (token or quoted-string) at *pp into val
 * (unquoted; *vlen is more than valsz - 1 if it did not fit) and moves
 * *pp past it. 0, or -1 on a syntax error. */
static int
proxy_fwd_value(const char **pp, char *val, size_t valsz, size_t *vlen)
{
	const char *p = *pp;

	*vlen = 0;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\\')
				p++;
			if (*p == '\0')
				return -1;
			if (*vlen < valsz - 1)
				val[*vlen] = *p;
			(*vlen)++;
		}
		p++;
	} else {
		/* Not tokens, but seen unquoted in the wild: ':' '[' ']'. */
		for (; proxy_tchar(*p) || *p == ':' || *p == '[' || *p == ']';
		     p++) {
			if (*vlen < valsz - 1)
				val[*vlen] = *p;
			(*vlen)++;
		}
		if (*vlen == 0)
			return -1;
	}
	*pp = p;
	return 0;
}

/* Feeds one Forwarded line's elements to w: for= of each (an element
 * with none is an unknown node). 0, or -1 on a syntax error. */
static int
proxy_fwd_line(struct proxy_walker *w, const char *p)
{
	char val[PROXY_TEXT_MAX + 1];
	const char *name;
	size_t nlen, vlen;
	struct proxy_addr a;
	int pairs = 0, rc = PROXY_WALK_UNKNOWN, seen = 0;

	for (;;) {
		p = proxy_ows(p);
		if (*p == ',' || *p == '\0') {
			if (pairs > 0)
				proxy_walk_node(w, rc, &a);
			if (*p == '\0')
				return 0;
			pairs = seen = 0;
			rc = PROXY_WALK_UNKNOWN;
			p++;
			continue;
		}
		if (*p == ';') {
			p++;
			continue;
		}
		for (name = p; proxy_tchar(*p); p++)
			;
		nlen = (size_t)(p - name);
		if (nlen == 0 || *p++ != '=' ||
		    proxy_fwd_value(&p, val, sizeof val, &vlen) != 0)
			return -1;
		p = proxy_ows(p);
		if (*p != '\0' && *p != ';' && *p != ',')
			return -1;
		pairs++;
		if (nlen != 3 || strncasecmp(name, "for", 3) != 0)
			continue;
		if (seen++ || vlen >= sizeof val)
			rc = PROXY_WALK_MALFORMED; /* twice, or too long */
		else
			rc = proxy_node_parse(val, vlen, &a);
	}
}

int
proxy_forwarded(const struct proxy_list *l, const char *const *lines, size_t n,
                struct proxy_addr *out)
{
	struct proxy_walker w;

	proxy_walk_init(&w, l);
	for (size_t i = 0; i < n; i++)
		if (proxy_fwd_line(&w, lines[i]) != 0)
			return PROXY_WALK_MALFORMED;
	return proxy_walk_end(&w, out);
}

enum proxy_from
proxy_client(const struct proxy_list *l, const char *peer,
             const char *const *xff, size_t nxff, const char *const *fwd,
             size_t nfwd, char *out, size_t outlen)
{
	struct proxy_addr p, c;
	enum proxy_from from;
	char buf[PROXY_ADDR_LEN];
	int rc;

	snprintf(out, outlen, "%s", peer);
	if (l == NULL || l->n == 0 ||
	    proxy_addr_parse(peer, strlen(peer), &p) != 0)
		return PROXY_PEER;
	proxy_addr_format(&p, buf, sizeof buf);
	snprintf(out, outlen, "%s", buf); /* the peer, normalised */
	if (!proxy_list_has(l, &p))
		return PROXY_PEER;
	/* X-Forwarded-For decides when present: it is what proxies set
	 * (the README's nginx example); a Forwarded header they pass along
	 * untouched would be the client's own. */
	if (nxff > 0) {
		rc = proxy_xff(l, xff, nxff, &c);
		from = PROXY_XFF;
	} else if (nfwd > 0) {
		rc = proxy_forwarded(l, fwd, nfwd, &c);
		from = PROXY_FORWARDED;
	} else {
		return PROXY_PEER;
	}
	switch (rc) {
	case PROXY_WALK_FOUND:
		proxy_addr_format(&c, buf, sizeof buf);
		snprintf(out, outlen, "%s", buf);
		return from;
	case PROXY_WALK_NONE:
		return PROXY_PEER;
	case PROXY_WALK_UNKNOWN:
		return PROXY_PEER_UNKNOWN;
	default:
		return PROXY_PEER_BAD;
	}
}
