/* chatd/proxy.h — trusted reverse proxies and the client address */
#ifndef CHATD_PROXY_H
#define CHATD_PROXY_H

/*
 * Behind a reverse proxy every connection comes from the proxy. From a
 * peer in the trusted list (--trusted-proxy), and only from one, the
 * client address is read from the request's X-Forwarded-For or, when a
 * request has none, from its Forwarded header (RFC 7239). Either list is
 * walked from the right, past trusted addresses: the first untrusted one
 * is the client (each proxy appends the address it got the request from,
 * so entries left of that are the client's own words); if all are
 * trusted, the left-most. An "unknown" or obfuscated node, or a value
 * that is not an address, where the walk stops gives the peer address
 * instead: a header is trusted only as far as trusted proxies wrote it.
 * Pure: no I/O, no allocation.
 */

#include <stddef.h>
#include <stdint.h>

#define PROXY_MAX_NETS 32 /* networks in a --trusted-proxy list */
#define PROXY_ADDR_LEN 46 /* an address as text, with its NUL */

/* An IP address; IPv4-mapped IPv6 (::ffff:a.b.c.d) is stored as IPv4. */
struct proxy_addr {
	int family;    /* 4 or 6 */
	uint8_t b[16]; /* the first 4 bytes for IPv4 */
};

/* A network: an address and the number of leading bits that count. */
struct proxy_net {
	struct proxy_addr a;
	unsigned bits;
};

/* The trusted proxies; n == 0: none (headers never read). */
struct proxy_list {
	struct proxy_net nets[PROXY_MAX_NETS];
	size_t n;
};

/* Where proxy_client took the client address from. */
enum proxy_from {
	PROXY_PEER = 0,     /* the peer: not trusted, or no header */
	PROXY_PEER_UNKNOWN, /* trusted peer, but the node is unknown */
	PROXY_PEER_BAD,     /* trusted peer, but the header is malformed */
	PROXY_XFF,          /* X-Forwarded-For */
	PROXY_FORWARDED,    /* Forwarded */
};

/* What reading one header found (proxy_xff, proxy_forwarded). */
enum proxy_walk {
	PROXY_WALK_FOUND = 0,      /* *out is the client */
	PROXY_WALK_NONE = 1,       /* no element (absent or empty) */
	PROXY_WALK_UNKNOWN = 2,    /* the walk stopped at unknown/obfuscated */
	PROXY_WALK_MALFORMED = -1, /* the header, or a value walked, is bad */
};

/* Parses the len bytes at s: an IPv4 or IPv6 address, without brackets.
 * 0, or -1 if it is not one. */
int proxy_addr_parse(const char *s, size_t len, struct proxy_addr *a);
/* Writes a as text (dotted quad, or RFC 5952 IPv6) into out, which holds
 * at least PROXY_ADDR_LEN bytes. */
void proxy_addr_format(const struct proxy_addr *a, char *out, size_t outlen);

/* Parses a comma-separated list of ADDR or ADDR/BITS (host bits are
 * ignored; IPv4-mapped IPv6 networks become IPv4 ones; an empty list is
 * no proxy) into l. 0, or -1 with why (one line, naming the bad entry)
 * in err. */
int proxy_list_parse(struct proxy_list *l, const char *s, char *err,
                     size_t errlen);
/* 1 if a is in one of l's networks, else 0. */
int proxy_list_has(const struct proxy_list *l, const struct proxy_addr *a);

/* Walks the n X-Forwarded-For header lines (in the order received, each
 * a comma list; an entry may carry a port: 1.2.3.4:80, [::1]:80). */
int proxy_xff(const struct proxy_list *l, const char *const *lines, size_t n,
              struct proxy_addr *out);
/* Walks the n Forwarded header lines by their for= parameters. */
int proxy_forwarded(const struct proxy_list *l, const char *const *lines,
                    size_t n, struct proxy_addr *out);

/* Writes the client address of a request from peer (text) into out
 * (PROXY_ADDR_LEN bytes or more): with headers only from a trusted peer,
 * X-Forwarded-For first, else Forwarded; otherwise the peer. Never
 * fails: whatever cannot be used gives the peer. */
enum proxy_from proxy_client(const struct proxy_list *l, const char *peer,
                             const char *const *xff, size_t nxff,
                             const char *const *fwd, size_t nfwd, char *out,
                             size_t outlen);

#endif
