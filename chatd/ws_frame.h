/* chatd/ws_frame.h — RFC 6455 frame headers: parser and encoders (sans-IO) */
#ifndef CHATD_WS_FRAME_H
#define CHATD_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_MAX_HEADER 14   /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MAX_CONTROL 125 /* control frame payload limit */
#define WS_FRAME_RSV1 0x40 /* first header byte: compressed (RFC 7692) */

enum ws_opcode {
	WS_OP_CONT = 0,
	WS_OP_TEXT = 1,
	WS_OP_BINARY = 2,
	WS_OP_CLOSE = 8,
	WS_OP_PING = 9,
	WS_OP_PONG = 10,
};

/* Negative results of ws_frame_parse. */
enum ws_frame_error {
	WS_FRAME_E_PROTOCOL = -1, /* close 1002 */
};

enum ws_frame_state {
	WS_FRAME_HEAD = 0, /* collecting header bytes */
	WS_FRAME_BODY,     /* header complete; payload bytes follow */
};

/* Header-parsing state, embedded in struct ws. Between ws_frame_parse
 * completing a header and ws_frame_next, the header fields are valid. */
struct ws_frame_parser {
	uint8_t state;     /* enum ws_frame_state */
	uint8_t client;    /* parsing as a client: frames must be unmasked */
	uint8_t rsv1_ok;   /* permessage-deflate negotiated: RSV1 allowed */
	uint8_t head_len;  /* header bytes collected */
	uint8_t head_need; /* header size, known after its 2nd byte */
	uint8_t head[WS_MAX_HEADER];
	uint8_t fin;
	uint8_t rsv1;   /* compressed message (only with rsv1_ok) */
	uint8_t opcode; /* enum ws_opcode */
	uint8_t masked;
	uint8_t mask[4];
	uint64_t len; /* payload length */
	uint64_t pos; /* payload bytes consumed so far */
};

/* 1 for close, ping and pong. */
#define WS_OP_IS_CONTROL(op) (((op)&0x8) != 0)

/* Sets up a parser; client 0 for a server (client frames must be masked),
 * 1 for a client (server frames must not be). */
void ws_frame_parser_init(struct ws_frame_parser *fp, int client);
/*
 * Consumes header bytes of the next frame. Returns the number of bytes
 * used (state becomes WS_FRAME_BODY once the header is complete, and no
 * byte past the header is used), or WS_FRAME_E_PROTOCOL at the first
 * violation of RFC 6455 5.2/5.5: RSV bits (RSV1 is allowed with rsv1_ok,
 * on the first frame of a data message only: RFC 7692 6), an unknown
 * opcode, the wrong masking, a fragmented or >125-byte control
 * frame, a 64-bit length with its top bit set. Non-minimal length
 * encodings are accepted.
 */
ssize_t ws_frame_parse(struct ws_frame_parser *fp, const uint8_t *buf,
                       size_t len);
/* Forgets the current frame: the parser waits for the next header. */
void ws_frame_next(struct ws_frame_parser *fp);
/* XORs p[0..n) with mask, as the payload bytes at offset pos. */
void ws_frame_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos);
/* Writes an unmasked (server) frame header; returns its length (2-10). */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], int fin, int opcode,
                       uint64_t len);
/* Writes a masked (client) frame header; returns its length (6-14). */
size_t ws_frame_client_header(uint8_t out[WS_MAX_HEADER], int fin, int opcode,
                              uint64_t len, const uint8_t mask[4]);
/* Writes a whole masked client frame (header and masked payload) into
 * out; returns its length, or 0 if outlen is too small. */
size_t ws_frame_client_encode(uint8_t *out, size_t outlen, int fin, int opcode,
                              const uint8_t *payload, size_t len,
                              const uint8_t mask[4]);

#endif
