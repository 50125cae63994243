/* tests/unit/test_proxy.c — trusted proxies: CIDR lists, X-Forwarded-For,
 * Forwarded, and which address a request is charged to */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chatd/proxy.h"

/* The proxies of these tests: a private v4 network, one host, loopback,
 * and a private v6 network. */
#define TRUSTED "10.0.0.0/8, 192.168.1.1,127.0.0.1/32,fd00::/8"

static int
setup(void **state)
{
	struct proxy_list *l = calloc(1, sizeof *l);
	char err[128];

	assert_non_null(l);
	assert_int_equal(proxy_list_parse(l, TRUSTED, err, sizeof err), 0);
	assert_int_equal(l->n, 4);
	*state = l;
	return 0;
}

static int
teardown(void **state)
{
	free(*state);
	return 0;
}

/* The client for a request from peer with the given header lines (NULL
 * for none; lines end at a NULL). Returns a static string. */
static const char *
client(const struct proxy_list *l, const char *peer, const char **xff,
       const char **fwd, enum proxy_from *from)
{
	static char out[PROXY_ADDR_LEN];
	size_t nx = 0, nf = 0;
	enum proxy_from f;

	while (xff != NULL && xff[nx] != NULL)
		nx++;
	while (fwd != NULL && fwd[nf] != NULL)
		nf++;
	f = proxy_client(l, peer, xff, nx, fwd, nf, out, sizeof out);
	if (from != NULL)
		*from = f;
	return out;
}

/* The client from one X-Forwarded-For line via the trusted 10.0.0.1. */
static const char *
xff1(const struct proxy_list *l, const char *line, enum proxy_from *from)
{
	const char *lines[] = {line, NULL};

	return client(l, "10.0.0.1", lines, NULL, from);
}

/* The client from one Forwarded line via the trusted 10.0.0.1. */
static const char *
fwd1(const struct proxy_list *l, const char *line, enum proxy_from *from)
{
	const char *lines[] = {line, NULL};

	return client(l, "10.0.0.1", NULL, lines, from);
}

/* a formatted back to text. */
static const char *
fmt(const struct proxy_addr *a)
{
	static char out[PROXY_ADDR_LEN];

	proxy_addr_format(a, out, sizeof out);
	return out;
}

/* Parses s as an address and formats it; "" if it is not one. */
static const char *
canon(const char *s)
{
	struct proxy_addr a;

	if (proxy_addr_parse(s, strlen(s), &a) != 0)
		return "";
	return fmt(&a);
}

