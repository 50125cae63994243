/* chatd/redis.c — Redis pub/sub between nodes, on the event loop */
#include "chatd/redis.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "chatd/log.h"
#include "chatd/url.h"
#include "chatd/xmalloc.h"

#define DEFAULT_PORT 6379
#define SHOWN_MAX 128 /* bytes of a URL (redacted) in an error message */

enum link_state {
	LINK_DOWN = 0,   /* waiting for the retry timer */
	LINK_CONNECTING, /* connecting (and for the subscriber, subscribing) */
	LINK_UP,
};

/* One of the two connections. */
struct link {
	struct redis *r;
	const char *name; /* "subscriber" or "publisher" */
	int sub;
	redisAsyncContext *ac; /* NULL when down */
	enum link_state state;
	struct event *timer; /* retry when down, timeout when connecting */
	unsigned backoff_ms;
	unsigned attempts; /* failed since the last success */
	int outage;        /* an outage was logged and is not over */
	char why[160];     /* why this node closes the connection, or "" */
};

struct redis {
	struct event_base *base;
	struct redis_addr addr;
	char *url; /* redacted: what logs print */
	char *channel;
	size_t channel_len;
	struct redis_callbacks cb;
	struct redis_stats st;
	struct link sub, pub;
	unsigned max_pending;
	size_t max_bytes;
	int up;
	int auth_logged; /* a refused AUTH was logged; until up again */
	int freeing;
	uint32_t rand;
};

/* A publish awaiting its reply. */
struct pending {
	struct redis *r;
	uint64_t tag;
	size_t len;
};

static void link_connect(struct link *l);

/* Writes a message to err. */
static int
fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
	if (errlen > 0)
		snprintf(err, errlen, fmt, arg);
	return -1;
}

/* Parses a decimal number of at most max from s up to end: 0, or -1. */
static int
parse_num(const char *s, const char *end, int max, int *v)
{
	long n = 0;

	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
		if (n > max)
			return -1;
	}
	*v = (int)n;
	return 0;
}

/* Decodes one part of the userinfo (what names it) into out: 0, or -1
 * with a message about shown in err. */
static int
userinfo_part(const char *s, const char *end, char *out, size_t len,
              const char *what, const char *shown, char *err, size_t errlen)
{
	long rc = url_part_decode(s, end, out, len);

	if (rc >= 0)
		return 0;
	if (errlen > 0)
		snprintf(err, errlen,
		         rc == -1 ? "%s: bad %%-escape in the %s (%%XX, not "
		                    "%%00)"
		                  : "%s: the %s is longer than %zu bytes",
		         shown, what,
		         (size_t)(what[0] == 'u' ? REDIS_USER_MAX
		                                 : REDIS_PASSWORD_MAX) -
		             1);
	return -1;
}

/* Parses the userinfo of a redis:// URL, from s up to at (the '@'):
 * "[USER]:PASSWORD" or "USER". 0, or -1 with a message in err. */
static int
parse_userinfo(const char *s, const char *at, struct redis_addr *a,
               const char *shown, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', (size_t)(at - s));

	if (memchr(s, '/', (size_t)(at - s)) != NULL)
		return fail(err, errlen,
		            "%s: a '/' in the user or password: "
		            "percent-encode it (%%2F)",
		            shown);
	if (colon == NULL) { /* USER@: the password comes from a file */
		if (s == at)
			return fail(err, errlen, "%s: an empty user before '@'",
			            shown);
		return userinfo_part(s, at, a->user, sizeof(a->user), "user",
		                     shown, err, errlen);
	}
	if (colon + 1 == at)
		return fail(err, errlen, "%s: an empty password", shown);
	if (userinfo_part(s, colon, a->user, sizeof(a->user), "user", shown,
	                  err, errlen) < 0 ||
	    userinfo_part(colon + 1, at, a->password, sizeof(a->password),
	                  "password", shown, err, errlen) < 0)
		return -1;
	return 0;
}

/* Replaces the value of every password= in buf by *** (or as many *
 * when shorter: buf never grows). A query string is refused, but printed
 * in the refusal. */
