/* chatd/chat_park.c — requests parked behind a write lock another
 * process holds (issue 13 item 6): the queue, its retry timer, the
 * --db-wait-ms expiry, and what /healthz and /metrics read of it. The
 * loop never waits in SQLite; chat.c hands every request to
 * chat_request, which runs it now or parks it. */
#include <stdlib.h>

#include <event2/event.h>

#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/config.h"
#include "chatd/gate.h"
#include "chatd/hub.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

/* Requests parked behind a write lock another process holds, at most
 * (each is one WebSocket message, at most --ws-max-message bytes). */
#define CHAT_PARK_MAX 4096
/* A parked change retries BEGIN after this delay, doubled each time it
 * finds the lock still held, up to the maximum. */
#define CHAT_RETRY_MIN_MS 1
#define CHAT_RETRY_MAX_MS 32
/* /healthz reports a stall once a change has waited this long (or half
 * of --db-wait-ms, if less). */
#define CHAT_STALL_MS 1000

/*
 * The write lock. Another process (the admin CLI, a sqlite3 shell) may
 * hold the database's write lock for a while; the loop must not wait for
 * it (the loop's connection has no busy timeout), or every client would
 * freeze. A change whose BEGIN finds the lock held is parked, with the
 * request as it came, and so is everything that arrives after it: every
 * change, and any request of a session that has one parked (so that a
 * connection's requests are still carried out in order). Reads of other
 * sessions, HTTP and static files go on. A timer retries BEGIN (1 ms,
 * doubling to 32 ms); once it succeeds the parked requests run in arrival
 * order, as if they had just arrived, into the group commit (so nothing
 * is acknowledged before its commit, and seqs are allocated in the order
 * the changes run). A change that has waited --db-wait-ms gets internal
 * and is not stored.
 */

/* Next retry of the parked requests: the backoff delay, or sooner when
 * the oldest parked change reaches --db-wait-ms. */
static void
chat_park_arm(struct server *srv)
{
	struct chat *ch = srv->chat;
	struct parked *p = TAILQ_FIRST(&ch->parked);
	int64_t ms = ch->park_backoff_ms, left;
	struct timeval tv;

	if (p != NULL) {
		left = p->since + srv->cfg->db_wait_ms - chat_now();
		if (left < ms)
			ms = left < 0 ? 0 : left;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ch->park_ev, &tv);
}

/* Takes p off the queue. */
static void
chat_unpark(struct chat *ch, struct parked *p)
{
	TAILQ_REMOVE(&ch->parked, p, link);
	ch->nparked--;
	if (p->sess != NULL)
		p->sess->parked--;
}

/* Frees a parked request taken off the queue. */
static void
chat_parked_free(struct parked *p)
{
	json_decref(p->req);
	free(p);
}

/* A parked change that waited too long: internal, nothing stored. */
static void
chat_park_expire(struct server *srv, struct parked *p)
{
	srv->m.db_lock_timeouts++;
	chat_send_error(p->sess, p->ref, "internal",
	                "the database is locked by another process");
}

/* Fails every parked request of s at once, in order (the queue is full:
 * a new request of s then fails after them, not before). */
static void
chat_park_fail_session(struct server *srv, struct session *s)
{
	struct chat *ch = srv->chat;
	struct parked *p, *next;

	for (p = TAILQ_FIRST(&ch->parked); p != NULL && s->parked > 0;
	     p = next) {
		next = TAILQ_NEXT(p, link);
		if (p->sess != s)
			continue;
		chat_unpark(ch, p);
		chat_park_expire(srv, p);
		chat_parked_free(p);
	}
}

/* Parks a request (takes req) behind the write lock. */
static void
chat_park(struct server *srv, struct session *s, chat_handler fn, int write,
          json_t *req, json_t *ref)
{
	struct chat *ch = srv->chat;
	struct parked *p;

	if (ch->nparked >= CHAT_PARK_MAX) {
		chat_park_fail_session(srv, s);
		srv->m.db_lock_timeouts++;
		chat_send_error(s, ref, "internal",
		                "the database is locked by another process");
		json_decref(req);
		return;
	}
	if (TAILQ_EMPTY(&ch->parked)) {
		log_warn("%s: the database is locked by another process: "
		         "changes wait (at most %d ms)",
		         __func__, srv->cfg->db_wait_ms);
		ch->park_backoff_ms = CHAT_RETRY_MIN_MS;
	}
	p = xcalloc(1, sizeof *p);
	p->sess = s;
	p->req = req;
	p->ref = ref;
	p->fn = fn;
	p->write = write;
	p->since = chat_now();
	s->parked++;
	ch->nparked++;
	TAILQ_INSERT_TAIL(&ch->parked, p, link);
	if (!evtimer_pending(ch->park_ev, NULL))
		chat_park_arm(srv);
}

