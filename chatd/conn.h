/* chatd/conn.h — one client connection: HTTP, then maybe WebSocket */
#ifndef CHATD_CONN_H
#define CHATD_CONN_H

/*
 * conn sits below http, the server and the application: it includes none
 * of their headers. It calls up only through the two tables it is given,
 * struct conn_app (what the application does with a connection) and
 * struct conn_env (what the owner of the connections, the server, lends
 * them: loop, TLS, timeouts, counters, accounting), filled at start-up.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "chatd/http_parser.h"
#include "chatd/ws.h"

struct server;
struct conn;
struct conn_env;
struct conn_msg;
struct jsonw;
struct metrics;
struct bufferevent;
struct event;
struct ws_deflate;
struct event_base;
struct ssl_ctx_st;
struct evbuffer_file_segment;

/*
 * Output marks, in bytes queued in chatd for one connection (what the
 * kernel's socket buffer holds, which a reading peer drains, is not
 * counted). Every byte goes through one path (conn_queue in conn.c):
 * above CONN_OUTPUT_LOW the connection's input is not read (HTTP requests
 * and WebSocket messages alike) until the output drains to it; a write
 * that finds the output already above CONN_OUTPUT_HIGH drops the
 * connection instead. One write may overshoot HIGH by its own size (an
 * HTTP response, a history page, hello and its resync), but nothing more
 * is queued after it, and a paused peer's requests produce nothing.
 */
#define CONN_OUTPUT_LOW (256u * 1024)        /* pause input above this */
#define CONN_OUTPUT_HIGH (8u * 1024 * 1024)  /* drop the peer above this */
#define CONN_FILE_WINDOW (256u * 1024) /* file bytes queued at once */
#define CONN_HEADER_TIMEOUT 10 /* s to send a whole request head */
#define CONN_IDLE_TIMEOUT 60   /* s an idle keep-alive connection lives */
#define CONN_CLOSE_WAIT 5      /* s to wait for the peer's close frame */
#define CONN_LINGER_WAIT 10    /* s of lingering close (CONN_LINGER) */

/* A refcounted, fully encoded WebSocket frame shared by many recipients. */
struct frame {
	unsigned refs;
	size_t len;
	uint8_t *bytes; /* the len bytes: data, or inside a jsonw's buffer */
	struct frame *z; /* compressed twin for permessage-deflate peers,
	                    built on first need (one reference held here);
	                    the frame itself when compressing did not pay */
	uint8_t data[];
};

/* The spare bytes in front of a jsonw (jsonw_init) that conn_ws_send_jsonw
 * and frame_from_jsonw need: the frame struct and the longest header. */
#define CONN_JSONW_HEAD (sizeof(struct frame) + WS_MAX_HEADER)

/* What the application does with a connection (chat server, echo). */
struct conn_app {
	/* A complete HTTP request: answer with http_respond* or upgrade. */
	void (*request)(struct conn *c, const struct http_request *req);
	/* A request head with a body is complete (may be NULL: every body
	 * is buffered, up to HTTP_MAX_BODY). Returns the body's limit (0:
	 * HTTP_MAX_BODY) and sets *stream to have the body handed to body()
	 * in pieces as it arrives instead of in req->body. It may answer at
	 * once and call conn_body_discard: the body is then read and
	 * dropped, and request() is not called. */
	uint64_t (*head)(struct conn *c, const struct http_request *req,
	    int *stream);
	/* Streaming: the next piece of the body. Return -1 to stop reading
	 * it (after answering, or closing c): the rest is dropped. */
	int (*body)(struct conn *c, const uint8_t *data, size_t len);
	/* The connection is now a WebSocket (101 written). */
	void (*ws_open)(struct conn *c);
	/* A complete WebSocket message. Return -1 if c was closed. */
	int (*ws_message)(struct conn *c, int binary, uint8_t *data,
	    size_t len);
	/* The connection is going away (any mode): drop references to c. */
	void (*gone)(struct conn *c);
	/* The server is stopping: finish pending work (may be NULL). Called
	 * by the server, not by conn. */
	void (*stop)(struct server *srv);
	/* Seconds a fresh WebSocket may stay unauthenticated, 0: no limit. */
	int ws_auth_timeout;
};

enum conn_mode { CONN_MODE_HTTP = 0, CONN_MODE_WS, CONN_MODE_CLOSING };

