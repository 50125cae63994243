/* chatd/ws_frame.c — RFC 6455 frame headers: parser and encoders */
#include <string.h>

#include "chatd/ws_frame.h"

void
ws_frame_parser_init(struct ws_frame_parser *fp, int client)
{
	memset(fp, 0, sizeof(*fp));
	fp->client = client != 0;
	ws_frame_next(fp);
}

void
ws_frame_next(struct ws_frame_parser *fp)
{
	fp->state = WS_FRAME_HEAD;
	fp->head_len = 0;
	fp->head_need = 2;
	fp->pos = 0;
}

/* 1 if op is one of the six opcodes RFC 6455 defines. */
static int
ws_frame_opcode_known(int op)
{
	return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

/* Checks the first two header bytes and sizes the rest of the header. */
static int
ws_frame_check_start(struct ws_frame_parser *fp)
{
	uint8_t b0 = fp->head[0], b1 = fp->head[1];
	int len7 = b1 & 0x7f;

	fp->fin = b0 >> 7;
	fp->rsv1 = (b0 & WS_FRAME_RSV1) != 0;
	fp->opcode = b0 & 0x0f;
	fp->masked = b1 >> 7;
	if (b0 & 0x30)
		return WS_FRAME_E_PROTOCOL; /* RSV2-3: no extension uses them */
	/* RSV1 marks a compressed message on its first frame (RFC 7692 6);
	 * never on a control frame or a continuation. */
	if (fp->rsv1 && (!fp->rsv1_ok || WS_OP_IS_CONTROL(fp->opcode) ||
	                 fp->opcode == WS_OP_CONT))
		return WS_FRAME_E_PROTOCOL;
	if (!ws_frame_opcode_known(fp->opcode))
		return WS_FRAME_E_PROTOCOL;
	if (fp->masked == fp->client)
		return WS_FRAME_E_PROTOCOL; /* RFC 6455 5.1 */
	if (WS_OP_IS_CONTROL(fp->opcode) && (!fp->fin || len7 > WS_MAX_CONTROL))
		return WS_FRAME_E_PROTOCOL; /* RFC 6455 5.5 */
	fp->head_need = 2 +
	                (len7 == 126   ? 2
	                 : len7 == 127 ? 8
	                               : 0) +
	                (fp->masked ? 4 : 0);
	return 0;
}

/* Decodes the length and mask of a complete header. */
static int
ws_frame_check_end(struct ws_frame_parser *fp)
{
	int len7 = fp->head[1] & 0x7f;
	const uint8_t *p = fp->head + 2;
	int i;

	if (len7 < 126) {
		fp->len = len7;
	} else if (len7 == 126) {
		fp->len = (uint64_t)p[0] << 8 | p[1];
		p += 2;
	} else {
		if (p[0] & 0x80)
			return WS_FRAME_E_PROTOCOL; /* RFC 6455 5.2 */
		fp->len = 0;
		for (i = 0; i < 8; i++)
			fp->len = fp->len << 8 | p[i];
		p += 8;
	}
	if (fp->masked)
		memcpy(fp->mask, p, 4);
	else
		memset(fp->mask, 0, 4);
	fp->pos = 0;
	fp->state = WS_FRAME_BODY;
	return 0;
}

ssize_t
ws_frame_parse(struct ws_frame_parser *fp, const uint8_t *buf, size_t len)
{
	size_t used = 0, n;
	int r;

	while (fp->state == WS_FRAME_HEAD && used < len) {
		n = fp->head_need - fp->head_len;
		if (n > len - used)
			n = len - used;
		memcpy(fp->head + fp->head_len, buf + used, n);
		fp->head_len += n;
		used += n;
		if (fp->head_len < fp->head_need)
			break;
		if (fp->head_len == 2 && (r = ws_frame_check_start(fp)) < 0)
			return r;
		if (fp->head_len == fp->head_need &&
		    (r = ws_frame_check_end(fp)) < 0)
			return r;
	}
	return (ssize_t)used;
}

void
ws_frame_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos)
{
	uint8_t m[8];
	uint64_t w, mw;
	size_t i = 0;
	int k;

	for (k = 0; k < 8; k++)
		m[k] = mask[(pos + k) & 3];
	memcpy(&mw, m, 8);
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		w ^= mw;
		memcpy(p + i, &w, 8);
	}
	for (; i < n; i++)
		p[i] ^= m[i & 7];
}

/* Writes the first bytes and the length; returns the bytes written. */
static size_t
ws_frame_put_len(uint8_t *out, int fin, int opcode, uint64_t len, int masked)
{
	uint8_t m = masked ? 0x80 : 0;
	int i;

	out[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
	if (len < 126) {
		out[1] = m | (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = m | 126;
		out[2] = len >> 8;
		out[3] = len & 0xff;
		return 4;
	}
	out[1] = m | 127;
	for (i = 0; i < 8; i++)
		out[2 + i] = len >> (56 - 8 * i);
	return 10;
}

size_t
ws_frame_header(uint8_t out[WS_MAX_HEADER], int fin, int opcode, uint64_t len)
{
	return ws_frame_put_len(out, fin, opcode, len, 0);
}

size_t
ws_frame_client_header(uint8_t out[WS_MAX_HEADER], int fin, int opcode,
                       uint64_t len, const uint8_t mask[4])
{
	size_t n = ws_frame_put_len(out, fin, opcode, len, 1);

	memcpy(out + n, mask, 4);
	return n + 4;
}

size_t
ws_frame_client_encode(uint8_t *out, size_t outlen, int fin, int opcode,
                       const uint8_t *payload, size_t len,
                       const uint8_t mask[4])
{
	uint8_t head[WS_MAX_HEADER];
	size_t n = ws_frame_client_header(head, fin, opcode, len, mask);

	if (outlen < n || outlen - n < len)
		return 0;
	memcpy(out, head, n);
	if (len > 0)
		memcpy(out + n, payload, len);
	ws_frame_unmask(out + n, len, mask, 0);
	return n + len;
}
