/* chatd/conn.c — the one file that touches client sockets */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "chatd/conn.h"
#include "chatd/jsonw.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/ws_deflate.h"
#include "chatd/ws_handshake.h"
#include "chatd/xmalloc.h"

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(int fd, short what, void *arg);
static void conn_free(struct conn *c);
static void conn_resume_cb(int fd, short what, void *arg);
static int conn_free_if_done(struct conn *c);

/* A WebSocket message read while input was paused: delivered, in order,
 * once the output drains (conn_resume). Only what one read brought can
 * wait here: reading stops at the pause. */
struct conn_msg {
	struct conn_msg *next;
	int binary;
	size_t len;
	uint8_t data[];
};
static void conn_linger_read_cb(struct bufferevent *bev, void *arg);
static void conn_linger(struct conn *c);

static int conn_ws_message(void *arg, int binary, uint8_t *data, size_t len);
static void conn_ws_write(void *arg, const uint8_t *data, size_t len);
static void conn_ws_closed(void *arg, int code);
static void conn_ws_pong(void *arg);

static const struct ws_callbacks conn_ws_callbacks = {
	.message = conn_ws_message,
	.write = conn_ws_write,
	.closed = conn_ws_closed,
	.pong = conn_ws_pong,
};

/* (Re)arms the connection's single timer for secs seconds. */
static void
conn_timer_set(struct conn *c, int secs)
{
	struct timeval tv = {secs, 0};

	if (!(c->flags & CONN_OVERFLOW))
		evtimer_add(c->timer, &tv);
}

void
conn_env_init(struct conn_env *env)
{
	TAILQ_INIT(&env->conns);
}

int
conn_accept(struct conn_env *env, int fd, const char *addr)
{
	struct conn *c = xcalloc(1, sizeof *c);
	SSL *ssl;

	c->env = env;
	c->srv = env->owner;
	c->app = env->app;
	c->id = ++env->next_conn_id;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	snprintf(c->client, sizeof c->client, "%s", addr);
	if (env->ssl != NULL) {
		if ((ssl = SSL_new(env->ssl)) == NULL) {
			close(fd);
			free(c);
			return -1;
		}
		c->bev = bufferevent_openssl_socket_new(env->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		c->flags |= CONN_TLS | CONN_HANDSHAKE;
	} else {
		c->bev = bufferevent_socket_new(env->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		log_warn("%s: cannot make a bufferevent for %s", __func__,
		    addr);
		close(fd);
		free(c);
		return -1;
	}
	c->http = xmalloc(sizeof *c->http);
	http_parser_init(c->http, HTTP_MAX_HEAD, HTTP_MAX_BODY);
	http_parser_defer_body(c->http, 1);
	c->timer = evtimer_new(env->base, conn_timer_cb, c);
	c->pending_tail = &c->pending;
	TAILQ_INSERT_TAIL(&env->conns, c, link);
	env->nconns++;
	env->m->conns_accepted++;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* A TLS handshake is part of the request head: it gets as long. */
	conn_timer_set(c, c->flags & CONN_HANDSHAKE ? env->header_timeout :
						      env->idle_timeout);
	return 0;
}

void
conn_close(struct conn *c, const char *reason)
{
	if (c->flags & CONN_DEAD)
		return;
	c->flags |= CONN_DEAD;
	log_debug("%s: #%llu %s: %s", __func__, (unsigned long long)c->id,
	    c->addr, reason);
	c->refs++; /* gone may take and drop references of its own */
	if (c->app->gone != NULL)
		c->app->gone(c);
	c->refs--;
	conn_free_if_done(c);
}

void
conn_ref(struct conn *c)
{
	c->refs++;
}

void
conn_unref(struct conn *c)
{
	c->refs--;
	conn_free_if_done(c);
}

void
conn_unread(struct conn *c, int binary, const uint8_t *data, size_t len)
{
	struct conn_msg *m = xmalloc(sizeof *m + len);

	m->binary = binary;
	m->len = len;
	memcpy(m->data, data, len);
	if ((m->next = c->pending) == NULL)
		c->pending_tail = &m->next;
	c->pending = m;
}

void
conn_input_hold(struct conn *c)
{
	if (c->flags & (CONN_APP_PAUSED | CONN_DEAD))
		return;
	c->flags |= CONN_APP_PAUSED;
	bufferevent_disable(c->bev, EV_READ);
}

void
conn_input_release(struct conn *c)
{
	if (!(c->flags & CONN_APP_PAUSED))
		return;
	c->flags &= ~CONN_APP_PAUSED;
	if (c->flags & CONN_DEAD)
		return;
	if (c->resume == NULL)
		c->resume = event_new(c->env->base, -1, 0, conn_resume_cb, c);
	event_active(c->resume, EV_TIMEOUT, 0);
}

void
conn_hold(struct conn *c)
{
	c->holds++;
	if (!(c->flags & CONN_OVERFLOW)) /* that timer drops it */
		evtimer_del(c->timer);
}

int
conn_release(struct conn *c)
{
	if (--c->holds > 0)
		return 0;
	if (c->flags & CONN_DEAD) {
		conn_free_if_done(c);
		return -1;
	}
	/* Released inside c's own read callback (the answer came before the
	 * request callback returned): the callback goes on by itself. */
	if (c->flags & CONN_IN_CALLBACK)
		return 0;
	if (c->mode == CONN_MODE_HTTP) {
		if (c->http != NULL)
			http_parser_reset(c->http);
		if (!(c->flags & CONN_FLUSH_CLOSE))
			conn_timer_set(c, c->env->idle_timeout);
	}
	if (!c->env->stopping)
		conn_read_cb(c->bev, c); /* pipelined requests waited */
	return 0;
}

/* Forgets the WebSocket messages waiting for the output to drain. */
static void
conn_pending_free(struct conn *c)
{
	struct conn_msg *m;

	while ((m = c->pending) != NULL) {
		c->pending = m->next;
		free(m);
	}
	c->pending_tail = &c->pending;
}

/* Releases every member; only conn_close leads here. */
static void
conn_free(struct conn *c)
{
	struct conn_env *env = c->env;

	TAILQ_REMOVE(&env->conns, c, link);
	env->nconns--;
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->resume != NULL)
		event_free(c->resume);
	if (c->file != NULL)
		evbuffer_file_segment_free(c->file);
	if (c->bev != NULL) {
		if (c->flags & CONN_TLS)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		bufferevent_free(c->bev);
	}
	if (c->http != NULL) {
		http_parser_free(c->http);
		free(c->http);
	}
	if (c->mode != CONN_MODE_HTTP)
		ws_free(&c->ws);
	conn_pending_free(c);
	free(c);
	if (env->gone != NULL)
		env->gone(env);
}

/* Frees c if it was closed and nothing holds it any more: not inside one
 * of its callbacks, no conn_hold, no conn_ref. 1 if freed. */
static int
conn_free_if_done(struct conn *c)
{
	if (!(c->flags & CONN_DEAD) || (c->flags & CONN_IN_CALLBACK) ||
	    c->holds > 0 || c->refs > 0)
		return 0;
	conn_free(c);
	return 1;
}

/* Stops reading c's input: its output is over CONN_OUTPUT_LOW. The write
 * callback runs once the output drains to the mark (conn_resume). A
 * closing WebSocket is not paused: it must still read the peer's close,
 * and nothing it reads is answered but that. */
static void
conn_pause(struct conn *c)
{
	if (c->flags & (CONN_READ_PAUSED | CONN_DEAD | CONN_FLUSH_CLOSE) ||
	    c->mode == CONN_MODE_CLOSING)
		return;
	c->flags |= CONN_READ_PAUSED;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, CONN_OUTPUT_LOW, 0);
	if (c->resume == NULL)
		c->resume = event_new(c->env->base, -1, 0, conn_resume_cb, c);
}