struct conn {
	struct conn_env *env;
	struct server *srv;        /* env->owner: opaque here, for the app */
	const struct conn_app *app; /* env->app */
	struct bufferevent *bev;
	enum conn_mode mode;
	int flags;
#define CONN_TLS 0x01          /* wrapped in TLS */
#define CONN_IN_CALLBACK 0x02  /* inside a libevent callback: defer free */
#define CONN_DEAD 0x04         /* conn_close called; free when safe */
#define CONN_FLUSH_CLOSE 0x08  /* close once the output is written */
#define CONN_PING_SENT 0x10    /* keepalive ping unanswered */
#define CONN_AUTHED 0x20       /* application: WebSocket authenticated */
#define CONN_READ_PAUSED 0x40  /* input paused for output backpressure */
#define CONN_IN_HEAD 0x80      /* a request head has started arriving */
#define CONN_OVERFLOW 0x100    /* output backlog too big: being dropped */
#define CONN_CORKED 0x200      /* queue sends: one write for a burst */
#define CONN_HANDSHAKE 0x400   /* TLS handshake not finished */
#define CONN_DISCARD 0x800     /* answered at the head: the body is
                                  read and dropped, request() skipped */
#define CONN_FILE_CLOSE 0x1000 /* close once the file being sent is out */
#define CONN_LINGER 0x2000     /* flush-close: then read and drop input
                                  for CONN_LINGER_WAIT s before closing,
                                  so the peer reads the answer first */
#define CONN_APP_PAUSED 0x4000 /* conn_input_hold: input not read */
	struct conn_msg *pending;  /* WebSocket messages read while paused */
	struct conn_msg **pending_tail;
	struct http_parser *http;  /* HTTP mode only */
	struct ws ws;              /* WebSocket mode only */
	struct event *timer;       /* header/idle/auth/ping/close deadlines */
	struct event *resume;      /* output drained: read again (lazy) */
	char addr[48];             /* peer address (maybe a proxy's) */
	/* The client of the current request, for logs and per-address
	 * limits: the peer, or behind a trusted proxy the address it
	 * forwards. The application sets it per request (and it stays as
	 * it was at the upgrade for a WebSocket); conn only starts it. */
	char client[48];
	void *app_data;            /* the application's per-connection state */
	uint64_t id;
	unsigned holds;            /* conn_hold count: free only at zero */
	unsigned refs;             /* conn_ref count: free only at zero */
	unsigned mark;             /* scratch for de-duplicating fan-out */
	void *body_data;           /* application: state of a streamed body */
	void *app_queue;           /* application: its work queued for c */
	struct evbuffer_file_segment *file; /* a file being sent */
	uint64_t file_off;         /* its next byte to queue (from the
	                              segment's start) */
	uint64_t file_end;         /* its length */
	TAILQ_ENTRY(conn) link;
};
TAILQ_HEAD(conn_list, conn);

/* What every connection gets from its owner (the server fills it before
 * the first conn_accept), and the owner's view of them all. */
struct conn_env {
	struct event_base *base;
	struct ssl_ctx_st *ssl;        /* NULL: plain TCP */
	const struct conn_app *app;
	struct server *owner;          /* opaque: copied to each c->srv */
	struct metrics *m;             /* the counters conn and http bump */
	int header_timeout;            /* s to send a whole request head */
	int idle_timeout;              /* s an idle keep-alive conn lives */
	int ping_interval;             /* s of WebSocket silence: a ping */
	size_t ws_max_message;         /* 0: WS_MAX_MESSAGE */
	struct ws_deflate *deflate;    /* the one compressor for every
	                                  connection: made by conn on first
	                                  use, freed by the owner */
	/* Answers a request that could not be parsed or whose head timed
	 * out (400, 408, 413, 431, 501, 505); conn closes after the write.
	 * The server sets http_respond_error_status: http is above conn. */
	void (*bad_request)(struct conn *c, int status);
	/* A connection was freed; nconns already counts it out. */
	void (*gone)(struct conn_env *env);
	int stopping;                  /* set by the owner: no more input */
	/* Kept by conn, read by the owner: */
	struct conn_list conns;        /* every open connection */
	unsigned nconns;
	uint64_t next_conn_id;
};

/* Prepares env's connection list; the owner fills in the rest. */
void conn_env_init(struct conn_env *env);
/* Takes over an accepted socket (TLS-wrapped if env->ssl is set). 0 or
 * -1 (the socket is closed). */
int conn_accept(struct conn_env *env, int fd, const char *addr);
/* The one way out: logs reason and frees c (deferred inside callbacks). */
void conn_close(struct conn *c, const char *reason);
/* Queues bytes for the peer (CONN_OUTPUT_LOW/HIGH apply: see above). */
void conn_write(struct conn *c, const void *data, size_t len);
/* The application will answer the current HTTP request later (after a
 * worker job): input waits, and c is not freed, until conn_release. */
