/* chatd/ws.c — RFC 6455 connection engine: bytes in, events out (sans-IO) */
#include <stdlib.h>
#include <string.h>

#include "chatd/log.h"
#include "chatd/utf8.h"
#include "chatd/ws.h"
#include "chatd/ws_deflate.h"
#include "chatd/xmalloc.h"

#define WS_MSG_MIN 256   /* first allocation of the reassembly buffer */
#define WS_MSG_KEEP 4096 /* a bigger buffer is freed after its message */

void
ws_init(struct ws *ws, size_t max_message, const struct ws_callbacks *cb,
        void *arg)
{
	memset(ws, 0, sizeof(*ws));
	ws->cb = cb;
	ws->arg = arg;
	ws->max_message = max_message ? max_message : WS_MAX_MESSAGE;
	ws_frame_parser_init(&ws->fp, 0);
}

void
ws_set_deflate(struct ws *ws, int wbits)
{
	ws->wbits = wbits < 8 ? 8 : wbits > 15 ? 15 : wbits;
	ws->fp.rsv1_ok = 1;
}

/* Frees the control frame buffer once its frame is handled. */
static void
ws_ctl_free(struct ws *ws)
{
	free(ws->ctl);
	ws->ctl = NULL;
	ws->ctl_len = 0;
}

/* Frees the reassembly buffer. */
static void
ws_msg_free(struct ws *ws)
{
	free(ws->msg);
	ws->msg = NULL;
	ws->msg_len = ws->msg_cap = 0;
}

/* Frees the inflater. */
static void
ws_zi_free(struct ws *ws)
{
	ws_inflate_free(ws->zi);
	ws->zi = NULL;
}

void
ws_free(struct ws *ws)
{
	ws_ctl_free(ws);
	ws_msg_free(ws);
	ws_zi_free(ws);
}

void
ws_shrink(struct ws *ws)
{
	if (ws->msg_opcode != 0)
		return;
	ws_msg_free(ws);
	ws_zi_free(ws);
}

int
ws_error_close_code(int err)
{
	switch (err) {
	case WS_E_PROTOCOL:
		return 1002;
	case WS_E_UTF8:
	case WS_E_INFLATE:
		return 1007;
	case WS_E_TOO_BIG:
		return 1009;
	default:
		return 0;
	}
}

/* Records a feed error; every later ws_feed returns it too. */
static ssize_t
ws_fail(struct ws *ws, int err)
{
	ws->err = err;
	return err;
}

/* Writes one unmasked control frame as a single write callback. */
static void
ws_send_control(struct ws *ws, int opcode, const uint8_t *p, size_t n)
{
	uint8_t frame[2 + WS_MAX_CONTROL];
	size_t h = ws_frame_header(frame, 1, opcode, n);

	if (n > 0)
		memcpy(frame + h, p, n);
	ws->cb->write(ws->arg, frame, h + n);
}

/* Longest prefix of s, at most max bytes, not cutting a UTF-8 sequence. */
static size_t
ws_utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void
ws_close(struct ws *ws, int code, const char *reason)
{
	uint8_t p[WS_MAX_CONTROL];
	size_t n = 0;

	if (ws->flags & WS_CLOSE_SENT)
		return;
	ws->flags |= WS_CLOSE_SENT;
	if (code >= 1000 && code <= 4999 && code != 1005 && code != 1006 &&
	    code != 1015) {
		p[0] = code >> 8;
		p[1] = code & 0xff;
		n = 2;
		if (reason != NULL) {
			size_t r = ws_utf8_prefix(reason, sizeof(p) - 2);

			memcpy(p + 2, reason, r);
			n += r;
		}
	}
	log_debug("%s: sending close %d", __func__, code);
	ws_send_control(ws, WS_OP_CLOSE, p, n);
}

/* 1 if a peer may send code in a close frame (RFC 6455 7.4, IANA). */
static int
ws_close_code_valid(int code)
{
	if (code >= 3000 && code <= 4999)
		return 1;
	if (code < 1000 || code > 1014)
		return 0;
	return code != 1004 && code != 1005 && code != 1006;
}

/* Handles the peer's close frame: validate, echo, report. */
static int
ws_on_close(struct ws *ws)
{
	int code = 1005;

	if (ws->ctl_len == 1)
		return WS_E_PROTOCOL;
	if (ws->ctl_len >= 2) {
		code = ws->ctl[0] << 8 | ws->ctl[1];
		if (!ws_close_code_valid(code))
			return WS_E_PROTOCOL;
		if (!utf8_valid(ws->ctl + 2, ws->ctl_len - 2))
			return WS_E_UTF8;
	}
	ws->flags |= WS_CLOSE_RECEIVED;
	/* Echo the peer's code (RFC 6455 5.5.1); 1000 for an empty close. */
	ws_close(ws, code == 1005 ? 1000 : code, NULL);
	ws->cb->closed(ws->arg, code);
	return 0;
}