/* Drops c: its output is over CONN_OUTPUT_HIGH and it still gets more.
 * Not closed here: the caller may be walking lists (fan-out) that
 * conn_close would change. The timer, at zero delay, closes it. */
static void
conn_overflow(struct conn *c)
{
	struct timeval now = {0, 0};

	c->flags |= CONN_OVERFLOW;
	c->env->m->output_overflows++;
	log_info("connection #%llu from %s: output backlog over %u bytes: "
	    "dropped", (unsigned long long)c->id, c->addr, CONN_OUTPUT_HIGH);
	bufferevent_disable(c->bev, EV_READ);
	evtimer_add(c->timer, &now);
}

static size_t conn_send_now(struct conn *c, const void *head, size_t hlen,
    const void *body, size_t blen);
static void conn_frame_done(const void *data, size_t len, void *arg);

/*
 * The one path by which bytes are queued for a peer (head, then body;
 * with f, head is f's bytes, queued by reference). A connection whose
 * output is already over CONN_OUTPUT_HIGH is dropped instead; what fits
 * goes straight to the socket when nothing waits before it; over
 * CONN_OUTPUT_LOW afterwards, input pauses. 0, or -1 if nothing was
 * queued (closed, or dropped).
 */
static int
conn_queue(struct conn *c, const void *head, size_t hlen, const void *body,
    size_t blen, struct frame *f)
{
	struct evbuffer *out;
	size_t sent;

	if (c->flags & (CONN_DEAD | CONN_OVERFLOW))
		return -1;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) > CONN_OUTPUT_HIGH) {
		conn_overflow(c);
		return -1;
	}
	sent = conn_send_now(c, head, hlen, body, blen);
	if (f != NULL && sent < hlen) {
		f->refs++;
		if (evbuffer_add_reference(out, (const uint8_t *)head + sent,
			hlen - sent, conn_frame_done, f) != 0)
			frame_unref(f);
	} else if (sent < hlen) {
		bufferevent_write(c->bev, (const uint8_t *)head + sent,
		    hlen - sent);
	}
	if (sent < hlen + blen) {
		size_t skip = sent > hlen ? sent - hlen : 0;

		bufferevent_write(c->bev, (const uint8_t *)body + skip,
		    blen - skip);
	}
	if (evbuffer_get_length(out) > CONN_OUTPUT_LOW)
		conn_pause(c);
	return 0;
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	conn_queue(c, data, len, NULL, 0, NULL);
}

