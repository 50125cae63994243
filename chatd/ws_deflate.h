/* chatd/ws_deflate.h — permessage-deflate (RFC 7692) streams (sans-IO) */
#ifndef CHATD_WS_DEFLATE_H
#define CHATD_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

/* Messages shorter than this are sent as they are: deflate's block
 * headers and the lack of shared context make small ones barely shrink,
 * and the CPU is better spent elsewhere. */
#define WS_DEFLATE_MIN 256
/* The window of every message the server deflates (2^15 bytes): offers
 * asking for a smaller server_max_window_bits are declined. */
#define WS_DEFLATE_WBITS 15
/* The compression level: zlib's 1 (fastest) to 9 (smallest). */
#define WS_DEFLATE_LEVEL 6

/* The server's compressor: one zlib stream, reset before each message
 * (the server answers server_no_context_takeover), for every connection. */
struct ws_deflate;
/* One message being inflated (only while it arrives). */
struct ws_inflate;

/* A compressor at WS_DEFLATE_LEVEL; aborts if zlib cannot start one. */
struct ws_deflate *ws_deflate_new(void);
void ws_deflate_free(struct ws_deflate *d);
/*
 * Compresses the payload of one message as RFC 7692 7.2.1 says (the
 * final 00 00 ff ff stripped). Returns the compressed bytes, valid until
 * the next call, with their count in *outlen; NULL if compressing does
 * not pay: len under WS_DEFLATE_MIN, or the result not smaller than len.
 */
const uint8_t *ws_deflate_compress(struct ws_deflate *d, const uint8_t *in,
    size_t len, size_t *outlen);

/* An inflater for a peer deflating with window bits wbits (8-15; 8 is
 * inflated with 9, a superset). Aborts if zlib cannot start one. */
struct ws_inflate *ws_inflate_new(int wbits);
/* Makes zi ready for the next message (no context taken over). */
void ws_inflate_reset(struct ws_inflate *zi);
void ws_inflate_free(struct ws_inflate *zi);
/*
 * One inflate step: takes bytes from *in (advancing it and *inlen) and
 * writes at most *outlen bytes to out (*outlen becomes the count
 * written). Returns 0 (call again while input is left or out was
 * filled), 1 when the deflate stream has ended (later input is to be
 * ignored), or -1 if the data is not valid deflate.
 */
int ws_inflate_step(struct ws_inflate *zi, const uint8_t **in, size_t *inlen,
    uint8_t *out, size_t *outlen);
/* 1 if the input so far ends on a block boundary (a whole message once
 * the 00 00 ff ff trailer was inflated), else 0. */
int ws_inflate_at_boundary(const struct ws_inflate *zi);

#endif