static void
test_proxy_addr_parse_takes_ipv4_and_ipv6_and_canonicalises(void **state)
{
	struct proxy_addr a;

	(void)state;
	assert_string_equal(canon("192.0.2.1"), "192.0.2.1");
	assert_string_equal(canon("0.0.0.0"), "0.0.0.0");
	assert_string_equal(canon("255.255.255.255"), "255.255.255.255");
	assert_string_equal(canon("::1"), "::1");
	assert_string_equal(canon("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
	assert_string_equal(canon("2001:db8::0:1"), "2001:db8::1");
	assert_int_equal(proxy_addr_parse("::1", 3, &a), 0);
	assert_int_equal(a.family, 6);
	/* IPv4-mapped IPv6 is the IPv4 address: one limit bucket. */
	assert_string_equal(canon("::ffff:192.0.2.1"), "192.0.2.1");
	assert_string_equal(canon("::FFFF:c000:0201"), "192.0.2.1");
	assert_int_equal(proxy_addr_parse("::ffff:1.2.3.4", 14, &a), 0);
	assert_int_equal(a.family, 4);
	/* Only the len bytes count. */
	assert_int_equal(proxy_addr_parse("1.2.3.4, 5.6.7.8", 7, &a), 0);
	assert_string_equal(fmt(&a), "1.2.3.4");
}

static void
test_proxy_addr_parse_rejects_what_is_not_an_address(void **state)
{
	static const char *bad[] = {
	    "",
	    " 1.2.3.4",
	    "1.2.3.4 ",
	    "1.2.3",
	    "1.2.3.4.5",
	    "256.1.1.1",
	    "1.2.3.-4",
	    "01.2.3.4",
	    "1.2.3.4/8",
	    "localhost",
	    "example.com",
	    "::g",
	    ":::",
	    "1::2::3",
	    "[::1]",
	    "fe80::1%eth0",
	    "1.2.3.4:80",
	    "unknown",
	    "_hidden",
	    "0x7f.1",
	    "\xff\xfe",
	    "12345678901234567890123456789012345678901234567890"
	    "12345678901234567890"};
	struct proxy_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(proxy_addr_parse(bad[i], strlen(bad[i]), &a),
		                 -1);
	/* An embedded NUL is not part of an address. */
	assert_int_equal(proxy_addr_parse("1.2.3.4\0", 8, &a), -1);
	assert_int_equal(proxy_addr_parse("1.2.3.4", 0, &a), -1);
}

static void
test_proxy_list_parse_takes_addresses_and_cidrs(void **state)
{
	struct proxy_list *l = *state;
	char err[128];

	assert_int_equal(proxy_list_parse(l, "127.0.0.1", err, sizeof err), 0);
	assert_int_equal(l->n, 1);
	assert_int_equal(l->nets[0].bits, 32);
	assert_int_equal(proxy_list_parse(l, "::1", err, sizeof err), 0);
	assert_int_equal(l->nets[0].bits, 128);
	assert_int_equal(
	    proxy_list_parse(l, " 10.0.0.0/8 , fd00::/8 ,", err, sizeof err),
	    0);
	assert_int_equal(l->n, 2);
	assert_int_equal(l->nets[0].bits, 8);
	assert_int_equal(l->nets[1].a.family, 6);
	assert_int_equal(proxy_list_parse(l, "0.0.0.0/0,::/0", err, sizeof err),
	                 0);
	assert_int_equal(l->n, 2);
	/* Empty: no proxy at all. */
	assert_int_equal(proxy_list_parse(l, "", err, sizeof err), 0);
	assert_int_equal(l->n, 0);
	assert_int_equal(proxy_list_parse(l, " , ", err, sizeof err), 0);
	assert_int_equal(l->n, 0);
	/* A v4-mapped network becomes the IPv4 one. */
	assert_int_equal(
	    proxy_list_parse(l, "::ffff:10.0.0.0/104", err, sizeof err), 0);
	assert_int_equal(l->nets[0].a.family, 4);
	assert_int_equal(l->nets[0].bits, 8);
}

static void
test_proxy_list_parse_rejects_bad_entries_and_names_them(void **state)
{
	static const char *bad[] = {"10.0.0.0/33",
	                            "::/129",
	                            "10.0.0.0/",
	                            "10.0.0.0/-1",
	                            "10.0.0.0/+8",
	                            "10.0.0.0/8x",
	                            "10.0.0.0/0008",
	                            "10/8",
	                            "proxy.example.com",
	                            "10.0.0.0/8/8",
	                            "/8",
	                            "1.2.3.4:80",
	                            "[::1]",
	                            "127.0.0.1 127.0.0.2",
	                            "1.2.3.4/32, nonsense"};
	struct proxy_list *l = *state;
	char err[128], many[PROXY_MAX_NETS * 16 + 16] = "";

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(proxy_list_parse(l, bad[i], err, sizeof err),
		                 -1);
		assert_non_null(strstr(err, "is not an address"));
	}
	assert_int_equal(
	    proxy_list_parse(l, "10.0.0.1, bogus/8", err, sizeof err), -1);
	assert_string_equal(err, "'bogus/8' is not an address or ADDR/BITS");
	for (int i = 0; i <= PROXY_MAX_NETS; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many),
		         "10.0.0.%d,", i);
	assert_int_equal(proxy_list_parse(l, many, err, sizeof err), -1);
	assert_non_null(strstr(err, "more than"));
}