/* Runs the parked requests in order while the write transaction can be
 * had; expires changes that waited too long. Re-arms the retry if the
 * lock is still held. */
static void
chat_park_run(struct server *srv)
{
	struct chat *ch = srv->chat;
	struct parked *p = TAILQ_FIRST(&ch->parked);
	int64_t waited;
	int rc;

	if (p == NULL)
		return;
	waited = chat_now() - p->since; /* the oldest */
	while ((p = TAILQ_FIRST(&ch->parked)) != NULL) {
		if (p->write) {
			if (ch->nactions >= CHAT_BATCH_MAX)
				chat_flush(srv);
			if (!ch->txn &&
			    chat_now() - p->since >= srv->cfg->db_wait_ms) {
				chat_unpark(ch, p);
				chat_park_expire(srv, p);
				chat_parked_free(p);
				continue;
			}
			/* -1 (an error, not busy): the handler answers
			 * internal. */
			if ((rc = chat_txn(ch, srv)) == DB_BUSY) {
				if (ch->park_backoff_ms < CHAT_RETRY_MAX_MS)
					ch->park_backoff_ms *= 2;
				chat_park_arm(srv);
				return;
			}
		}
		chat_unpark(ch, p);
		/* The handler may close p->sess's connection (freeing the
		 * session): p is off the queue already. */
		p->fn(p->sess, p->req, p->ref);
		chat_parked_free(p);
	}
	log_info("%s: no change waits for the write lock any more (the "
	         "oldest waited %lld ms)",
	         __func__, (long long)waited);
}

/* The retry timer of the parked requests. */
static void
chat_park_cb(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	chat_park_run(arg);
}

int64_t
chat_lock_wait_ms(struct server *srv)
{
	struct parked *p;

	if (srv->chat == NULL || (p = TAILQ_FIRST(&srv->chat->parked)) == NULL)
		return 0;
	return chat_now() - p->since;
}

unsigned
chat_lock_waiting(struct server *srv)
{
	return srv->chat != NULL ? srv->chat->nparked : 0;
}

int
chat_stalled(struct server *srv)
{
	int64_t t = srv->cfg->db_wait_ms / 2;

	if (t > CHAT_STALL_MS)
		t = CHAT_STALL_MS;
	return chat_lock_waiting(srv) > 0 && chat_lock_wait_ms(srv) >= t;
}

void
chat_request(struct server *srv, struct session *s, chat_handler fn, int write,
             json_t *req, json_t *ref)
{
	struct chat *ch = srv->chat;

	if (s->parked > 0 || (write && (!TAILQ_EMPTY(&ch->parked) ||
	                                chat_txn(ch, srv) == DB_BUSY))) {
		chat_park(srv, s, fn, write, req, ref);
		return;
	}
	fn(s, req, ref);
	json_decref(req);
}

void
chat_park_init(struct server *srv)
{
	struct chat *ch = srv->chat;

	TAILQ_INIT(&ch->parked);
	ch->park_ev = gate_event_new(srv->base, -1, 0, chat_park_cb, srv);
}

void
chat_park_drop_session(struct server *srv, struct session *s)
{
	struct parked *p, *next;

	if (s->parked == 0)
		return;
	for (p = TAILQ_FIRST(&srv->chat->parked); p != NULL; p = next) {
		next = TAILQ_NEXT(p, link);
		if (p->sess == s) {
			chat_unpark(srv->chat, p);
			chat_parked_free(p);
		}
	}
}

void
chat_park_free(struct server *srv)
{
	struct chat *ch = srv->chat;
	struct parked *p;

	/* Normally empty: chat_gone unparked each session's requests. */
	while ((p = TAILQ_FIRST(&ch->parked)) != NULL) {
		p->sess = NULL; /* gone: not touched */
		chat_unpark(ch, p);
		chat_parked_free(p);
	}
	gate_event_free(ch->park_ev);
}