/* Ends the current data message and hands it to the glue (unless we
 * already sent a close: then nothing more may be answered). */
static int
ws_deliver(struct ws *ws, uint8_t *data, size_t len)
{
	int binary = ws->msg_opcode == WS_OP_BINARY, r = 0;

	ws->msg_opcode = 0;
	ws->msg_len = 0;
	ws->utf8_state = UTF8_ACCEPT;
	if (ws->msg_deflated) {
		ws->msg_deflated = 0;
		ws_inflate_reset(ws->zi); /* kept for this feed's next one */
	}
	if (!(ws->flags & WS_CLOSE_SENT))
		r = ws->cb->message(ws->arg, binary,
		                    data ? data : (uint8_t *)"", len);
	if (ws->msg_cap > WS_MSG_KEEP)
		ws_msg_free(ws);
	return r < 0 ? WS_E_ABORT : 0;
}

/* Checks a new frame against the message in progress and the size cap. */
static int
ws_frame_begin(struct ws *ws)
{
	struct ws_frame_parser *fp = &ws->fp;

	if (WS_OP_IS_CONTROL(fp->opcode)) {
		if (ws->ctl == NULL)
			ws->ctl = xmalloc(WS_MAX_CONTROL);
		ws->ctl_len = 0;
		return 0;
	}
	if (fp->opcode == WS_OP_CONT && ws->msg_opcode == 0)
		return WS_E_PROTOCOL; /* continuation of nothing */
	if (fp->opcode != WS_OP_CONT && ws->msg_opcode != 0)
		return WS_E_PROTOCOL; /* new message inside a fragmented one */
	if (fp->opcode == WS_OP_CONT &&
	    ++ws->msg_frames > WS_MAX_FRAGMENTS)
		return WS_E_TOO_BIG;
	if (fp->opcode != WS_OP_CONT) {
		ws->msg_opcode = fp->opcode;
		ws->msg_frames = 1;
		ws->msg_len = ws->msg_zlen = 0;
		ws->utf8_state = UTF8_ACCEPT;
		ws->msg_deflated = fp->rsv1;
		if (fp->rsv1 && ws->zi == NULL)
			ws->zi = ws_inflate_new(ws->wbits);
	}
	if (!ws->msg_deflated)
		return fp->len > ws->max_message - ws->msg_len ? WS_E_TOO_BIG
		                                               : 0;
	/* The inflated size is checked as it grows; the compressed one
	 * only against what a real deflater could send. */
	if (fp->len > ws->max_message + WS_DEFLATE_SLACK - ws->msg_zlen)
		return WS_E_TOO_BIG;
	ws->msg_zlen += fp->len;
	return 0;
}

/* Makes room for n more bytes in the reassembly buffer. */
static void
ws_reserve(struct ws *ws, size_t n)
{
	size_t need = ws->msg_len + n, cap = ws->msg_cap;

	if (need <= cap)
		return;
	cap = cap < WS_MSG_MIN ? WS_MSG_MIN : cap;
	while (cap < need)
		cap *= 2;
	if (cap > ws->max_message && need <= ws->max_message)
		cap = ws->max_message;
	ws->msg = xrealloc(ws->msg, cap);
	ws->msg_cap = cap;
}

/*
 * Inflates n compressed bytes into the reassembly buffer. The cap holds
 * for the inflated size: once the buffer is full, one more byte of
 * output is too big, so a small frame cannot inflate into a large
 * allocation. Text is validated as it inflates.
 */
static int
ws_inflate(struct ws *ws, const uint8_t *p, size_t n)
{
	size_t room, got, had;
	uint8_t probe, *out;
	int r;

	for (;;) {
		had = n;
		if (ws->msg_len == ws->max_message) {
			out = &probe;
			room = 1;
		} else {
			ws_reserve(ws, 1);
			out = ws->msg + ws->msg_len;
			room = ws->msg_cap - ws->msg_len;
		}
		got = room;
		r = ws_inflate_step(ws->zi, &p, &n, out, &got);
		/* What came out before an error is judged first, as it
		 * would be had the bad bytes arrived in a later feed. */
		if (got > 0 && out == &probe)
			return WS_E_TOO_BIG;
		if (ws->msg_opcode == WS_OP_TEXT &&
		    utf8_validate(&ws->utf8_state, out, got) < 0)
			return WS_E_UTF8;
		if (r < 0)
			return WS_E_INFLATE;
		ws->msg_len += got;
		if (r == 1 || (n == 0 && got < room) || (got == 0 && n == had))
			return 0;
	}
}

/* Ends a compressed message: inflates the 00 00 ff ff that the sender
 * took off (RFC 7692 7.2.2); the data must then end on a block
 * boundary, else it was cut short. No data at all is an empty message
 * (zlib-based peers take it so). */