/* 1 if the text address s is in l. */
static int
has(const struct proxy_list *l, const char *s)
{
	struct proxy_addr a;

	assert_int_equal(proxy_addr_parse(s, strlen(s), &a), 0);
	return proxy_list_has(l, &a);
}

static void
test_proxy_list_has_matches_prefixes_bit_by_bit(void **state)
{
	struct proxy_list *l = *state;
	char err[128];

	assert_true(has(l, "10.0.0.0"));
	assert_true(has(l, "10.255.255.255"));
	assert_false(has(l, "11.0.0.0"));
	assert_false(has(l, "9.255.255.255"));
	assert_true(has(l, "192.168.1.1"));
	assert_false(has(l, "192.168.1.2"));
	assert_true(has(l, "127.0.0.1"));
	assert_false(has(l, "127.0.0.2"));
	assert_true(has(l, "fd12::1"));
	assert_false(has(l, "fe00::1"));
	assert_false(has(l, "::1"));
	/* Mapped addresses are their IPv4 selves. */
	assert_true(has(l, "::ffff:10.1.2.3"));
	/* A prefix that ends inside a byte; host bits are ignored. */
	assert_int_equal(proxy_list_parse(l, "172.16.99.1/12", err, sizeof err),
	                 0);
	assert_true(has(l, "172.16.0.0"));
	assert_true(has(l, "172.31.255.255"));
	assert_false(has(l, "172.32.0.0"));
	assert_false(has(l, "172.15.255.255"));
	assert_int_equal(proxy_list_parse(l, "2001:db8::/33", err, sizeof err),
	                 0);
	assert_true(has(l, "2001:db8:7fff::1"));
	assert_false(has(l, "2001:db8:8000::1"));
	/* An IPv4 network holds no IPv6 address and the other way round,
	 * but ::/0 holds everything and ::ffff:0:0/96 all of IPv4. */
	assert_int_equal(proxy_list_parse(l, "0.0.0.0/0", err, sizeof err), 0);
	assert_true(has(l, "1.2.3.4"));
	assert_false(has(l, "::1"));
	assert_int_equal(proxy_list_parse(l, "::/0", err, sizeof err), 0);
	assert_true(has(l, "::1"));
	assert_true(has(l, "1.2.3.4"));
	assert_int_equal(proxy_list_parse(l, "::ffff:0:0/96", err, sizeof err),
	                 0);
	assert_true(has(l, "1.2.3.4"));
	assert_false(has(l, "::1"));
	assert_int_equal(proxy_list_parse(l, "", err, sizeof err), 0);
	assert_false(has(l, "1.2.3.4"));
}

static void
test_proxy_client_ignores_headers_from_untrusted_peers(void **state)
{
	struct proxy_list *l = *state, none = {0};
	const char *xff[] = {"198.51.100.7", NULL};
	const char *fwd[] = {"for=198.51.100.7", NULL};
	enum proxy_from from;

	/* A client that talks to chatd directly forges nothing. */
	assert_string_equal(client(l, "203.0.113.5", xff, fwd, &from),
	                    "203.0.113.5");
	assert_int_equal(from, PROXY_PEER);
	assert_string_equal(client(l, "192.168.1.2", xff, NULL, &from),
	                    "192.168.1.2");
	/* Without a list nothing is trusted, not even loopback. */
	assert_string_equal(client(&none, "127.0.0.1", xff, fwd, &from),
	                    "127.0.0.1");
	assert_int_equal(from, PROXY_PEER);
	assert_string_equal(client(NULL, "127.0.0.1", xff, fwd, &from),
	                    "127.0.0.1");
	/* A peer that is no address (a unix socket) is never trusted. */
	assert_string_equal(client(l, "unix", xff, fwd, &from), "unix");
	assert_int_equal(from, PROXY_PEER);
	/* Trusted, but no header: the proxy itself. */
	assert_string_equal(client(l, "10.0.0.1", NULL, NULL, &from),
	                    "10.0.0.1");
	assert_int_equal(from, PROXY_PEER);
}