size_t
conn_output_len(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
conn_flush_close(struct conn *c, const char *reason)
{
	if (c->flags & (CONN_DEAD | CONN_FLUSH_CLOSE))
		return;
	log_debug("%s: #%llu: %s", __func__, (unsigned long long)c->id,
	    reason);
	c->flags |= CONN_FLUSH_CLOSE;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (conn_output_len(c) > 0)
		conn_timer_set(c, CONN_CLOSE_WAIT);
	else if (c->flags & CONN_LINGER)
		/* The answer went out at once (conn_send_now) while the
		 * request was still arriving (a refused body): closing with
		 * its rest unread would reset the connection and could
		 * destroy the answer before the peer reads it. */
		conn_linger(c);
	else
		conn_close(c, reason);
}

void
conn_linger_after(struct conn *c)
{
	c->flags |= CONN_LINGER;
}

void
conn_body_discard(struct conn *c, int close)
{
	c->flags |= CONN_DISCARD;
	if (close) {
		c->flags |= CONN_LINGER;
		conn_flush_close(c, "answered before the body");
	}
}

static int conn_http_head_go(struct conn *c, uint64_t max, int stream);

/* A body the client holds back until told (Expect: 100-continue) and the
 * application takes: 100 Continue, once. */
static void
conn_http_continue(struct conn *c)
{
	if (c->http->state == HTTP_PARSER_BODY && !(c->flags & CONN_DISCARD) &&
	    c->http->req.expect_continue && !(c->flags & CONN_PING_SENT)) {
		/* PING_SENT doubles as "100 sent" in HTTP. */
		c->flags |= CONN_PING_SENT;
		conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
}

/* A head with a body is complete: asks the application how to read the
 * body. 0, or -1 after answering (or closing, or the application holding
 * c to decide later: conn_head_done). */
static int
conn_http_head(struct conn *c)
{
	const struct http_request *rq = &c->http->req;
	uint64_t max = 0;
	int stream = 0;

	if (c->app->head != NULL)
		max = c->app->head(c, rq, &stream);
	if (c->holds > 0)
		return -1; /* the application decides later: conn_head_done */
	return conn_http_head_go(c, max, stream);
}

/* What follows the head callback's answer: the body's limit and mode.
 * 0, or -1 after answering (or closing). */
static int
conn_http_head_go(struct conn *c, uint64_t max, int stream)
{
	int r;

	if (c->flags & (CONN_DEAD | CONN_FLUSH_CLOSE))
		return -1;
	if (c->flags & CONN_DISCARD)
		stream = 1;
	if ((r = http_parser_body(c->http, max, stream)) < 0) {
		c->flags |= CONN_LINGER;
		if (!(c->flags & CONN_DISCARD))
			c->env->bad_request(c, http_error_status(r));
		conn_flush_close(c, "body over the limit");
		return -1;
	}
	return 0;
}

void
conn_head_done(struct conn *c, uint64_t max, int stream)
{
	if (--c->holds > 0 || conn_free_if_done(c))
		return;
	c->flags |= CONN_IN_CALLBACK;
	if (conn_http_head_go(c, max, stream) == 0)
		conn_http_continue(c);
	c->flags &= ~CONN_IN_CALLBACK;
	if (conn_free_if_done(c))
		return;
	if (!(c->flags & (CONN_DEAD | CONN_FLUSH_CLOSE)) && !c->env->stopping) {
		/* The head timer ran while the application decided. */
		conn_timer_set(c, c->env->header_timeout);
		conn_read_cb(c->bev, c); /* the body waited in the input */
	}
}

/* Hands the body bytes of the last feed to the application (streaming),
 * before they are drained from the input buffer they point into. */
static void
conn_http_chunk(struct conn *c)
{
	const uint8_t *chunk;
	size_t len;

	if ((chunk = http_parser_chunk(c->http, &len)) == NULL)
		return;
	/* A streamed body may take long, but not stall: silence of
	 * header_timeout seconds ends it with 408. */
	conn_timer_set(c, c->env->header_timeout);
	if (!(c->flags & CONN_DISCARD) && c->app->body(c, chunk, len) < 0)
		c->flags |= CONN_DISCARD;
}

/* Feeds buffered input to the HTTP parser and dispatches requests, one
 * at a time, so pipelined requests are answered in order. */
static void
conn_read_http(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	ssize_t n;

	while (c->mode == CONN_MODE_HTTP && c->holds == 0 && c->file == NULL &&
	    !(c->flags & (CONN_DEAD | CONN_FLUSH_CLOSE | CONN_READ_PAUSED |
		CONN_APP_PAUSED | CONN_OVERFLOW)) &&
	    evbuffer_peek(in, -1, NULL, &v, 1) > 0) {
		if (!(c->flags & CONN_IN_HEAD)) {
			c->flags |= CONN_IN_HEAD;
			conn_timer_set(c, c->env->header_timeout);
		}
		n = http_parser_feed(c->http, v.iov_base, v.iov_len);
		if (n < 0) {
			c->flags |= CONN_LINGER;
			if (!(c->flags & CONN_DISCARD))
				c->env->bad_request(c, http_error_status(n));
			conn_flush_close(c, "bad request");
			return;
		}
		conn_http_chunk(c);
		evbuffer_drain(in, n);
		if (c->flags & (CONN_DEAD | CONN_FLUSH_CLOSE))
			return;
		if (c->http->state == HTTP_PARSER_HEAD_DONE &&
		    conn_http_head(c) != 0)
			return;
		conn_http_continue(c);
		if (c->http->state != HTTP_PARSER_DONE)
			continue;
		c->flags &= ~(CONN_IN_HEAD | CONN_PING_SENT);
		c->env->m->http_requests++;
		if (c->flags & CONN_DISCARD) {
			/* Answered at its head: the body is gone too. */
			c->flags &= ~CONN_DISCARD;
			if (!c->http->req.keep_alive) {
				conn_flush_close(c, "no keep-alive");
				return;
			}
		} else {
			c->app->request(c, http_parser_request(c->http));
		}
		if (c->holds > 0)
			return; /* answered later; the request stays parsed */
		if (c->mode == CONN_MODE_HTTP && c->http != NULL)
			http_parser_reset(c->http);
		if (c->mode == CONN_MODE_HTTP &&
		    !(c->flags & (CONN_DEAD | CONN_FLUSH_CLOSE)))
			conn_timer_set(c, c->env->idle_timeout);
	}
}

/* Feeds buffered input to the WebSocket engine. */
static void
conn_read_ws(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	ssize_t n;
	int code;

	while ((c->mode == CONN_MODE_WS || c->mode == CONN_MODE_CLOSING) &&
	    !(c->flags & (CONN_DEAD | CONN_FLUSH_CLOSE | CONN_READ_PAUSED |
		CONN_APP_PAUSED | CONN_OVERFLOW)) &&
	    evbuffer_peek(in, -1, NULL, &v, 1) > 0) {
		n = ws_feed(&c->ws, v.iov_base, v.iov_len);
		if (n < 0) {
			evbuffer_drain(in, evbuffer_get_length(in));
			code = ws_error_close_code((int)n);
			if (code != 0 && c->mode == CONN_MODE_WS) {
				/* Failing the connection: close frame, then
				 * TCP, without waiting for the peer. */
				metrics_close_code(c->env->m, code);
				ws_close(&c->ws, code, NULL);
				c->mode = CONN_MODE_CLOSING;
			}
			conn_flush_close(c, "websocket protocol error");
			return;
		}
		evbuffer_drain(in, n);
	}
	if (c->flags & CONN_FLUSH_CLOSE)
		evbuffer_drain(in, evbuffer_get_length(in));
	else if (c->mode == CONN_MODE_WS)
		ws_shrink(&c->ws);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->flags |= CONN_IN_CALLBACK;
	if (c->mode == CONN_MODE_HTTP)
		conn_read_http(c, in);
	if (c->mode == CONN_MODE_WS) {
		c->flags &= ~CONN_PING_SENT;
		if (c->flags & CONN_AUTHED || c->app->ws_auth_timeout == 0)
			conn_timer_set(c, c->env->ping_interval);
	}
	if (c->mode == CONN_MODE_WS || c->mode == CONN_MODE_CLOSING)
		conn_read_ws(c, in);
	c->flags &= ~CONN_IN_CALLBACK;
	conn_free_if_done(c);
}

/* The output drained to CONN_OUTPUT_LOW: delivers the messages that
 * waited, one at a time while the output stays under the mark, then reads
 * again. An event of its own, never the write callback itself: that can
 * run inside a write (TLS), in the middle of the application's code. */
static void
conn_resume_cb(int fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_msg *m;

	(void)fd;
	(void)what;
	if (c->flags & (CONN_APP_PAUSED | CONN_DEAD))
		return; /* conn_input_release calls again */
	if (c->flags & CONN_READ_PAUSED) {
		if (conn_output_len(c) > CONN_OUTPUT_LOW)
			return; /* more came: the mark calls again */
		c->flags &= ~CONN_READ_PAUSED;
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	}
	c->flags |= CONN_IN_CALLBACK;
	while ((m = c->pending) != NULL && !(c->flags & (CONN_READ_PAUSED |
		CONN_APP_PAUSED | CONN_DEAD | CONN_OVERFLOW))) {
		if ((c->pending = m->next) == NULL)
			c->pending_tail = &c->pending;
		if (c->mode == CONN_MODE_WS) {
			c->env->m->ws_messages_in++;
			c->app->ws_message(c, m->binary, m->data, m->len);
		}
		free(m);
	}
	c->flags &= ~CONN_IN_CALLBACK;
	if (conn_free_if_done(c) || (c->flags & CONN_DEAD))
		return;
	if (c->flags & (CONN_READ_PAUSED | CONN_APP_PAUSED | CONN_DEAD |
		CONN_OVERFLOW | CONN_FLUSH_CLOSE) || c->env->stopping)
		return;
	bufferevent_enable(c->bev, EV_READ);
	conn_read_cb(c->bev, c); /* input may already be buffered */
}

/* The answer is out: half-closes, then reads and drops what the peer
 * still sends (the rest of a refused body) for CONN_LINGER_WAIT seconds,
 * so that closing with unread input (a TCP reset) does not destroy the
 * answer before the peer reads it. TLS closes at once. */
static void
conn_linger(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if ((c->flags & CONN_TLS) || bufferevent_getfd(c->bev) < 0) {
		conn_close(c, "flushed");
		return;
	}
	c->flags |= CONN_CORKED; /* nothing more is sent */
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	bufferevent_setcb(c->bev, conn_linger_read_cb, NULL, conn_event_cb, c);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_enable(c->bev, EV_READ);
	conn_timer_set(c, CONN_LINGER_WAIT);
}

/* Lingering: input is dropped; EOF (conn_event_cb) or the timer close. */
static void
conn_linger_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev),
	    evbuffer_get_length(bufferevent_get_input(bev)));
}

