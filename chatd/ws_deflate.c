/* chatd/ws_deflate.c — permessage-deflate (RFC 7692) streams (sans-IO) */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "chatd/log.h"
#include "chatd/ws_deflate.h"
#include "chatd/xmalloc.h"

struct ws_deflate {
	z_stream z;
	uint8_t *out; /* the last compressed message */
	size_t cap;
};

struct ws_inflate {
	z_stream z;
	int ended; /* the deflate stream ended (BFINAL): ignore the rest */
};

/* zlib's allocator: aborts on failure, as every allocation here does. */
static voidpf
ws_deflate_zalloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return xcalloc(items, size);
}

/* zlib's free. */
static void
ws_deflate_zfree(voidpf opaque, voidpf p)
{
	(void)opaque;
	free(p);
}

struct ws_deflate *
ws_deflate_new(void)
{
	struct ws_deflate *d = xcalloc(1, sizeof(*d));

	d->z.zalloc = ws_deflate_zalloc;
	d->z.zfree = ws_deflate_zfree;
	/* Raw deflate (negative window bits): no zlib header (7.2.1). */
	if (deflateInit2(&d->z, WS_DEFLATE_LEVEL, Z_DEFLATED, -WS_DEFLATE_WBITS,
	                 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		log_error("%s: deflateInit2 failed", __func__);
		abort();
	}
	return d;
}

void
ws_deflate_free(struct ws_deflate *d)
{
	if (d == NULL)
		return;
	deflateEnd(&d->z);
	free(d->out);
	free(d);
}

const uint8_t *
ws_deflate_compress(struct ws_deflate *d, const uint8_t *in, size_t len,
                    size_t *outlen)
{
	/* Worth it only if smaller than len, after taking off the 4-byte
	 * trailer: give deflate len + 3 bytes, and fail when they fill. */
	size_t room = len + 3, n;
	int r;

	*outlen = 0;
	if (len < WS_DEFLATE_MIN || len > UINT32_MAX - 4)
		return NULL;
	if (d->cap < room) {
		free(d->out);
		d->out = xmalloc(room);
		d->cap = room;
	}
	deflateReset(&d->z);
	d->z.next_in = (Bytef *)in;
	d->z.avail_in = (uInt)len;
	d->z.next_out = d->out;
	d->z.avail_out = (uInt)room;
	r = deflate(&d->z, Z_SYNC_FLUSH);
	if (r != Z_OK || d->z.avail_in != 0 || d->z.avail_out == 0)
		return NULL; /* out of room: it did not shrink */
	n = room - d->z.avail_out;
	/* A sync flush ends with an empty stored block: 00 00 ff ff. */
	if (n < 4 || memcmp(d->out + n - 4, "\0\0\xff\xff", 4) != 0) {
		log_warn("%s: no sync flush trailer", __func__);
		return NULL;
	}
	*outlen = n - 4;
	return d->out;
}

struct ws_inflate *
ws_inflate_new(int wbits)
{
	struct ws_inflate *zi = xcalloc(1, sizeof(*zi));

	/* Always the largest window, whatever the client's: zlib enforces
	 * a small window only against bytes it output in earlier inflate
	 * calls, not earlier in the same call, so with a 2^wbits window a
	 * distance past it would be accepted or refused depending on how
	 * the frames were cut into reads. With 2^15 every distance deflate
	 * can express is judged the same way, however the bytes arrive
	 * (tests/fuzz/fuzz_ws.c feeds whole and in pieces). The cost: the
	 * window while a compressed message arrives is 32 KiB, not 512. */
	(void)wbits;
	wbits = 15;
	zi->z.zalloc = ws_deflate_zalloc;
	zi->z.zfree = ws_deflate_zfree;
	if (inflateInit2(&zi->z, -wbits) != Z_OK) {
		log_error("%s: inflateInit2 failed", __func__);
		abort();
	}
	return zi;
}

void
ws_inflate_reset(struct ws_inflate *zi)
{
	inflateReset(&zi->z);
	zi->ended = 0;
}

void
ws_inflate_free(struct ws_inflate *zi)
{
	if (zi == NULL)
		return;
	inflateEnd(&zi->z);
	free(zi);
}

int
ws_inflate_step(struct ws_inflate *zi, const uint8_t **in, size_t *inlen,
                uint8_t *out, size_t *outlen)
{
	uInt avail_in = *inlen > UINT32_MAX ? UINT32_MAX : (uInt)*inlen;
	uInt avail_out = *outlen > UINT32_MAX ? UINT32_MAX : (uInt)*outlen;
	int r;

	if (zi->ended) {
		/* RFC 7692 7.2.3.3: after a final block, what follows (the
		 * trailer, a stray empty block) means nothing. */
		*in += *inlen;
		*inlen = 0;
		*outlen = 0;
		return 1;
	}
	zi->z.next_in = (Bytef *)*in;
	zi->z.avail_in = avail_in;
	zi->z.next_out = out;
	zi->z.avail_out = avail_out;
	r = inflate(&zi->z, Z_SYNC_FLUSH);
	*in += avail_in - zi->z.avail_in;
	*inlen -= avail_in - zi->z.avail_in;
	*outlen = avail_out - zi->z.avail_out;
	switch (r) {
	case Z_OK:
	case Z_BUF_ERROR: /* no progress possible: needs input or room */
		return 0;
	case Z_STREAM_END:
		zi->ended = 1;
		*in += *inlen;
		*inlen = 0;
		return 1;
	default: /* Z_DATA_ERROR, Z_NEED_DICT (no dictionary is used) */
		return -1;
	}
}

int
ws_inflate_at_boundary(const struct ws_inflate *zi)
{
	/* zlib sets 128 in data_type when it waits for a block header. */
	return zi->ended || (zi->z.data_type & 128) != 0;
}