static void
test_proxy_client_reads_trusted_peers_headers(void **state)
{
	struct proxy_list *l = *state;
	const char *xff[] = {"198.51.100.7", NULL};
	enum proxy_from from;

	assert_string_equal(client(l, "10.0.0.1", xff, NULL, &from),
	                    "198.51.100.7");
	assert_int_equal(from, PROXY_XFF);
	assert_string_equal(client(l, "fd00::5", xff, NULL, &from),
	                    "198.51.100.7");
	/* A v4-mapped peer (a dual-stack listener) is its IPv4 self. */
	assert_string_equal(client(l, "::ffff:10.0.0.1", xff, NULL, &from),
	                    "198.51.100.7");
	assert_int_equal(from, PROXY_XFF);
	assert_string_equal(client(l, "::ffff:203.0.113.1", xff, NULL, &from),
	                    "203.0.113.1");
	assert_int_equal(from, PROXY_PEER);
}

static void
test_proxy_xff_takes_the_rightmost_untrusted_entry(void **state)
{
	struct proxy_list *l = *state;
	enum proxy_from from;

	assert_string_equal(
	    xff1(l, "198.51.100.7, 10.1.1.1, 192.168.1.1", &from),
	    "198.51.100.7");
	assert_int_equal(from, PROXY_XFF);
	assert_string_equal(xff1(l, "198.51.100.7,203.0.113.9", NULL),
	                    "203.0.113.9");
	/* Tabs and spaces, empty list elements. */
	assert_string_equal(xff1(l, " ,\t198.51.100.7 ,, 10.2.3.4 ,", NULL),
	                    "198.51.100.7");
	/* Everything trusted: the left-most. */
	assert_string_equal(xff1(l, "10.9.9.9, 10.0.0.2", &from), "10.9.9.9");
	assert_int_equal(from, PROXY_XFF);
	assert_string_equal(xff1(l, "127.0.0.1", NULL), "127.0.0.1");
}

static void
test_proxy_xff_spoofed_leftmost_entries_never_win(void **state)
{
	struct proxy_list *l = *state;

	/* The client sent "X-Forwarded-For: 1.1.1.1", the proxy appended
	 * the address it saw: the client is 203.0.113.9. */
	assert_string_equal(xff1(l, "1.1.1.1, 203.0.113.9", NULL),
	                    "203.0.113.9");
	/* Forged trusted addresses don't skip the real one either. */
	assert_string_equal(xff1(l, "10.0.0.7, 203.0.113.9", NULL),
	                    "203.0.113.9");
	assert_string_equal(
	    xff1(l, "1.1.1.1, 10.0.0.7, 203.0.113.9, 10.0.0.2", NULL),
	    "203.0.113.9");
	/* Nor does garbage, or "unknown", left of the client. */
	assert_string_equal(xff1(l, "not-an-address, 203.0.113.9", NULL),
	                    "203.0.113.9");
	assert_string_equal(xff1(l, "unknown, 203.0.113.9", NULL),
	                    "203.0.113.9");
	assert_string_equal(xff1(l, "\"; DROP TABLE, 203.0.113.9", NULL),
	                    "203.0.113.9");
}

static void
test_proxy_xff_spans_header_lines_in_order(void **state)
{
	struct proxy_list *l = *state;
	const char *two[] = {"1.1.1.1, 2.2.2.2", "10.0.0.3", NULL};
	const char *three[] = {"1.1.1.1", "", "3.3.3.3, 10.0.0.3", NULL};
	const char *trusted[] = {"10.0.0.4", "10.0.0.3", NULL};

	assert_string_equal(client(l, "10.0.0.1", two, NULL, NULL), "2.2.2.2");
	assert_string_equal(client(l, "10.0.0.1", three, NULL, NULL),
	                    "3.3.3.3");
	assert_string_equal(client(l, "10.0.0.1", trusted, NULL, NULL),
	                    "10.0.0.4");
}

