/* chatd/jsonw.c — a small, fast JSON writer into a growing buffer */
#include <stdlib.h>
#include <string.h>

#include "chatd/jsonw.h"
#include "chatd/xmalloc.h"

#define JSONW_MIN_CAP 256 /* the first allocation, head included */

/*
 * What a byte becomes inside a string: 0 passes through, else the letter
 * after the backslash ('u': \u00XX). The same choices as jansson's
 * dump.c, so both encoders give the same bytes.
 */
static const char jsonw_esc[256] = {
	['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
	[0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
	[0x05] = 'u', [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u',
	[0x0f] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u',
	[0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u',
	[0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u',
	[0x1e] = 'u', [0x1f] = 'u', ['"'] = '"', ['\\'] = '\\',
};

static const char jsonw_hex[] = "0123456789ABCDEF";

/* "00" "01" ... "99": two digits per division. */
static const char jsonw_digits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

void
jsonw_init(struct jsonw *w, size_t head)
{
	memset(w, 0, sizeof *w);
	w->head = head;
}

void
jsonw_free(struct jsonw *w)
{
	free(w->buf);
	jsonw_init(w, w->head);
}

void
jsonw_reset(struct jsonw *w)
{
	w->len = 0;
	w->depth = 0;
	w->comma = 0;
}

char *
jsonw_steal(struct jsonw *w)
{
	char *buf = w->buf;

	jsonw_init(w, w->head);
	return buf;
}

/* The slow path of reserving: grows the buffer to hold need bytes. */
static void
jsonw_grow(struct jsonw *w, size_t need)
{
	size_t cap = w->cap < JSONW_MIN_CAP ? JSONW_MIN_CAP : w->cap;

	/* Geometric growth: a page of history reallocates a handful of
	 * times, not once per message. */
	while (cap < need)
		cap *= 2;
	w->buf = xrealloc(w->buf, cap);
	w->cap = cap;
}

void
jsonw_reserve(struct jsonw *w, size_t n)
{
	if (w->head + w->len + n > w->cap)
		jsonw_grow(w, w->head + w->len + n);
}

/*
 * Writing a value: jsonw_begin reserves n bytes plus a comma, writes the
 * comma if one is due and returns where the value goes; the value is
 * written through that pointer (not through w, so the compiler need not
 * reload w's fields after every byte), and jsonw_end records how far it
 * got. Members of a container are comma-separated; top-level values are
 * not.
 */
static inline char *
jsonw_begin(struct jsonw *w, size_t n)
{
	char *o;

	if (w->head + w->len + n + 1 > w->cap)
		jsonw_grow(w, w->head + w->len + n + 1);
	o = w->buf + w->head + w->len;
	if (w->comma)
		*o++ = ',';
	return o;
}

static inline void
jsonw_end(struct jsonw *w, char *o)
{
	w->len = (size_t)(o - w->buf) - w->head;
	w->comma = w->depth > 0;
}

static void
jsonw_open(struct jsonw *w, char c)
{
	char *o = jsonw_begin(w, 1);

	*o++ = c;
	w->depth++;
	jsonw_end(w, o);
	w->comma = 0;
}

static void
jsonw_close(struct jsonw *w, char c)
{
	jsonw_reserve(w, 1);
	w->buf[w->head + w->len++] = c;
	w->depth--;
	w->comma = w->depth > 0;
}

void
jsonw_object_open(struct jsonw *w)
{
	jsonw_open(w, '{');
}

void
jsonw_object_close(struct jsonw *w)
{
	jsonw_close(w, '}');
}

void
jsonw_array_open(struct jsonw *w)
{
	jsonw_open(w, '[');
}

void
jsonw_array_close(struct jsonw *w)
{
	jsonw_close(w, ']');
}

/* Writes the escape of byte c at o; returns the end. */
static inline char *
jsonw_escape(char *o, unsigned char c)
{
	char e = jsonw_esc[c];

	*o++ = '\\';
	*o++ = e;
	if (e == 'u') {
		*o++ = '0';
		*o++ = '0';
		*o++ = jsonw_hex[c >> 4];
		*o++ = jsonw_hex[c & 0xf];
	}
	return o;
}

/* Short strings (keys, names, most messages) reserve room for the worst
 * case, every byte a \u00XX, and are written in one pass; longer ones
 * reserve as they go, so a big text does not take six times its size. */
#define JSONW_SHORT 256

#define JSONW_ONES 0x0101010101010101ull
#define JSONW_HIGH 0x8080808080808080ull

/* Non-zero if one of the 8 bytes in x may need escaping: below 0x20, '"'
 * or '\\' (the "has a zero byte" trick; it never misses one, and a rare
 * false alarm only sends the 8 bytes down the byte-by-byte path). */
static inline uint64_t
jsonw_special8(uint64_t x)
{
	uint64_t q = x ^ (JSONW_ONES * '"'), b = x ^ (JSONW_ONES * '\\');

	return ((x - JSONW_ONES * 0x20) & ~x & JSONW_HIGH) |
	    ((q - JSONW_ONES) & ~q & JSONW_HIGH) |
	    ((b - JSONW_ONES) & ~b & JSONW_HIGH);
}

/* Writes the short string s, quoted and escaped, at o (room for 6 * len
 * + 2 reserved); returns the end. Eight bytes at a time while none of
 * them needs an escape. */
static char *
jsonw_quote_short(char *o, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	const unsigned char *stop;
	uint64_t x;

	*o++ = '"';
	while (end - p >= 8) {
		memcpy(&x, p, 8);
		if (jsonw_special8(x) == 0) {
			memcpy(o, &x, 8);
			o += 8;
			p += 8;
			continue;
		}
		for (stop = p + 8; p < stop; p++) {
			if (jsonw_esc[*p] == 0)
				*o++ = (char)*p;
			else
				o = jsonw_escape(o, *p);
		}
	}
	for (; p < end; p++) {
		if (jsonw_esc[*p] == 0)
			*o++ = (char)*p;
		else
			o = jsonw_escape(o, *p);
	}
	*o++ = '"';
	return o;
}

/* Writes a long string quoted and escaped after what w holds; the first
 * len + 2 bytes are reserved already. */
static void
jsonw_quote_long(struct jsonw *w, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	const unsigned char *run;
	char *o;

	/* Invariant: room for what is left of s plus the closing quote,
	 * as if nothing needed escaping; each escape reserves its extra. */
	w->buf[w->head + w->len++] = '"';
	while (p < end) {
		run = p;
		while (p < end && jsonw_esc[*p] == 0)
			p++;
		if (p > run) {
			memcpy(w->buf + w->head + w->len, run,
			    (size_t)(p - run));
			w->len += (size_t)(p - run);
		}
		if (p == end)
			break;
		jsonw_reserve(w, 6 + (size_t)(end - p) + 1);
		o = jsonw_escape(w->buf + w->head + w->len, *p);
		w->len = (size_t)(o - w->buf) - w->head;
		p++;
	}
	w->buf[w->head + w->len++] = '"';
}

/* A quoted string, then suffix (0: none). */
static void
jsonw_quoted(struct jsonw *w, const char *s, size_t len, char suffix)
{
	char *o;

	if (len <= JSONW_SHORT) {
		o = jsonw_begin(w, 6 * len + 3);
		o = jsonw_quote_short(o, s, len);
		if (suffix)
			*o++ = suffix;
		jsonw_end(w, o);
		return;
	}
	jsonw_end(w, jsonw_begin(w, len + 3));
	jsonw_quote_long(w, s, len);
	if (suffix)
		w->buf[w->head + w->len++] = suffix;
	w->comma = w->depth > 0;
}

void
jsonw_keyn(struct jsonw *w, const char *key, size_t len)
{
	jsonw_quoted(w, key, len, ':');
	w->comma = 0;
}

void
jsonw_key_plain(struct jsonw *w, const char *quoted, size_t len)
{
	char *o = jsonw_begin(w, len);

	memcpy(o, quoted, len);
	w->len = (size_t)(o + len - w->buf) - w->head;
	w->comma = 0;
}

void
jsonw_stringn(struct jsonw *w, const char *s, size_t len)
{
	jsonw_quoted(w, s, len, 0);
}

/* 10^0 .. 10^19. */
static const uint64_t jsonw_pow10[20] = {1ull, 10ull, 100ull, 1000ull,
    10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull,
    10000000000000000ull, 100000000000000000ull, 1000000000000000000ull,
    10000000000000000000ull};

/* The number of decimal digits of u >= 1: log10 from the bit length
 * (1233 / 4096 ~ log10 2), corrected by one compare. */
static inline size_t
jsonw_digits10(uint64_t u)
{
	size_t t = (size_t)(64 - __builtin_clzll(u)) * 1233 >> 12;

	return t + (u >= jsonw_pow10[t]);
}

size_t
jsonw_format_int(char *out, int64_t v)
{
	/* Negated as unsigned: INT64_MIN has no positive int64. */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t n = v < 0;
	char *p;

	if (v < 0)
		out[0] = '-';
	if (u < 10) {
		out[n] = (char)('0' + u);
		return n + 1;
	}
	n += jsonw_digits10(u);
	p = out + n;
	/* Two digits per division, from the right. */
	while (u >= 100) {
		unsigned d = (unsigned)(u % 100) * 2;

		u /= 100;
		*--p = jsonw_digits[d + 1];
		*--p = jsonw_digits[d];
	}
	if (u >= 10) {
		*--p = jsonw_digits[u * 2 + 1];
		*--p = jsonw_digits[u * 2];
	} else {
		*--p = (char)('0' + u);
	}
	return n;
}

void
jsonw_int(struct jsonw *w, int64_t v)
{
	char *o = jsonw_begin(w, 20);

	jsonw_end(w, o + jsonw_format_int(o, v));
}

void
jsonw_bool(struct jsonw *w, int b)
{
	jsonw_raw(w, b ? "true" : "false", b ? 4 : 5);
}

void
jsonw_null(struct jsonw *w)
{
	jsonw_raw(w, "null", 4);
}

void
jsonw_raw(struct jsonw *w, const char *json, size_t len)
{
	char *o = jsonw_begin(w, len);

	memcpy(o, json, len);
	jsonw_end(w, o + len);
}