static void
redact_query(char *buf)
{
	char *p = buf;
	size_t rest;

	while ((p = strcasestr(p, "password=")) != NULL) {
		p += 9;
		rest = strcspn(p, "&#");
		if (rest < 3) { /* in place: never longer than buf was */
			memset(p, '*', rest);
			continue;
		}
		memcpy(p, "***", 3);
		memmove(p + 3, p + rest, strlen(p + rest) + 1);
		p += 3;
	}
}

const char *
redis_url_redact(const char *url, char *buf, size_t len)
{
	const char *h, *at, *colon;

	if (len == 0)
		return buf;
	h = strstr(url, "://");
	if (h != NULL)
		h += 3;
	/* The last '@': whatever comes before it may be the password (a
	 * URL with two is refused, but printed in the refusal). */
	at = h != NULL ? strrchr(h, '@') : NULL;
	if (at == NULL) {
		snprintf(buf, len, "%s", url);
	} else {
		colon = memchr(h, ':', (size_t)(at - h));
		if (colon == NULL) /* USER@ or PASSWORD@ (redis-cli's) */
			colon = h - 1;
		snprintf(buf, len, "%.*s***%s", (int)(colon + 1 - url), url,
		         at);
	}
	redact_query(buf);
	return buf;
}

int
redis_url_parse(const char *url, struct redis_addr *a, char *err, size_t errlen)
{
	static const char usage[] = "%s: expected "
	                            "redis://[[USER]:PASSWORD@]host[:port][/db]"
	                            " or unix:/path/to/socket";
	const char *h, *hend, *p, *slash, *at;
	char shown[SHOWN_MAX];

	memset(a, 0, sizeof(*a));
	if (url == NULL)
		return fail(err, errlen, usage, "(none)");
	redis_url_redact(url, shown, sizeof(shown));
	if (strncmp(url, "unix:", 5) == 0) {
		p = url + 5;
		/* No authority (unix://...), so no userinfo: a password goes
		 * in --redis-password-file. */
		if (p[0] != '/' || p[1] == '/' ||
		    strlen(p) >= sizeof(a->path) || strpbrk(p, "?#") != NULL)
			return fail(err, errlen, usage, shown);
		strcpy(a->path, p);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0 || strpbrk(url, "?#") != NULL)
		return fail(err, errlen, usage, shown);
	h = url + 8;
	if ((at = strchr(h, '@')) != NULL) {
		if (strchr(at + 1, '@') != NULL)
			return fail(
			    err, errlen,
			    "%s: '@' twice: percent-encode an '@' of the "
			    "user or password (%%40)",
			    shown);
		if (parse_userinfo(h, at, a, shown, err, errlen) < 0)
			goto bad;
		h = at + 1;
	}
	slash = strchr(h, '/');
	if (slash == NULL)
		slash = h + strlen(h);
	if (*h == '[') { /* [IPv6] */
		hend = memchr(h, ']', slash - h);
		if (hend == NULL)
			goto usage;
		h++;
		p = hend + 1;
	} else {
		hend = memchr(h, ':', slash - h);
		if (hend == NULL)
			hend = slash;
		p = hend;
	}
	if (hend == h || (size_t)(hend - h) >= sizeof(a->host))
		goto usage;
	memcpy(a->host, h, hend - h);
	a->port = DEFAULT_PORT;
	if (p < slash) {
		if (*p != ':' || parse_num(p + 1, slash, 65535, &a->port) < 0 ||
		    a->port == 0)
			goto usage;
	}
	if (*slash == '/' && slash[1] != '\0' &&
	    parse_num(slash + 1, slash + strlen(slash), 1 << 20, &a->db) < 0)
		goto usage;
	if (strchr(a->host, '/') != NULL)
		goto usage;
	return 0;
usage:
	fail(err, errlen, usage, shown);
bad:
	explicit_bzero(a, sizeof(*a));
	return -1;
}

/* The password of connections whose URL has none (redis_set_password). */
static char *default_password;

void
redis_set_password(const char *password)
{
	if (default_password != NULL) {
		explicit_bzero(default_password, strlen(default_password));
		free(default_password);
	}
	default_password = password != NULL ? xstrdup(password) : NULL;
}