static void
test_proxy_xff_takes_ports_brackets_and_ipv6(void **state)
{
	struct proxy_list *l = *state;

	assert_string_equal(xff1(l, "198.51.100.7:5555", NULL), "198.51.100.7");
	assert_string_equal(xff1(l, "2001:db8::1", NULL), "2001:db8::1");
	assert_string_equal(xff1(l, "[2001:db8::1]", NULL), "2001:db8::1");
	assert_string_equal(xff1(l, "[2001:DB8::1]:443", NULL), "2001:db8::1");
	assert_string_equal(xff1(l, "2001:db8::1, [fd00::1]:80", NULL),
	                    "2001:db8::1");
	assert_string_equal(xff1(l, "::ffff:198.51.100.7", NULL),
	                    "198.51.100.7");
	assert_string_equal(xff1(l, "[::ffff:198.51.100.7]:1", NULL),
	                    "198.51.100.7");
}

static void
test_proxy_xff_bad_or_unknown_entries_give_the_peer(void **state)
{
	static const char *bad[] = {"garbage",
	                            "198.51.100.7 junk",
	                            "198.51.100.7:",
	                            "198.51.100.7:99999",
	                            "198.51.100.7:80:80",
	                            "198.51.100.7:http",
	                            "[2001:db8::1",
	                            "2001:db8::1]",
	                            "[2001:db8::1]80",
	                            "[198.51.100.7]",
	                            "[]",
	                            "1.2.3.4/8",
	                            "203.0.113.9, nonsense",
	                            "_",
	                            "_bad!",
	                            "host.example:80",
	                            "203.0.113.9\"",
	                            "%00",
	                            "\x01\x02"};
	struct proxy_list *l = *state;
	enum proxy_from from;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_string_equal(xff1(l, bad[i], &from), "10.0.0.1");
		assert_int_equal(from, PROXY_PEER_BAD);
	}
	assert_string_equal(xff1(l, "unknown", &from), "10.0.0.1");
	assert_int_equal(from, PROXY_PEER_UNKNOWN);
	assert_string_equal(xff1(l, "UNKNOWN, 10.0.0.3", &from), "10.0.0.1");
	assert_int_equal(from, PROXY_PEER_UNKNOWN);
	assert_string_equal(xff1(l, "_hidden", &from), "10.0.0.1");
	assert_int_equal(from, PROXY_PEER_UNKNOWN);
	/* An empty header names nobody: the peer. */
	assert_string_equal(xff1(l, "", &from), "10.0.0.1");
	assert_int_equal(from, PROXY_PEER);
	assert_string_equal(xff1(l, " , ,", &from), "10.0.0.1");
	assert_int_equal(from, PROXY_PEER);
}

static void
test_proxy_forwarded_reads_for_parameters(void **state)
{
	struct proxy_list *l = *state;
	enum proxy_from from;

	assert_string_equal(fwd1(l, "for=198.51.100.7", &from), "198.51.100.7");
	assert_int_equal(from, PROXY_FORWARDED);
	assert_string_equal(fwd1(l, "For=\"198.51.100.7\"", NULL),
	                    "198.51.100.7");
	assert_string_equal(fwd1(l, "FOR=\"198.51.100.7:4711\"", NULL),
	                    "198.51.100.7");
	assert_string_equal(fwd1(l, "for=\"[2001:db8:cafe::17]\"", NULL),
	                    "2001:db8:cafe::17");
	assert_string_equal(fwd1(l, "for=\"[2001:db8:cafe::17]:4711\"", NULL),
	                    "2001:db8:cafe::17");
	assert_string_equal(fwd1(l, "for=\"[2001:db8::1]:_port-1\"", NULL),
	                    "2001:db8::1");
	assert_string_equal(fwd1(l, "for=\"\\1\\98.51.100.7\"", NULL),
	                    "198.51.100.7");
	/* Other parameters, in any order, any case; quoted commas and
	 * semicolons don't split. */
	assert_string_equal(fwd1(l,
	                         "proto=https;for=198.51.100.7;"
	                         "by=10.0.0.1;host=chat.example.com",
	                         NULL),
	                    "198.51.100.7");
	assert_string_equal(fwd1(l,
	                         "by=\"a,b;c\";for=198.51.100.7 ; "
	                         "host=\"x\\\"y\"",
	                         NULL),
	                    "198.51.100.7");
	/* Leniency: unquoted ports and brackets. */
	assert_string_equal(fwd1(l, "for=198.51.100.7:80", NULL),
	                    "198.51.100.7");
	assert_string_equal(fwd1(l, "for=[2001:db8::1]", NULL), "2001:db8::1");
}

