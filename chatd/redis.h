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
 * With a password, each connection sends AUTH first and goes on (the
 * subscriber SUBSCRIBEs, the publisher is ready) only once Redis said OK.
 * A refused password is retried like a lost connection and logged once
 * per outage (for both connections together), never with the password.
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

#define REDIS_USER_MAX 256      /* bytes of a user name, with its NUL */
#define REDIS_PASSWORD_MAX 1024 /* bytes of a password, with its NUL */

/* Where Redis is: a TCP host and port, or a Unix socket path; and who
 * to be there (AUTH), if anyone. */
struct redis_addr {
	char host[256]; /* "" for a Unix socket */
	int port;
	char path[108];            /* "" for TCP */
	int db;                    /* parsed and checked; pub/sub ignores it */
	char user[REDIS_USER_MAX]; /* "": AUTH PASSWORD only */
	char password[REDIS_PASSWORD_MAX]; /* "": no AUTH */
};

/* Parses "redis://[[USER]:PASSWORD@]host[:port][/db]" (port 6379 by
 * default; an IPv6 host in brackets; USER and PASSWORD percent-decoded;
 * "USER@" alone names the user of --redis-password-file's password) or
 * "unix:/absolute/path": 0, or -1 with a message in err that never holds
 * the password (query strings, fragments and other schemes are refused). */
int redis_url_parse(const char *url, struct redis_addr *a, char *err,
                    size_t errlen);
/* url with the password of its userinfo (all of it, without a colon)
 * replaced by ***, into buf (truncated to len): what may be printed of a
 * --redis URL. Returns buf. */
const char *redis_url_redact(const char *url, char *buf, size_t len);
/* Reads a password file (--redis-password-file): its content but one
 * trailing newline, into buf. 0, or -1 with the reason in err (empty,
 * more than one line, a NUL, longer than REDIS_PASSWORD_MAX - 1). */
int redis_password_read(const char *path, char *buf, size_t len, char *err,
                        size_t errlen);
/* Sets the password every connection whose URL has none uses (as read by
 * redis_password_read; a copy is kept), or clears it (NULL). For the
 * whole process: `chatd` sets it once at start-up. */
void redis_set_password(const char *password);

struct redis;

/* Starts connecting to url, to publish and receive on channel (a copy is
 * kept, as of cb); every connection AUTHs first when there is a password
 * (the URL's, else redis_set_password's). NULL with a message in err if
 * url or channel is bad (or a user has no password); a Redis that is not
 * reachable or refuses the password is retried, never an error here. */
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
/* Connects to url, AUTHs if it has a password (its own or
 * redis_set_password's), PINGs it and SELECTs its db, blocking for at most
 * about REDIS_CHECK_TIMEOUT_MS each: for `chatd check-config`. 0, or -1
 * with the reason in err (never the password). */
int redis_check(const char *url, char *err, size_t errlen);

#endif