/* Queues more of the file being sent while the output is short of
 * CONN_FILE_WINDOW; when all is queued, drops it and goes on with the
 * next request (or closes). 0, or -1 if c was closed. */
static int
conn_file_refill(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t have = evbuffer_get_length(out);
	uint64_t n;

	while (c->file_off < c->file_end && have < CONN_FILE_WINDOW) {
		n = c->file_end - c->file_off;
		if (n > CONN_FILE_WINDOW - have)
			n = CONN_FILE_WINDOW - have;
		if (evbuffer_add_file_segment(out, c->file, (ev_off_t)c->file_off,
			(ev_off_t)n) != 0) {
			conn_close(c, "cannot queue a file segment");
			return -1;
		}
		c->file_off += n;
		have += n;
	}
	if (c->file_off < c->file_end)
		return -1; /* more when the output drains */
	/* All queued: the segment lives on in the buffer's references. */
	evbuffer_file_segment_free(c->file);
	c->file = NULL;
	if (c->flags & CONN_FILE_CLOSE) {
		conn_flush_close(c, "no keep-alive");
		return -1;
	}
	return 0;
}

int
conn_send_file(struct conn *c, int fd, uint64_t offset, uint64_t len,
    int keep_alive)
{
	if ((c->flags & CONN_DEAD) || c->file != NULL) {
		close(fd);
		return -1;
	}
	c->file = evbuffer_file_segment_new(fd, (ev_off_t)offset,
	    (ev_off_t)len, EVBUF_FS_CLOSE_ON_FREE);
	if (c->file == NULL) {
		close(fd);
		return -1;
	}
	/* Offsets in the segment are relative to its start. */
	c->file_off = 0;
	c->file_end = len;
	if (!keep_alive)
		c->flags |= CONN_FILE_CLOSE;
	if (conn_file_refill(c) == 0 && !(c->flags & CONN_IN_CALLBACK))
		conn_read_cb(c->bev, c);
	return 0;
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->file != NULL) {
		if (conn_file_refill(c) != 0)
			return;
		/* The file is all queued: pipelined requests may wait. */
		conn_read_cb(c->bev, c);
		return;
	}
	if (c->flags & CONN_FLUSH_CLOSE) {
		/* A paused connection's mark may call back early. */
		if (conn_output_len(c) > 0) {
			bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
			return;
		}
		if (c->flags & CONN_LINGER)
			conn_linger(c);
		else
			conn_close(c, "flushed");
		return;
	}
	if (c->flags & CONN_READ_PAUSED)
		event_active(c->resume, EV_TIMEOUT, 0);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is done: from here on, the HTTP deadlines
		 * (a head already started keeps the header timeout). */
		c->flags &= ~CONN_HANDSHAKE;
		if (c->mode == CONN_MODE_HTTP && !(c->flags & CONN_IN_HEAD))
			conn_timer_set(c, c->env->idle_timeout);
	} else if (what & BEV_EVENT_EOF) {
		conn_close(c, "peer closed");
	} else if (what & BEV_EVENT_ERROR) {
		unsigned long tls = (c->flags & CONN_TLS) ?
		    bufferevent_get_openssl_error(c->bev) : 0;
		char why[256];

		if (tls != 0)
			ERR_error_string_n(tls, why, sizeof why);
		else
			snprintf(why, sizeof why, "%s",
			    errno ? strerror(errno) : "socket error");
		/* Errors are worth a line; ordinary closes are not. */
		log_info("connection #%llu from %s: %s",
		    (unsigned long long)c->id, c->addr, why);
		conn_close(c, why);
	}
}