static void
test_proxy_forwarded_walks_elements_from_the_right(void **state)
{
	struct proxy_list *l = *state;
	const char *lines[] = {"for=1.1.1.1, for=198.51.100.7",
	                       "for=10.0.0.3;by=10.0.0.1", NULL};
	const char *trusted[] = {"for=10.0.0.9", "for=\"[fd00::2]\"", NULL};

	assert_string_equal(fwd1(l, "for=1.1.1.1, for=198.51.100.7", NULL),
	                    "198.51.100.7");
	assert_string_equal(fwd1(l, "for=198.51.100.7, for=10.0.0.2", NULL),
	                    "198.51.100.7");
	assert_string_equal(client(l, "10.0.0.1", NULL, lines, NULL),
	                    "198.51.100.7");
	assert_string_equal(client(l, "10.0.0.1", NULL, trusted, NULL),
	                    "10.0.0.9");
	/* Spoofing: the client's own element, left of the proxy's, and
	 * garbage or unknown there, changes nothing. */
	assert_string_equal(fwd1(l, "for=10.0.0.5, for=203.0.113.9", NULL),
	                    "203.0.113.9");
	assert_string_equal(fwd1(l, "for=unknown, for=203.0.113.9", NULL),
	                    "203.0.113.9");
	assert_string_equal(fwd1(l, "for=nonsense, for=203.0.113.9", NULL),
	                    "203.0.113.9");
	assert_string_equal(
	    fwd1(l, "for=1.1.1.1;for=2.2.2.2, for=203.0.113.9", NULL),
	    "203.0.113.9");
	/* Empty elements are skipped. */
	assert_string_equal(fwd1(l, ", for=198.51.100.7,,; ;", NULL),
	                    "198.51.100.7");
}

static void
test_proxy_forwarded_unknown_or_obfuscated_gives_the_peer(void **state)
{
	static const char *unknown[] = {
	    "for=unknown",
	    "for=\"unknown\"",
	    "for=_hidden",
	    "for=\"_SEVKISEK\"",
	    "for=_abc.def-1",
	    "by=10.0.0.1",
	    "proto=https;host=x",
	    "for=198.51.100.7, for=unknown",
	    "for=198.51.100.7, by=1.2.3.4",
	    "for=198.51.100.7, for=_proxy, for=10.0.0.3"};
	struct proxy_list *l = *state;
	enum proxy_from from;

	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		assert_string_equal(fwd1(l, unknown[i], &from), "10.0.0.1");
		assert_int_equal(from, PROXY_PEER_UNKNOWN);
	}
}

