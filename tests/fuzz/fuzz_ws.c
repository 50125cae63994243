/* fuzz sources: chatd/ws.c chatd/ws_frame.c chatd/ws_deflate.c
 * chatd/utf8.c chatd/xmalloc.c chatd/log.c */
/* tests/fuzz/fuzz_ws.c — libFuzzer harness for the WebSocket engine */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "chatd/utf8.h"
#include "chatd/ws.h"

/*
 * The input is fed to an engine twice: whole, then in chunks whose sizes
 * come from the input. Both runs must report the same events (hashed),
 * every text message must be valid UTF-8 within the size cap, and every
 * write must be one well-formed server frame. With the first byte odd,
 * the rest is read as frame descriptions that the harness encodes as
 * masked client frames, so the fuzzer reaches deep states quickly.
 * With data[1] & 4, permessage-deflate is negotiated (client window
 * 8 + (data[1] >> 3 & 7)); then with data[0] & 2 the payload of every
 * described frame with RSV1 set is deflated first (a valid compressed
 * message when it is one frame), else it is taken as it is (garbage to
 * inflate). The inflated size stays under the cap, and no inflater is
 * left once a feed ends between messages.
 */

struct run {
	uint64_t hash; /* of the event sequence */
	size_t max_message;
	int abort_after; /* message callback returns -1 after N */
	int messages;
};

/* Mixes an event into the run's hash. */
static void
mix(struct run *r, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n-- > 0)
		r->hash = (r->hash ^ *b++) * 1099511628211ULL;
}

/* Checks and records a message. */
static int
on_message(void *arg, int binary, uint8_t *data, size_t len)
{
	struct run *r = arg;
	uint8_t tag = binary ? 'B' : 'T';

	if (len > r->max_message || data == NULL)
		abort();
	if (!binary && !utf8_valid(data, len))
		abort();
	mix(r, &tag, 1);
	mix(r, &len, sizeof(len));
	mix(r, data, len);
	if (len > 0)
		data[0] ^= 0xff; /* the buffer is writable */
	return ++r->messages == r->abort_after ? -1 : 0;
}

/* Checks that a write is exactly one unmasked final control frame. */
static void
on_write(void *arg, const uint8_t *data, size_t len)
{
	struct run *r = arg;

	if (len < 2 || (data[0] & 0xf0) != 0x80 || (data[1] & 0x80) ||
	    data[1] > 125 || len != 2u + data[1])
		abort();
	if ((data[0] & 0x0f) != WS_OP_PONG && (data[0] & 0x0f) != WS_OP_CLOSE)
		abort();
	mix(r, "W", 1);
	mix(r, data, len);
}

/* Records the end of the closing handshake. */
static void
on_closed(void *arg, int code)
{
	mix(arg, "C", 1);
	mix(arg, &code, sizeof(code));
}

/* Records a pong. */
static void
on_pong(void *arg)
{
	mix(arg, "P", 1);
}

static const struct ws_callbacks callbacks = {on_message, on_write, on_closed,
                                              on_pong};

/* Feeds buf in chunks of the given sizes (cycled; 0 means whole). */
static uint64_t
feed(uint8_t *buf, size_t len, const uint8_t *sizes, size_t nsizes,
     size_t max_message, int abort_after, int wbits)
{
	struct run r = {1469598103934665603ULL,
	                max_message ? max_message : WS_MAX_MESSAGE, abort_after,
	                0};
	struct ws ws;
	size_t off = 0, k, i = 0;
	ssize_t n;

	ws_init(&ws, max_message, &callbacks, &r);
	if (wbits)
		ws_set_deflate(&ws, wbits);
	while (off < len) {
		k = nsizes ? 1 + sizes[i++ % nsizes] : len;
		if (k > len - off)
			k = len - off;
		n = ws_feed(&ws, buf + off, k);
		if (n < 0) {
			if (ws_feed(&ws, buf, len) != n) /* sticky */
				abort();
			mix(&r, &n, sizeof(n));
			break;
		}
		if ((size_t)n != k)
			abort();
		if (ws.msg_opcode == 0 && ws.zi != NULL)
			abort(); /* idle with an inflater */
		off += k;
		if (i & 1)
			ws_shrink(&ws);
	}
	if (ws.msg_cap > ws.max_message)
		abort();
	ws_free(&ws);
	return r.hash;
}

/* Deflates p[0..n) as a client would (sync flush, trailer off) into
 * out (room for 1024 bytes); returns the length. */
static size_t
zcompress(const uint8_t *p, size_t n, uint8_t *out)
{
	static z_stream z;
	static int ready;

	if (!ready && deflateInit2(&z, 6, Z_DEFLATED, -15, 8,
	                           Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	ready = 1;
	deflateReset(&z);
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = 1024;
	if (deflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_out < 4)
		abort();
	return 1024 - z.avail_out - 4;
}

/* Turns frame descriptions (byte0: FIN/RSV/opcode, byte1: length, then
 * the payload) into masked client frames, RSV1 payloads deflated if
 * zip. Returns a malloc'ed buffer. */
static uint8_t *
encode(const uint8_t *d, size_t n, size_t *outlen, int zip)
{
	size_t cap = n * 2 + 64, len = 0, plen, w, zlen;
	uint8_t *out = malloc(cap), mask[4] = {0x12, 0x34, 0x56, 0x78};
	uint8_t z[1024];

	while (n >= 2) {
		plen = d[1];
		if (plen == 255)
			plen = 300; /* reach 16-bit lengths */
		d += 2, n -= 2;
		if (plen > n)
			plen = n;
		if (len + WS_MAX_HEADER + plen > cap) {
			cap = (len + WS_MAX_HEADER + plen) * 2;
			out = realloc(out, cap);
		}
		if (zip && (d[-2] & 0x40)) {
			zlen = zcompress(d, plen, z);
			if (len + WS_MAX_HEADER + zlen > cap) {
				cap = (len + WS_MAX_HEADER + zlen) * 2;
				out = realloc(out, cap);
			}
			w = ws_frame_client_encode(out + len, cap - len,
			                           d[-2] >> 7, d[-2] & 0x0f, z,
			                           zlen, mask);
		} else {
			w = ws_frame_client_encode(out + len, cap - len,
			                           d[-2] >> 7, d[-2] & 0x0f, d,
			                           plen, mask);
		}
		out[len] |= d[-2] & 0x70;
		len += w;
		d += plen, n -= plen;
		mask[0]++;
	}
	*outlen = len;
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *a, *b;
	size_t len, max_message, nsizes;
	uint64_t h1, h2;
	int abort_after, wbits;

	if (size < 4)
		return 0;
	max_message = data[1] & 1 ? 1 + data[2] : 0;
	abort_after = data[1] & 2 ? 1 + (data[1] >> 4) : 0;
	wbits = data[1] & 4 ? 8 + (data[1] >> 3 & 7) : 0;
	if (data[0] & 1) {
		a = encode(data + 4, size - 4, &len, wbits && (data[0] & 2));
	} else {
		len = size - 4;
		a = malloc(len ? len : 1);
		memcpy(a, data + 4, len);
	}
	b = malloc(len ? len : 1);
	memcpy(b, a, len);
	h1 = feed(a, len, NULL, 0, max_message, abort_after, wbits);
	nsizes = 1 + (data[0] >> 5);
	if (nsizes > size - 3)
		nsizes = size - 3;
	h2 = feed(b, len, data + 3, nsizes, max_message, abort_after,
	          wbits);
	if (h1 != h2)
		abort(); /* the chunking changed what happened */
	free(a);
	free(b);
	return 0;
}