int
redis_password_read(const char *path, char *buf, size_t len, char *err,
                    size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n;
	int bad;

	if (f == NULL) {
		if (errlen > 0)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, len, f);
	bad = ferror(f);
	fclose(f);
	if (bad)
		return fail(err, errlen, "%s: cannot read it", path);
	if (n == len) {
		explicit_bzero(buf, len);
		if (errlen > 0)
			snprintf(err, errlen,
			         "%s: a password is at most %d bytes", path,
			         REDIS_PASSWORD_MAX - 1);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	bad = n == 0 ? 1 : strlen(buf) != n ? 2 : strchr(buf, '\n') ? 3 : 0;
	if (bad == 0 && n <= REDIS_PASSWORD_MAX - 1)
		return 0;
	explicit_bzero(buf, len);
	return fail(err, errlen,
	            bad == 1   ? "%s: empty (the password, one line)"
	            : bad == 2 ? "%s: a NUL byte in the password"
	            : bad == 3 ? "%s: more than one line (the password, "
	                         "one line)"
	                       : "%s: the password is too long",
	            path);
}

/* Parses url and completes it with the password of redis_set_password if
 * it has none: 0, or -1 with a message in err. */
static int
addr_load(const char *url, struct redis_addr *a, char *err, size_t errlen)
{
	char shown[SHOWN_MAX];

	if (redis_url_parse(url, a, err, errlen) < 0)
		return -1;
	if (a->password[0] == '\0' && default_password != NULL)
		snprintf(a->password, sizeof(a->password), "%s",
		         default_password);
	if (a->user[0] != '\0' && a->password[0] == '\0')
		return fail(err, errlen,
		            "%s: a user but no password (USER:PASSWORD@, or "
		            "USER@ with --redis-password-file)",
		            redis_url_redact(url, shown, sizeof(shown)));
	return 0;
}

/* A monotonic-ish pseudo-random number for jitter. */
static uint32_t
next_rand(struct redis *r)
{
	r->rand ^= r->rand << 13;
	r->rand ^= r->rand >> 17;
	r->rand ^= r->rand << 5;
	return r->rand;
}

/* Arms l's timer for ms. */
static void
timer_set(struct link *l, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(l->timer, &tv);
}

/* Calls on_up when both links are up (and were not). */
static void
maybe_up(struct redis *r)
{
	if (r->up || r->sub.state != LINK_UP || r->pub.state != LINK_UP)
		return;
	r->up = 1;
	r->auth_logged = 0;
	if (r->cb.on_up != NULL)
		r->cb.on_up(r->cb.arg);
}

/* Calls on_down if both links were up. */
static void
maybe_down(struct redis *r)
{
	if (!r->up)
		return;
	r->up = 0;
	if (r->cb.on_down != NULL && !r->freeing)
		r->cb.on_down(r->cb.arg);
}

/* l failed or was lost (its context gone): retry after the backoff. */
static void
link_retry(struct link *l, const char *why)
{
	struct redis *r = l->r;
	unsigned ms = l->backoff_ms;

	l->ac = NULL;
	l->state = LINK_DOWN;
	l->attempts++;
	if (!l->outage) {
		log_warn("%s: %s of %s: %s; reconnecting", __func__, l->name,
		         r->url, why);
		l->outage = 1;
	} else {
		log_debug("%s: %s of %s: %s (attempt %u)", __func__, l->name,
		          r->url, why, l->attempts);
	}
	ms = ms / 2 + next_rand(r) % (ms / 2 + 1);
	if (l->backoff_ms < REDIS_BACKOFF_MAX_MS)
		l->backoff_ms = l->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS
		                    ? REDIS_BACKOFF_MAX_MS
		                    : l->backoff_ms * 2;
	timer_set(l, ms);
	maybe_down(r);
}

/* l is ready. */
static void
link_up(struct link *l)
{
	struct redis *r = l->r;

	evtimer_del(l->timer);
	l->state = LINK_UP;
	l->backoff_ms = REDIS_BACKOFF_MIN_MS;
	r->st.connects++;
	if (l->outage)
		log_info("%s: %s of %s: connected again after %u attempts",
		         __func__, l->name, r->url, l->attempts);
	else
		log_debug("%s: %s of %s: connected", __func__, l->name, r->url);
	l->outage = 0;
	l->attempts = 0;
	maybe_up(r);
}

/* Drops l's context from outside hiredis's callbacks (a timeout). */
static void
link_abort(struct link *l, const char *why)
{
	redisAsyncContext *ac = l->ac;

	l->ac = NULL; /* its callbacks, run by the free, see it is stale */
	if (ac != NULL)
		redisAsyncFree(ac);
	link_retry(l, why);
}

/* hiredis: the connection is made, or failed (the context is then freed
 * by hiredis after this returns). */
static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct link *l = ac->data;

	if (l == NULL || l->ac != ac)
		return;
	if (status != REDIS_OK) {
		link_retry(l, ac->errstr[0] ? ac->errstr : "connect failed");
		return;
	}
	redisEnableKeepAlive((redisContext *)&ac->c);
	if (!l->sub && l->r->addr.password[0] == '\0')
		link_up(l);
}