static void
test_proxy_forwarded_malformed_gives_the_peer(void **state)
{
	static const char *bad[] = {
	    "for", "for=", "for =1.2.3.4", "=1.2.3.4", "for=\"198.51.100.7",
	    "for=\"198.51.100.7\\", "for=1.2.3.4 junk", "for=\"1.2.3.4\"x",
	    "for=1.2.3.4;for=5.6.7.8", "for=garbage", "for=\"[2001:db8::1\"",
	    "for=\"[2001:db8::1]x\"", "for=\"2001:db8::1]\"", "for=\"\"",
	    "for=_", "for=_bad!x", "for=\"_a b\"",
	    "for=1.2.3.4:", "for=\"1.2.3.4:65536\"", "for=\"[::1]:_\"",
	    "for=203.0.113.9, for=@@@",
	    /* An early syntax error spoils the whole header. */
	    "for=\"unterminated, for=203.0.113.9", "for=1.2.3.4 for=5.6.7.8",
	    "for=1.2.3.4,,\"x\""};
	struct proxy_list *l = *state;
	enum proxy_from from;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_string_equal(fwd1(l, bad[i], &from), "10.0.0.1");
		assert_int_equal(from, PROXY_PEER_BAD);
	}
	/* A bad second line spoils the first. */
	{
		const char *lines[] = {"for=198.51.100.7", "for=\"x", NULL};

		assert_string_equal(client(l, "10.0.0.1", NULL, lines, &from),
		                    "10.0.0.1");
		assert_int_equal(from, PROXY_PEER_BAD);
	}
}

static void
test_proxy_client_x_forwarded_for_wins_over_forwarded(void **state)
{
	struct proxy_list *l = *state;
	const char *xff[] = {"203.0.113.9", NULL};
	const char *fwd[] = {"for=198.51.100.7", NULL};
	const char *bad[] = {"garbage", NULL};
	enum proxy_from from;

	/* A proxy that sets X-Forwarded-For passes the client's own
	 * Forwarded along: it must not count. */
	assert_string_equal(client(l, "10.0.0.1", xff, fwd, &from),
	                    "203.0.113.9");
	assert_int_equal(from, PROXY_XFF);
	/* Even a bad X-Forwarded-For does not hand over to Forwarded. */
	assert_string_equal(client(l, "10.0.0.1", bad, fwd, &from), "10.0.0.1");
	assert_int_equal(from, PROXY_PEER_BAD);
	assert_string_equal(client(l, "10.0.0.1", NULL, fwd, &from),
	                    "198.51.100.7");
	assert_int_equal(from, PROXY_FORWARDED);
}

/* A header of about n bytes: whole parts repeated, then tail. Caller
 * frees. */