void conn_hold(struct conn *c);
/* Ends a hold: frees c if it was closed meanwhile (returns -1), else
 * goes on with any buffered input (returns 0). */
int conn_release(struct conn *c);
/* In the head callback, after conn_hold: the application decides about
 * the body later and calls this (what head would have returned) to end
 * the hold; it may answer and conn_body_discard before, as in head. */
void conn_head_done(struct conn *c, uint64_t max, int stream);
/* Keeps c's memory (not its connection) until conn_unref: work queued
 * for c may still look at it after it closed (CONN_DEAD). */
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
/* The application has queued enough work for c: its input waits, unread,
 * until conn_input_release (the socket's buffer fills, TCP pushes back). */
void conn_input_hold(struct conn *c);
void conn_input_release(struct conn *c);
/* Puts a WebSocket message the application took back in front of those
 * waiting (conn delivers them again, in order, when reading resumes). */
void conn_unread(struct conn *c, int binary, const uint8_t *data,
    size_t len);
/* Writes the rest, then closes. */
void conn_flush_close(struct conn *c, const char *reason);
/* Bytes waiting to be sent to the peer. */
size_t conn_output_len(struct conn *c);
/* In the head callback: the request was answered; its body is read and
 * dropped (no request() call), or, with close set, the connection closes
 * once the answer is out. */
void conn_body_discard(struct conn *c, int close);
/* Sends len bytes of the open file fd from offset (after the head the
 * caller wrote), CONN_FILE_WINDOW bytes at a time as the output drains
 * (sendfile on plain sockets): a slow reader costs no memory. Takes fd
 * (closed when done or on error). The next request is read only once the
 * file is out; without keep_alive the connection then closes. 0 or -1. */
int conn_send_file(struct conn *c, int fd, uint64_t offset, uint64_t len,
    int keep_alive);

/* Switches c to WebSocket mode: writes the 101 response for accept. */
void conn_upgrade(struct conn *c, const char *accept);
/* conn_upgrade with permessage-deflate negotiated (ws_handshake_deflate):
 * ext is the Sec-WebSocket-Extensions answer, wbits the client's window
 * bits; ext "" and wbits 0 for none. Messages of at least
 * WS_DEFLATE_MIN bytes are then sent compressed when that pays. */
void conn_upgrade_ext(struct conn *c, const char *accept, const char *ext,
    int wbits);
/* While on, sends are queued and go out in one write when the loop
 * flushes (a burst such as hello plus resync); off sends directly again. */
void conn_cork(struct conn *c, int on);
/* Sends a text message as one frame. */
void conn_ws_send(struct conn *c, const char *data, size_t len);
/* Sends the JSON in w (jsonw_init(w, CONN_JSONW_HEAD)) as one text
 * message, its frame header written into w's spare bytes: nothing is
 * copied unless the socket is busy. w is left as it is, for reuse. */
void conn_ws_send_jsonw(struct conn *c, struct jsonw *w);
/* Sends a message with the given opcode (WS_OP_TEXT, WS_OP_BINARY). */
void conn_ws_send_op(struct conn *c, int opcode, const void *data,
    size_t len);
/* Sends a shared frame (fan-out: no copy per recipient). Like every
 * send, a peer whose backlog is over CONN_OUTPUT_HIGH is dropped. */
void conn_ws_send_frame(struct conn *c, struct frame *f);
/* Starts the WebSocket closing handshake with code and reason. */
void conn_ws_close(struct conn *c, int code, const char *reason);

/* A frame of the len encoded bytes (a WebSocket frame, header included,
 * as another node sent it). refs starts at 1. */
struct frame *frame_copy(const uint8_t *bytes, size_t len);
/* The answer about to be written ends the connection with a lingering
 * close (conn_body_discard(c, 1) after it): set before writing it, as it
 * may go out at once, while the rest of the request is still arriving. */
void conn_linger_after(struct conn *c);
/* Builds a text frame holding data. refs starts at 1. */
struct frame *frame_new(const char *data, size_t len);
/* Turns the JSON in w (jsonw_init(w, CONN_JSONW_HEAD)) into a text frame
 * in place, without a copy: the frame takes w's buffer and w is empty
 * afterwards. refs starts at 1. */
struct frame *frame_from_jsonw(struct jsonw *w);
void frame_unref(struct frame *f);

#endif