static int
ws_inflate_end(struct ws *ws)
{
	static const uint8_t trailer[4] = {0x00, 0x00, 0xff, 0xff};
	int r;

	if (ws->msg_zlen == 0)
		return 0;
	r = ws_inflate(ws, trailer, sizeof(trailer));

	if (r == 0 && !ws_inflate_at_boundary(ws->zi))
		return WS_E_INFLATE;
	return r;
}

/* Takes n payload bytes of the current frame: unmask, check, store. */
static int
ws_payload(struct ws *ws, uint8_t *p, size_t n)
{
	struct ws_frame_parser *fp = &ws->fp;

	ws_frame_unmask(p, n, fp->mask, fp->pos);
	fp->pos += n;
	if (WS_OP_IS_CONTROL(fp->opcode)) {
		memcpy(ws->ctl + ws->ctl_len, p, n);
		ws->ctl_len += n;
		return 0;
	}
	if (ws->msg_deflated)
		return n > 0 ? ws_inflate(ws, p, n) : 0;
	if (ws->msg_opcode == WS_OP_TEXT &&
	    utf8_validate(&ws->utf8_state, p, n) < 0)
		return WS_E_UTF8;
	if (n == 0)
		return 0;
	ws_reserve(ws, n);
	memcpy(ws->msg + ws->msg_len, p, n);
	ws->msg_len += n;
	return 0;
}

/* Acts on a frame whose payload is complete. */
static int
ws_frame_end(struct ws *ws)
{
	struct ws_frame_parser *fp = &ws->fp;

	int r;

	ws_frame_next(fp);
	switch (fp->opcode) {
	case WS_OP_PING:
		if (!(ws->flags & WS_CLOSE_SENT))
			ws_send_control(ws, WS_OP_PONG, ws->ctl, ws->ctl_len);
		ws_ctl_free(ws);
		return 0;
	case WS_OP_PONG:
		ws_ctl_free(ws);
		ws->cb->pong(ws->arg);
		return 0;
	case WS_OP_CLOSE:
		r = ws_on_close(ws);
		ws_ctl_free(ws);
		return r;
	default:
		if (!fp->fin)
			return 0;
		if (ws->msg_deflated && (r = ws_inflate_end(ws)) < 0)
			return r;
		if (ws->msg_opcode == WS_OP_TEXT &&
		    !utf8_complete(ws->utf8_state))
			return WS_E_UTF8;
		return ws_deliver(ws, ws->msg, ws->msg_len);
	}
}

/* Delivers a whole unfragmented data frame straight from the fed
 * buffer, without copying it. */
static int
ws_frame_direct(struct ws *ws, uint8_t *p)
{
	struct ws_frame_parser *fp = &ws->fp;
	size_t n = fp->len;

	ws_frame_unmask(p, n, fp->mask, 0);
	ws_frame_next(fp);
	if (fp->opcode == WS_OP_TEXT && !utf8_valid(p, n))
		return WS_E_UTF8;
	return ws_deliver(ws, p, n);
}

/* ws_feed's loop over the frames in buf. */
static ssize_t
ws_feed_frames(struct ws *ws, uint8_t *buf, size_t len)
{
	struct ws_frame_parser *fp = &ws->fp;
	size_t off = 0, n;
	ssize_t r;

	while (off < len) {
		if (ws->flags & WS_CLOSE_RECEIVED)
			return ws_fail(ws, WS_E_CLOSED);
		if (fp->state == WS_FRAME_HEAD) {
			r = ws_frame_parse(fp, buf + off, len - off);
			if (r < 0)
				return ws_fail(ws, WS_E_PROTOCOL);
			off += r;
			if (fp->state != WS_FRAME_BODY)
				continue;
			if ((r = ws_frame_begin(ws)) < 0)
				return ws_fail(ws, r);
			if (fp->fin && fp->opcode != WS_OP_CONT &&
			    !WS_OP_IS_CONTROL(fp->opcode) && !fp->rsv1 &&
			    fp->len <= len - off) {
				n = fp->len;
				if ((r = ws_frame_direct(ws, buf + off)) < 0)
					return ws_fail(ws, r);
				off += n;
				continue;
			}
		}
		n = fp->len - fp->pos < len - off ? fp->len - fp->pos
		                                  : len - off;
		if ((r = ws_payload(ws, buf + off, n)) < 0)
			return ws_fail(ws, r);
		off += n;
		if (fp->pos == fp->len && (r = ws_frame_end(ws)) < 0)
			return ws_fail(ws, r);
	}
	return (ssize_t)len;
}

ssize_t
ws_feed(struct ws *ws, uint8_t *buf, size_t len)
{
	ssize_t r;

	if (ws->err)
		return ws->err;
	r = ws_feed_frames(ws, buf, len);
	/* The inflater lives while compressed messages arrive: kept for
	 * the next message of a burst, freed once a feed ends between
	 * messages (an idle connection holds none). */
	if (ws->zi != NULL && ws->msg_opcode == 0)
		ws_zi_free(ws);
	return r;
}