static char *
huge(const char *part, size_t n, const char *tail)
{
	size_t pl = strlen(part), tl = strlen(tail);
	char *s;

	n -= n % pl;
	s = malloc(n + tl + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		s[i] = part[i % pl];
	memcpy(s + n, tail, tl + 1);
	return s;
}

static void
test_proxy_huge_headers_are_walked_in_linear_time(void **state)
{
	struct proxy_list *l = *state;
	const size_t n = 4 * 1024 * 1024;
	char *s;

	/* Four megabytes of forged entries, then the proxy's. */
	s = huge("1.2.3.4, ", n, "203.0.113.9");
	assert_string_equal(xff1(l, s, NULL), "203.0.113.9");
	free(s);
	s = huge("10.0.0.2,", n, "10.0.0.3");
	assert_string_equal(xff1(l, s, NULL), "10.0.0.2");
	free(s);
	s = huge(",", n, "");
	assert_string_equal(xff1(l, s, NULL), "10.0.0.1");
	free(s);
	s = huge("9", n, "");
	assert_string_equal(xff1(l, s, NULL), "10.0.0.1");
	free(s);
	s = huge("for=1.2.3.4;by=\"a,b\", ", n, "for=203.0.113.9");
	assert_string_equal(fwd1(l, s, NULL), "203.0.113.9");
	free(s);
	s = huge("for=\"", n, "");
	assert_string_equal(fwd1(l, s, NULL), "10.0.0.1");
	free(s);
	/* A quoted value far longer than any address. */
	s = huge("1", n, "\"");
	{
		char *v = malloc(n + 8);

		assert_non_null(v);
		snprintf(v, n + 8, "for=\"%s", s);
		assert_string_equal(fwd1(l, v, NULL), "10.0.0.1");
		free(v);
	}
	free(s);
}

/* Random bytes from a small alphabet that looks like these headers:
 * nothing may crash or read out of bounds (run under ASan). */
static void
test_proxy_random_headers_never_crash(void **state)
{
	static const char abc[] = "0123456789abcdefABCDEF.:[],;=\"\\_ \tfor"
	                          "unknown/%\x01\xff";
	struct proxy_list *l = *state;
	char line[96], line2[32], out[PROXY_ADDR_LEN];
	const char *lines[] = {line, line2};
	uint32_t x = 12345;
	struct proxy_addr a;

	for (int i = 0; i < 100000; i++) {
		size_t n = 0, m = 0;

		x = x * 1103515245 + 12345;
		n = (x >> 16) % (sizeof line - 1);
		for (size_t k = 0; k < n; k++) {
			x = x * 1103515245 + 12345;
			line[k] = abc[(x >> 16) % (sizeof abc - 1)];
		}
		line[n] = '\0';
		x = x * 1103515245 + 12345;
		m = (x >> 16) % (sizeof line2 - 1);
		memcpy(line2, line, m < n ? m : n);
		line2[m < n ? m : n] = '\0';
		proxy_xff(l, lines, 2, &a);
		proxy_forwarded(l, lines, 2, &a);
		proxy_client(l, "10.0.0.1", lines, 2, NULL, 0, out, sizeof out);
		proxy_client(l, "10.0.0.1", NULL, 0, lines, 2, out, sizeof out);
		assert_true(strlen(out) < sizeof out);
		proxy_addr_parse(line, n, &a);
		{
			struct proxy_list tmp;
			char err[128];

			proxy_list_parse(&tmp, line, err, sizeof err);
		}
	}
}

static void
test_proxy_client_fits_any_output_buffer(void **state)
{
	struct proxy_list *l = *state;
	const char *xff[] = {"2001:db8:1234:5678:9abc:def0:1234:5678", NULL};
	char out[8];

	proxy_client(l, "10.0.0.1", xff, 1, NULL, 0, out, sizeof out);
	assert_true(strlen(out) < sizeof out);
	proxy_client(l, "203.0.113.250", xff, 1, NULL, 0, out, sizeof out);
	assert_string_equal(out, "203.0.1");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_proxy_addr_parse_takes_ipv4_and_ipv6_and_canonicalises),
	    T(test_proxy_addr_parse_rejects_what_is_not_an_address),
	    T(test_proxy_list_parse_takes_addresses_and_cidrs),
	    T(test_proxy_list_parse_rejects_bad_entries_and_names_them),
	    T(test_proxy_list_has_matches_prefixes_bit_by_bit),
	    T(test_proxy_client_ignores_headers_from_untrusted_peers),
	    T(test_proxy_client_reads_trusted_peers_headers),
	    T(test_proxy_xff_takes_the_rightmost_untrusted_entry),
	    T(test_proxy_xff_spoofed_leftmost_entries_never_win),
	    T(test_proxy_xff_spans_header_lines_in_order),
	    T(test_proxy_xff_takes_ports_brackets_and_ipv6),
	    T(test_proxy_xff_bad_or_unknown_entries_give_the_peer),
	    T(test_proxy_forwarded_reads_for_parameters),
	    T(test_proxy_forwarded_walks_elements_from_the_right),
	    T(test_proxy_forwarded_unknown_or_obfuscated_gives_the_peer),
	    T(test_proxy_forwarded_malformed_gives_the_peer),
	    T(test_proxy_client_x_forwarded_for_wins_over_forwarded),
	    T(test_proxy_huge_headers_are_walked_in_linear_time),
	    T(test_proxy_random_headers_never_crash),
	    T(test_proxy_client_fits_any_output_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