/* hiredis: the connection is gone (the context is freed after this). */
static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct link *l = ac->data;
	const char *why;

	if (l == NULL || l->ac != ac)
		return;
	why = l->why[0] ? l->why : status == REDIS_OK ? "closed" : ac->errstr;
	if (why == NULL || !why[0])
		why = "connection lost";
	if (l->state == LINK_UP)
		l->r->st.disconnects++;
	link_retry(l, why);
}

/* hiredis: a reply on the subscriber (confirmation, or a message). */
static void
on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct link *l = priv;
	struct redis *r = l->r;
	redisReply *rep = reply;

	if (rep == NULL || l->ac != ac || r->freeing)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		log_warn("%s: SUBSCRIBE on %s: %s", __func__, r->url, rep->str);
		redisAsyncDisconnect(ac); /* retried via on_disconnect */
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(rep->element[0]->str, "subscribe") == 0) {
		if (l->state == LINK_CONNECTING)
			link_up(l);
	} else if (strcmp(rep->element[0]->str, "message") == 0 &&
	           rep->element[2]->type == REDIS_REPLY_STRING) {
		r->st.received++;
		if (r->cb.on_message != NULL)
			r->cb.on_message(r->cb.arg,
			                 (const uint8_t *)rep->element[2]->str,
			                 rep->element[2]->len);
	}
}

/* hiredis: the reply to a PUBLISH, or NULL if the connection went. */
static void
on_pub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct pending *p = priv;
	struct redis *r = p->r;
	redisReply *rep = reply;

	(void)ac;
	r->st.pending--;
	r->st.pending_bytes -= p->len;
	if (rep != NULL && rep->type != REDIS_REPLY_ERROR) {
		r->st.published++;
	} else {
		r->st.publish_failures++;
		if (rep != NULL)
			log_debug("%s: PUBLISH on %s: %s", __func__, r->url,
			          rep->str);
		if (r->cb.on_publish_failed != NULL && !r->freeing)
			r->cb.on_publish_failed(r->cb.arg, p->tag);
	}
	free(p);
}

/* Queues the SUBSCRIBE of subscriber l on ac: REDIS_OK or REDIS_ERR. */
static int
link_subscribe(struct link *l, redisAsyncContext *ac)
{
	return redisAsyncCommand(ac, on_sub_reply, l, "SUBSCRIBE %b",
	                         l->r->channel, l->r->channel_len);
}

/* Closes l's connection from inside one of its callbacks, for why (the
 * retry logs it). */
static void
link_drop(struct link *l, redisAsyncContext *ac, const char *what,
          const char *why)
{
	snprintf(l->why, sizeof(l->why), "%s: %s", what, why);
	redisAsyncDisconnect(ac); /* retried via on_disconnect */
}

/* hiredis: the reply to AUTH. Refused: logged once for both links until
 * they are up again (a wrong password stays wrong), never the password;
 * the connection is closed and retried with the backoff. */
static void
on_auth_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct link *l = priv;
	struct redis *r = l->r;
	redisReply *rep = reply;
	const char *why;

	if (rep == NULL || l->ac != ac || r->freeing)
		return;
	if (rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0) {
		if (!l->sub)
			link_up(l);
		else if (link_subscribe(l, ac) != REDIS_OK)
			link_drop(l, ac, "SUBSCRIBE", "not sent");
		return;
	}
	why = rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply";
	if (!r->auth_logged) {
		log_warn("%s: Redis at %s refused the password%s%s (%s); "
		         "retrying",
		         __func__, r->url, r->addr.user[0] ? " of user " : "",
		         r->addr.user, why);
		r->auth_logged = 1;
	}
	l->outage = 1; /* logged above: the retries are debug */
	link_drop(l, ac, "AUTH refused", why);
}