/* One timer, many deadlines: what it means depends on the mode. */
static void
conn_timer_cb(int fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->flags |= CONN_IN_CALLBACK;
	if (c->flags & CONN_OVERFLOW) {
		conn_close(c, "output backlog over CONN_OUTPUT_HIGH");
	} else if (c->flags & CONN_HANDSHAKE) {
		conn_close(c, "TLS handshake timeout");
	} else if (c->flags & CONN_FLUSH_CLOSE || c->mode == CONN_MODE_CLOSING) {
		conn_close(c, "close timeout");
	} else if (c->mode == CONN_MODE_HTTP) {
		if (c->flags & CONN_IN_HEAD) {
			/* Answered already at its head: just close. */
			if (!(c->flags & CONN_DISCARD))
				c->env->bad_request(c, 408);
			conn_flush_close(c, "header timeout");
		} else {
			conn_close(c, "idle timeout");
		}
	} else if (!(c->flags & CONN_AUTHED) && c->app->ws_auth_timeout) {
		static const char msg[] =
		    "{\"type\":\"error\",\"code\":\"unauthorized\","
		    "\"message\":\"authentication timed out\"}";

		conn_ws_send(c, msg, sizeof msg - 1);
		conn_ws_close(c, 1008, "authentication timeout");
	} else if (c->flags & CONN_PING_SENT) {
		conn_close(c, "ping timeout");
	} else {
		uint8_t hdr[WS_MAX_HEADER];
		size_t n = ws_frame_header(hdr, 1, WS_OP_PING, 0);

		c->flags |= CONN_PING_SENT;
		conn_write(c, hdr, n);
		conn_timer_set(c, c->env->ping_interval);
	}
	c->flags &= ~CONN_IN_CALLBACK;
	conn_free_if_done(c);
}

