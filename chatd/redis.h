/* chatd/redis.h — Redis pub/sub between nodes, on the event loop */
#ifndef CHATD_REDIS_H
#define CHATD_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

/*
 * Two connections to one Redis (hiredis's async API on the libevent
 * loop): one SUBSCRIBEd to the cluster's channel, one that PUBLISHes to
 * it. Both connect without blocking the loop, and each reconnects on its
 * own after a failure or a loss, with a backoff of REDIS_BACKOFF_MIN_MS
 * doubling to REDIS_BACKOFF_MAX_MS (jittered), logging once per outage.
 * TCP keepalive finds a silently dead peer. Everything runs on the loop
 * thread. hiredis writes with write(2): the process ignores SIGPIPE.
 *
 * "Up" is both connections ready (the subscription confirmed): on_up is
 * called on every transition to up, on_down on every transition from it.
 * Messages published while this node was not subscribed are lost to it,
 * so on_up is when the caller catches up from the database.
 */

#define REDIS_BACKOFF_MIN_MS 50
#define REDIS_BACKOFF_MAX_MS 2000
#define REDIS_CONNECT_TIMEOUT_MS 2000 /* connect (and subscribe) */
#define REDIS_PENDING_MAX 4096        /* publishes awaiting their reply */
#define REDIS_PENDING_BYTES (64u << 20)
#define REDIS_CHECK_TIMEOUT_MS 2000

struct redis_callbacks {
	/* A message on the channel (this node's own publishes too). buf is
	 * valid during the call. */
	void (*on_message)(void *arg, const uint8_t *buf, size_t len);
	void (*on_up)(void *arg);
	void (*on_down)(void *arg);
	/* Optional: a publish redis_publish accepted did not succeed (an
	 * error reply, or the connection was lost before the reply: it may
	 * or may not have reached the others). tag is redis_publish's. */
	void (*on_publish_failed)(void *arg, uint64_t tag);
	void *arg;
};

/* Counters for /metrics (pending* go down too). */
struct redis_stats {
	uint64_t connects;         /* connections made (either one) */
	uint64_t disconnects;      /* connections lost (either one) */
	uint64_t published;        /* publishes Redis acknowledged */
	uint64_t publish_failures; /* accepted publishes that failed */
	uint64_t publish_refused;  /* refused: publisher down */
	uint64_t publish_overflow; /* refused: over the pending bound */
	uint64_t received;         /* messages received */
	unsigned pending;          /* publishes awaiting their reply */
	size_t pending_bytes;
};

/* Where Redis is: a TCP host and port, or a Unix socket path. */
struct redis_addr {
	char host[256]; /* "" for a Unix socket */
	int port;
	char path[108]; /* "" for TCP */
	int db;         /* parsed and checked; pub/sub ignores it */
};

/* Parses "redis://host[:port][/db]" (port 6379 by default; an IPv6 host
 * in brackets) or "unix:/absolute/path": 0, or -1 with a message in err
 * (passwords, query strings and other schemes are refused). */
int redis_url_parse(const char *url, struct redis_addr *a, char *err,
                    size_t errlen);

struct redis;

/* Starts connecting to url, to publish and receive on channel (a copy is
 * kept, as of cb). NULL with a message in err if url or channel is bad;
 * a Redis that is not reachable is retried, never an error here. */
struct redis *redis_new(struct event_base *base, const char *url,
                        const char *channel, const struct redis_callbacks *cb,
                        char *err, size_t errlen);
/* Closes both connections (publishes in flight are dropped without
 * on_publish_failed) and frees r. Not from inside one of its callbacks. */
void redis_free(struct redis *r);
/* Publishes len bytes: 0 when handed to the publisher (on_publish_failed
 * with tag if it then fails), -1 at once if the publisher is not connected
 * or REDIS_PENDING_MAX publishes / REDIS_PENDING_BYTES bytes await their
 * replies (counted; the caller remembers what Redis missed). */
int redis_publish(struct redis *r, const void *buf, size_t len, uint64_t tag);
/* Whether both connections are up. */
int redis_up(const struct redis *r);
/* The counters. */
const struct redis_stats *redis_stats(const struct redis *r);
/* Replaces the pending bounds (tests). */
void redis_set_limits(struct redis *r, unsigned pending, size_t bytes);
/* Connects to url and PINGs it (and SELECTs its db), blocking for at most
 * about REDIS_CHECK_TIMEOUT_MS each: for `chatd check-config`. 0, or -1
 * with the reason in err. */
int redis_check(const char *url, char *err, size_t errlen);

#endif