/* Queues what l sends first on ac: AUTH if there is a password, else the
 * subscriber's SUBSCRIBE. REDIS_OK or REDIS_ERR. */
static int
link_greet(struct link *l, redisAsyncContext *ac)
{
	const struct redis_addr *a = &l->r->addr;

	if (a->password[0] == '\0')
		return l->sub ? link_subscribe(l, ac) : REDIS_OK;
	if (a->user[0] == '\0')
		return redisAsyncCommand(ac, on_auth_reply, l, "AUTH %s",
		                         a->password);
	return redisAsyncCommand(ac, on_auth_reply, l, "AUTH %s %s", a->user,
	                         a->password);
}

/* Starts a connection of l: AUTH first if there is a password, then (the
 * subscriber) SUBSCRIBE, both queued until it is made. */
static void
link_connect(struct link *l)
{
	struct redis *r = l->r;
	redisAsyncContext *ac;

	if (r->addr.path[0])
		ac = redisAsyncConnectUnix(r->addr.path);
	else
		ac = redisAsyncConnect(r->addr.host, r->addr.port);
	if (ac == NULL || ac->err) {
		char why[128];

		snprintf(why, sizeof(why), "%s",
		         ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		link_retry(l, why);
		return;
	}
	ac->data = l;
	l->ac = ac;
	l->state = LINK_CONNECTING;
	l->why[0] = '\0';
	if (redisLibeventAttach(ac, r->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK ||
	    link_greet(l, ac) != REDIS_OK) {
		link_abort(l, "cannot set up the connection");
		return;
	}
	timer_set(l, REDIS_CONNECT_TIMEOUT_MS);
}

/* l's timer: retry when down, give up a connection that takes too long. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;

	(void)fd;
	(void)what;
	if (l->state == LINK_DOWN)
		link_connect(l);
	else if (l->state == LINK_CONNECTING)
		link_abort(l, "timed out");
}

/* Sets up link l of r. */
static void
link_init(struct redis *r, struct link *l, const char *name, int sub)
{
	l->r = r;
	l->name = name;
	l->sub = sub;
	l->backoff_ms = REDIS_BACKOFF_MIN_MS;
	l->timer = evtimer_new(r->base, on_timer, l);
}

struct redis *
redis_new(struct event_base *base, const char *url, const char *channel,
          const struct redis_callbacks *cb, char *err, size_t errlen)
{
	struct redis_addr addr;
	struct redis *r;
	struct timespec ts;
	char shown[512];

	if (addr_load(url, &addr, err, errlen) < 0)
		return NULL;
	redis_url_redact(url, shown, sizeof(shown));
	if (channel == NULL || channel[0] == '\0') {
		explicit_bzero(&addr, sizeof(addr));
		fail(err, errlen, "%s: empty channel name", shown);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->addr = addr;
	explicit_bzero(&addr, sizeof(addr));
	r->url = xstrdup(shown);
	r->channel = xstrdup(channel);
	r->channel_len = strlen(channel);
	r->cb = *cb;
	r->max_pending = REDIS_PENDING_MAX;
	r->max_bytes = REDIS_PENDING_BYTES;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->rand = (uint32_t)(ts.tv_nsec ^ getpid()) | 1;
	link_init(r, &r->sub, "subscriber", 1);
	link_init(r, &r->pub, "publisher", 0);
	link_connect(&r->sub);
	link_connect(&r->pub);
	return r;
}

/* Closes l's connection and timer. */
static void
link_close(struct link *l)
{
	redisAsyncContext *ac = l->ac;

	l->ac = NULL;
	l->state = LINK_DOWN;
	if (ac != NULL)
		redisAsyncFree(ac); /* runs on_pub_reply for what is pending */
	if (l->timer != NULL)
		event_free(l->timer);
	l->timer = NULL;
}

void
redis_free(struct redis *r)
{
	if (r == NULL)
		return;
	r->freeing = 1;
	link_close(&r->sub);
	link_close(&r->pub);
	explicit_bzero(&r->addr, sizeof(r->addr));
	free(r->url);
	free(r->channel);
	free(r);
}

int
redis_publish(struct redis *r, const void *buf, size_t len, uint64_t tag)
{
	struct pending *p;

	if (r->pub.state != LINK_UP || r->pub.ac == NULL) {
		r->st.publish_refused++;
		return -1;
	}
	if (r->st.pending >= r->max_pending ||
	    len > r->max_bytes - r->st.pending_bytes) {
		r->st.publish_overflow++;
		return -1;
	}
	p = xmalloc(sizeof(*p));
	p->r = r;
	p->tag = tag;
	p->len = len;
	if (redisAsyncCommand(r->pub.ac, on_pub_reply, p, "PUBLISH %b %b",
	                      r->channel, r->channel_len, buf,
	                      len) != REDIS_OK) {
		free(p); /* closing: hiredis refuses new commands */
		r->st.publish_refused++;
		return -1;
	}
	r->st.pending++;
	r->st.pending_bytes += len;
	return 0;
}

int
redis_up(const struct redis *r)
{
	return r->up;
}

const struct redis_stats *
redis_stats(const struct redis *r)
{
	return &r->st;
}

void
redis_set_limits(struct redis *r, unsigned pending, size_t bytes)
{
	r->max_pending = pending;
	r->max_bytes = bytes;
}

/* Checks rep (of what, sent on c) is status want, and frees it: 0, or
 * -1 with the reason in err. */
static int
check_reply(redisContext *c, redisReply *rep, const char *what,
            const char *want, char *err, size_t errlen)
{
	int rc = 0;

	if (rep == NULL) {
		snprintf(err, errlen, "%s: %s", what,
		         c->errstr[0] ? c->errstr : "no reply");
		return -1;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s: %s%s", what, rep->str,
		         strncmp(rep->str, "NOAUTH", 6) == 0
		             ? " (Redis wants a password: "
		               "redis://:PASSWORD@HOST or "
		               "--redis-password-file)"
		             : "");
		rc = -1;
	} else if (rep->type != REDIS_REPLY_STATUS ||
	           strcmp(rep->str, want) != 0) {
		snprintf(err, errlen, "%s: unexpected reply", what);
		rc = -1;
	}
	freeReplyObject(rep);
	return rc;
}

/* AUTHs, PINGs and SELECTs on c as a says: 0, or -1 with err. */
static int
check_session(redisContext *c, const struct redis_addr *a, char *err,
              size_t errlen)
{
	redisReply *rep;

	if (a->password[0] != '\0') {
		if (a->user[0] != '\0')
			rep =
			    redisCommand(c, "AUTH %s %s", a->user, a->password);
		else
			rep = redisCommand(c, "AUTH %s", a->password);
		if (check_reply(c, rep, "Redis refused the password (AUTH)",
		                "OK", err, errlen) < 0)
			return -1;
	}
	if (check_reply(c, redisCommand(c, "PING"), "PING", "PONG", err,
	                errlen) < 0)
		return -1;
	if (a->db != 0 && check_reply(c, redisCommand(c, "SELECT %d", a->db),
	                              "SELECT", "OK", err, errlen) < 0)
		return -1;
	return 0;
}

int
redis_check(const char *url, char *err, size_t errlen)
{
	struct timeval tv = {REDIS_CHECK_TIMEOUT_MS / 1000,
	                     (REDIS_CHECK_TIMEOUT_MS % 1000) * 1000};
	struct redis_addr a;
	redisContext *c;
	int rc;

	if (addr_load(url, &a, err, errlen) < 0)
		return -1;
	if (a.path[0])
		c = redisConnectUnixWithTimeout(a.path, tv);
	else
		c = redisConnectWithTimeout(a.host, a.port, tv);
	if (c == NULL) {
		rc = fail(err, errlen, "%s", "out of memory");
	} else if (c->err) {
		rc = fail(err, errlen, "%s", c->errstr);
	} else {
		redisSetTimeout(c, tv);
		rc = check_session(c, &a, err, errlen);
	}
	if (c != NULL)
		redisFree(c);
	explicit_bzero(&a, sizeof(a));
	return rc;
}