void
conn_upgrade(struct conn *c, const char *accept)
{
	conn_upgrade_ext(c, accept, "", 0);
}

void
conn_upgrade_ext(struct conn *c, const char *accept, const char *ext,
    int wbits)
{
	char head[256 + WS_EXT_LEN];
	size_t n = ws_handshake_response_ext(head, sizeof head, accept, ext);

	conn_write(c, head, n);
	c->mode = CONN_MODE_WS;
	/* The parser's buffers are not needed any more: idle memory. */
	http_parser_free(c->http);
	free(c->http);
	c->http = NULL;
	ws_init(&c->ws, c->env->ws_max_message, &conn_ws_callbacks, c);
	if (wbits > 0)
		ws_set_deflate(&c->ws, wbits);
	c->env->m->ws_upgrades++;
	conn_timer_set(c, c->app->ws_auth_timeout ? c->app->ws_auth_timeout :
						    c->env->ping_interval);
	if (c->app->ws_open != NULL)
		c->app->ws_open(c);
}

static int
conn_ws_message(void *arg, int binary, uint8_t *data, size_t len)
{
	struct conn *c = arg;

	if (c->mode != CONN_MODE_WS)
		return 0; /* we sent close: data from the peer is ignored */
	if (c->flags & (CONN_READ_PAUSED | CONN_APP_PAUSED) ||
	    c->pending != NULL) {
		/* The rest of what was read waits for the output to drain
		 * (or the application to catch up). */
		struct conn_msg *m = xmalloc(sizeof *m + len);

		m->next = NULL;
		m->binary = binary;
		m->len = len;
		memcpy(m->data, data, len);
		*c->pending_tail = m;
		c->pending_tail = &m->next;
		return 0;
	}
	c->env->m->ws_messages_in++;
	/* After an application close the engine keeps parsing, so the
	 * peer's close frame is still recognised. */
	if (c->app->ws_message(c, binary, data, len) < 0 ||
	    (c->flags & CONN_DEAD))
		return -1;
	return 0;
}

