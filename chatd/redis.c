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
#include "chatd/xmalloc.h"

#define DEFAULT_PORT 6379

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
};

struct redis {
	struct event_base *base;
	struct redis_addr addr;
	char *url;
	char *channel;
	size_t channel_len;
	struct redis_callbacks cb;
	struct redis_stats st;
	struct link sub, pub;
	unsigned max_pending;
	size_t max_bytes;
	int up;
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

int
redis_url_parse(const char *url, struct redis_addr *a, char *err, size_t errlen)
{
	static const char usage[] = "%s: expected redis://host:port[/db] "
	                            "or unix:/path/to/socket";
	const char *h, *hend, *p, *slash;

	memset(a, 0, sizeof(*a));
	if (url == NULL)
		return fail(err, errlen, usage, "(none)");
	if (strncmp(url, "unix:", 5) == 0) {
		p = url + 5;
		if (p[0] != '/' || strlen(p) >= sizeof(a->path) ||
		    strpbrk(p, "?#") != NULL)
			return fail(err, errlen, usage, url);
		strcpy(a->path, p);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0 || strpbrk(url, "@?#") != NULL)
		return fail(err, errlen, usage, url);
	h = url + 8;
	slash = strchr(h, '/');
	if (slash == NULL)
		slash = h + strlen(h);
	if (*h == '[') { /* [IPv6] */
		hend = memchr(h, ']', slash - h);
		if (hend == NULL)
			return fail(err, errlen, usage, url);
		h++;
		p = hend + 1;
	} else {
		hend = memchr(h, ':', slash - h);
		if (hend == NULL)
			hend = slash;
		p = hend;
	}
	if (hend == h || (size_t)(hend - h) >= sizeof(a->host))
		return fail(err, errlen, usage, url);
	memcpy(a->host, h, hend - h);
	a->port = DEFAULT_PORT;
	if (p < slash) {
		if (*p != ':' || parse_num(p + 1, slash, 65535, &a->port) < 0 ||
		    a->port == 0)
			return fail(err, errlen, usage, url);
	}
	if (*slash == '/' && slash[1] != '\0' &&
	    parse_num(slash + 1, slash + strlen(slash), 1 << 20, &a->db) < 0)
		return fail(err, errlen, usage, url);
	if (strchr(a->host, '/') != NULL)
		return fail(err, errlen, usage, url);
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
	if (!l->sub)
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
	why = status == REDIS_OK ? "closed" : ac->errstr;
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

/* Starts a connection of l (and the subscription, queued until then). */
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
	if (redisLibeventAttach(ac, r->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK ||
	    (l->sub &&
	     redisAsyncCommand(ac, on_sub_reply, l, "SUBSCRIBE %b", r->channel,
	                       r->channel_len) != REDIS_OK)) {
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

	if (redis_url_parse(url, &addr, err, errlen) < 0)
		return NULL;
	if (channel == NULL || channel[0] == '\0') {
		fail(err, errlen, "%s: empty channel name", url);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->addr = addr;
	r->url = xstrdup(url);
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

/* Sends cmd on c and checks the reply is status want: 0, or -1. */
static int
check_cmd(redisContext *c, const char *cmd, const char *want, char *err,
          size_t errlen)
{
	redisReply *rep = redisCommand(c, cmd);
	int rc = 0;

	if (rep == NULL)
		return fail(err, errlen, "%s",
		            c->errstr[0] ? c->errstr : "no reply");
	if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, want) != 0)
		rc = fail(err, errlen, "%s",
		          rep->type == REDIS_REPLY_ERROR ? rep->str
		                                         : "unexpected reply");
	freeReplyObject(rep);
	return rc;
}

int
redis_check(const char *url, char *err, size_t errlen)
{
	struct timeval tv = {REDIS_CHECK_TIMEOUT_MS / 1000,
	                     (REDIS_CHECK_TIMEOUT_MS % 1000) * 1000};
	struct redis_addr a;
	redisContext *c;
	char cmd[32];
	int rc;

	if (redis_url_parse(url, &a, err, errlen) < 0)
		return -1;
	if (a.path[0])
		c = redisConnectUnixWithTimeout(a.path, tv);
	else
		c = redisConnectWithTimeout(a.host, a.port, tv);
	if (c == NULL)
		return fail(err, errlen, "%s", "out of memory");
	if (c->err) {
		fail(err, errlen, "%s", c->errstr);
		redisFree(c);
		return -1;
	}
	redisSetTimeout(c, tv);
	rc = check_cmd(c, "PING", "PONG", err, errlen);
	if (rc == 0 && a.db != 0) {
		snprintf(cmd, sizeof(cmd), "SELECT %d", a.db);
		rc = check_cmd(c, cmd, "OK", err, errlen);
	}
	redisFree(c);
	return rc;
}
