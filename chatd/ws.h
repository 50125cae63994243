/* chatd/ws.h — RFC 6455 connection engine: bytes in, events out (sans-IO) */
#ifndef CHATD_WS_H
#define CHATD_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chatd/ws_frame.h"

struct ws_inflate;

#define WS_MAX_MESSAGE 65536 /* default cap on a reassembled message */
/* Frames one data message may take, continuations included: empty
 * fragments would otherwise hold a message open for ever at no cost in
 * bytes. 64 KiB in 16-byte fragments still fits. Past it: 1009. */
#define WS_MAX_FRAGMENTS 4096
/* How much a compressed message may exceed the cap before inflating it
 * (stored blocks add 5 bytes per 64 KiB; more is no real deflater). */
#define WS_DEFLATE_SLACK 1024

/* Negative results of ws_feed. */
enum ws_error {
	WS_E_PROTOCOL = -1, /* close 1002 */
	WS_E_UTF8 = -2,     /* close 1007 */
	WS_E_TOO_BIG = -3,  /* close 1009 */
	WS_E_CLOSED = -4,   /* data after the peer's close frame: drop */
	WS_E_ABORT = -5,    /* a callback returned -1 */
	WS_E_INFLATE = -6,  /* close 1007: invalid deflate data */
};

/* What the engine tells its glue. Every callback is required. */
struct ws_callbacks {
	/* A complete message (inflated if it came compressed): text already
	 * validated as UTF-8. data is the
	 * engine's buffer, writable, valid until the callback returns.
	 * Return 0, or -1 to stop feeding (ws_feed returns WS_E_ABORT). */
	int (*message)(void *arg, int binary, uint8_t *data, size_t len);
	/* Bytes to send to the peer: pongs and close frames (unmasked). */
	void (*write)(void *arg, const uint8_t *data, size_t len);
	/* The closing handshake is complete on our side: the peer's close
	 * frame arrived and ours has been written (echoed or sent before).
	 * code is 1005 when the peer's close had no payload. The glue
	 * flushes and closes TCP. */
	void (*closed)(void *arg, int code);
	/* A pong arrived (keepalive bookkeeping); may be a no-op. */
	void (*pong)(void *arg);
};

/* Engine state, embedded in struct conn. Fields are private to ws.c. */
struct ws {
	const struct ws_callbacks *cb;
	void *arg;
	size_t max_message;
	struct ws_frame_parser fp;   /* current frame header and progress */
	uint8_t *msg;                /* reassembled data message */
	size_t msg_len;
	size_t msg_cap;
	size_t msg_zlen;             /* compressed bytes of the open message */
	struct ws_inflate *zi;       /* inflater, only while compressed
	                                messages arrive (the peer has no
	                                context takeover): NULL when idle */
	uint8_t msg_opcode;          /* 0 when no data message is open */
	uint8_t msg_deflated;        /* the open message is compressed */
	uint8_t wbits;               /* the peer's deflate window bits, 0
	                                without permessage-deflate */
	uint32_t utf8_state;         /* incremental validation of msg */
	uint8_t *ctl;                /* current control frame payload (125
	                                bytes, only while one arrives: an
	                                idle connection holds no buffer) */
	size_t ctl_len;
	int err;                     /* sticky ws_feed error, 0 if none */
	uint16_t msg_frames;         /* frames of the open data message */
	uint16_t flags;
#define WS_CLOSE_SENT 0x1
#define WS_CLOSE_RECEIVED 0x2
};

/* Starts an engine for a server-side connection. max_message 0 means
 * WS_MAX_MESSAGE. */
void ws_init(struct ws *ws, size_t max_message, const struct ws_callbacks *cb,
    void *arg);
/* Frees the engine's buffers. */
void ws_free(struct ws *ws);
/* permessage-deflate was negotiated: data messages with RSV1 set are
 * inflated, the peer deflating with window bits wbits (8-15) and no
 * context takeover (a fresh stream per message). Call before ws_feed. */
void ws_set_deflate(struct ws *ws, int wbits);
/*
 * Feeds bytes from the peer; unmasks in place (buf is modified). Calls
 * the callbacks as frames complete. Returns len, or a negative enum
 * ws_error at the first violation (later bytes are not looked at); the
 * glue then calls ws_close(ws, ws_error_close_code(err), NULL) unless
 * the error is WS_E_CLOSED or WS_E_ABORT.
 */
ssize_t ws_feed(struct ws *ws, uint8_t *buf, size_t len);
/* The close code for a ws_feed error (1002, 1007, 1009), 0 for none. */
int ws_error_close_code(int err);
/* Starts a server-initiated close: writes a close frame with code and
 * reason (may be NULL) once; later calls do nothing. */
void ws_close(struct ws *ws, int code, const char *reason);
/* Frees the reassembly buffer and the inflater unless a message is
 * open (idle memory). */
void ws_shrink(struct ws *ws);

#endif