static void
conn_ws_write(void *arg, const uint8_t *data, size_t len)
{
	conn_write(arg, data, len);
}

/* The closing handshake finished: flush our close frame, then TCP. */
static void
conn_ws_closed(void *arg, int code)
{
	struct conn *c = arg;

	metrics_close_code(c->env->m, code);
	c->mode = CONN_MODE_CLOSING;
	conn_flush_close(c, "websocket closed");
}

static void
conn_ws_pong(void *arg)
{
	struct conn *c = arg;

	c->flags &= ~CONN_PING_SENT;
}

/*
 * Sends a frame (head, then body) straight to the socket when nothing is
 * queued before it, sparing the write event and its epoll_ctl calls (a
 * fan-out of one frame to a thousand peers is a thousand syscalls, not
 * three thousand). Returns how many bytes went out; the caller queues the
 * rest. TLS connections always go through the bufferevent.
 */
static size_t
conn_send_now(struct conn *c, const void *head, size_t hlen, const void *body,
    size_t blen)
{
	struct iovec iov[2] = {{(void *)head, hlen}, {(void *)body, blen}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	int fd;
	ssize_t n;

	if ((c->flags & (CONN_TLS | CONN_CORKED)) ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return 0;
	fd = bufferevent_getfd(c->bev);
	/* One buffer (every shared frame): send, which spares the kernel
	 * copying in and checking a msghdr and its iovec. */
	if (blen == 0)
		n = send(fd, head, hlen, MSG_DONTWAIT | MSG_NOSIGNAL);
	else
		n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n > 0 ? (size_t)n : 0;
}

void
conn_cork(struct conn *c, int on)
{
	if (on)
		c->flags |= CONN_CORKED;
	else
		c->flags &= ~CONN_CORKED;
}

/* 1 if c negotiated permessage-deflate. */
static int
conn_deflating(const struct conn *c)
{
	return c->ws.wbits != 0;
}

/* The server's compressor, made when a peer first needs it. */
static struct ws_deflate *
conn_deflater(struct conn_env *env)
{
	if (env->deflate == NULL)
		env->deflate = ws_deflate_new();
	return env->deflate;
}

/* Counts a frame of plain bytes sent to a deflating peer as sent bytes. */
static void
conn_deflate_count(struct conn *c, size_t plain, size_t sent)
{
	c->env->m->deflate_plain_bytes += plain;
	c->env->m->deflate_sent_bytes += sent;
	if (sent != plain)
		c->env->m->deflate_frames++;
}

/* Sends a header and a body through conn_queue (the rest copied). */
static void
conn_send_copy(struct conn *c, const uint8_t *hdr, size_t n, const void *data,
    size_t len)
{
	conn_queue(c, hdr, n, data, len, NULL);
}

/* For a deflating peer: sends data compressed, as one frame with RSV1,
 * if that pays. Returns 1 if sent, 0 if the caller sends it plain. */
static int
conn_ws_send_deflated(struct conn *c, int opcode, const void *data,
    size_t len)
{
	uint8_t hdr[WS_MAX_HEADER];
	const uint8_t *z = NULL;
	size_t zlen = 0, n, plain = ws_frame_header(hdr, 1, opcode, len) + len;

	if (!conn_deflating(c))
		return 0;
	if (len >= WS_DEFLATE_MIN) {
		c->env->m->deflate_runs++;
		z = ws_deflate_compress(conn_deflater(c->env), data, len,
		    &zlen);
	}
	if (z == NULL) {
		conn_deflate_count(c, plain, plain);
		return 0;
	}
	n = ws_frame_header(hdr, 1, opcode, zlen);
	hdr[0] |= WS_FRAME_RSV1;
	conn_deflate_count(c, plain, n + zlen);
	conn_send_copy(c, hdr, n, z, zlen);
	return 1;
}

/* The frame a deflating peer gets instead of f: f's compressed twin,
 * made on first need, or f itself when compressing does not pay. The
 * server deflates without context takeover, so one twin serves every
 * deflating recipient. */
static struct frame *
conn_frame_deflated(struct conn *c, struct frame *f)
{
	uint8_t hdr[WS_MAX_HEADER];
	const uint8_t *p = f->bytes, *z;
	size_t h, len, zlen, n;
	struct frame *t;

	if (f->z != NULL)
		return f->z;
	f->z = f;
	h = 2 + ((p[1] & 0x7f) == 126 ? 2 : (p[1] & 0x7f) == 127 ? 8 : 0);
	len = f->len - h;
	if (len < WS_DEFLATE_MIN)
		return f;
	c->env->m->deflate_runs++;
	z = ws_deflate_compress(conn_deflater(c->env), p + h, len, &zlen);
	if (z == NULL)
		return f;
	n = ws_frame_header(hdr, 1, p[0] & 0x0f, zlen);
	hdr[0] |= WS_FRAME_RSV1;
	t = xmalloc(sizeof *t + n + zlen);
	t->refs = 1;
	t->len = n + zlen;
	t->bytes = t->data;
	t->z = t;
	memcpy(t->data, hdr, n);
	memcpy(t->data + n, z, zlen);
	f->z = t;
	return t;
}

void
conn_ws_send_op(struct conn *c, int opcode, const void *data, size_t len)
{
	uint8_t hdr[WS_MAX_HEADER];
	size_t n;

	if (c->mode != CONN_MODE_WS || (c->flags & CONN_DEAD))
		return;
	if (conn_ws_send_deflated(c, opcode, data, len))
		return;
	n = ws_frame_header(hdr, 1, opcode, len);
	conn_send_copy(c, hdr, n, data, len);
}

void
conn_ws_send(struct conn *c, const char *data, size_t len)
{
	conn_ws_send_op(c, WS_OP_TEXT, data, len);
}

void
conn_ws_send_jsonw(struct conn *c, struct jsonw *w)
{
	uint8_t hdr[WS_MAX_HEADER], *p;
	size_t len = jsonw_len(w), n;

	if (c->mode != CONN_MODE_WS || (c->flags & CONN_DEAD))
		return;
	if (conn_ws_send_deflated(c, WS_OP_TEXT, jsonw_data(w), len))
		return;
	jsonw_reserve(w, 0); /* the spare bytes exist even for no JSON */
	n = ws_frame_header(hdr, 1, WS_OP_TEXT, len);
	p = (uint8_t *)jsonw_data(w) - n;
	memcpy(p, hdr, n);
	conn_queue(c, p, n + len, NULL, 0, NULL);
}

/* evbuffer cleanup: one recipient has sent its reference. */
static void
conn_frame_done(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	frame_unref(arg);
}

void
conn_ws_send_frame(struct conn *c, struct frame *f)
{
	if (c->mode != CONN_MODE_WS || (c->flags & CONN_DEAD))
		return;
	if (c->flags & CONN_OVERFLOW)
		return;
	if (conn_deflating(c)) {
		size_t plain = f->len;

		f = conn_frame_deflated(c, f);
		conn_deflate_count(c, plain, f->len);
	}
	conn_queue(c, f->bytes, f->len, NULL, 0, f);
}

void
conn_ws_close(struct conn *c, int code, const char *reason)
{
	if (c->mode != CONN_MODE_WS || (c->flags & CONN_DEAD))
		return;
	metrics_close_code(c->env->m, code);
	ws_close(&c->ws, code, reason);
	c->mode = CONN_MODE_CLOSING;
	conn_timer_set(c, CONN_CLOSE_WAIT);
	/* Nothing more is answered: only the peer's close is read. */
	conn_pending_free(c);
	if (c->flags & CONN_READ_PAUSED) {
		c->flags &= ~CONN_READ_PAUSED;
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		if (!(c->flags & (CONN_FLUSH_CLOSE | CONN_OVERFLOW)))
			bufferevent_enable(c->bev, EV_READ);
	}
}

struct frame *
frame_new(const char *data, size_t len)
{
	uint8_t hdr[WS_MAX_HEADER];
	size_t n = ws_frame_header(hdr, 1, WS_OP_TEXT, len);
	struct frame *f = xmalloc(sizeof *f + n + len);

	f->refs = 1;
	f->len = n + len;
	f->bytes = f->data;
	f->z = NULL;
	memcpy(f->data, hdr, n);
	memcpy(f->data + n, data, len);
	return f;
}

struct frame *
frame_copy(const uint8_t *bytes, size_t len)
{
	struct frame *f = xmalloc(sizeof *f + len);

	f->refs = 1;
	f->len = len;
	f->bytes = f->data;
	f->z = NULL;
	memcpy(f->data, bytes, len);
	return f;
}

struct frame *
frame_from_jsonw(struct jsonw *w)
{
	uint8_t hdr[WS_MAX_HEADER];
	size_t len = jsonw_len(w), head = w->head;
	size_t n = ws_frame_header(hdr, 1, WS_OP_TEXT, len);
	struct frame *f;

	jsonw_reserve(w, 0);
	/* The frame struct sits at the start of the allocation and the
	 * header right before the JSON, both in the spare bytes. */
	f = (struct frame *)(void *)jsonw_steal(w);
	f->refs = 1;
	f->len = n + len;
	f->z = NULL;
	f->bytes = (uint8_t *)f + head - n;
	memcpy(f->bytes, hdr, n);
	return f;
}

void
frame_unref(struct frame *f)
{
	if (f == NULL || --f->refs > 0)
		return;
	if (f->z != NULL && f->z != f)
		frame_unref(f->z);
	free(f);
}
