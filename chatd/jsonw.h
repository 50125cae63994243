/* chatd/jsonw.h — a small, fast JSON writer into a growing buffer (sans-IO) */
#ifndef CHATD_JSONW_H
#define CHATD_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Writes compact JSON, byte for byte what jansson's json_dumps(...,
 * JSON_COMPACT) writes for the same values in the same order: no spaces;
 * strings escape '"', '\\' and the control characters below 0x20 (as \b
 * \t \n \f \r, else \u00XX with upper-case hex); '/' and DEL are not
 * escaped; every other byte passes through unchanged, so strings must be
 * valid UTF-8 already (nothing is checked). Commas are written
 * automatically between the members of an object or array; values at the
 * top level are written back to back, so one buffer can hold several
 * documents (jsonw_len before and after each tells where it lies).
 * The writer does not check that keys and values alternate: that is the
 * caller's job.
 *
 * The buffer may keep `head` spare bytes in front of the JSON, so that a
 * header (a WebSocket frame's) can be written there afterwards without
 * moving the text. Allocations go through xrealloc, which aborts on
 * failure: no function here fails.
 */
struct jsonw {
	char *buf;   /* the allocation: head spare bytes, then the JSON */
	size_t head; /* spare bytes in front */
	size_t len;  /* JSON bytes written after the head */
	size_t cap;  /* bytes allocated, head included */
	int depth;   /* open objects and arrays */
	int comma;   /* the next member needs a comma first */
};

/* Sets up an empty writer with head spare bytes in front (no allocation
 * until the first write). */
void jsonw_init(struct jsonw *w, size_t head);
/* Frees the buffer; w is empty (as after jsonw_init) afterwards. */
void jsonw_free(struct jsonw *w);
/* Forgets what was written, keeping the allocation for reuse. */
void jsonw_reset(struct jsonw *w);
/* Hands the allocation (head spare bytes, then jsonw_len bytes of JSON)
 * to the caller, who frees it; w is empty afterwards. NULL if nothing was
 * ever written. */
char *jsonw_steal(struct jsonw *w);
/* Makes room for n more bytes of JSON. */
void jsonw_reserve(struct jsonw *w, size_t n);

/* The JSON written so far (not NUL-terminated) and its length. The head
 * spare bytes are jsonw_data(w) - head .. jsonw_data(w) - 1. */
static inline char *
jsonw_data(struct jsonw *w)
{
	return w->buf != NULL ? w->buf + w->head : NULL;
}

static inline size_t
jsonw_len(const struct jsonw *w)
{
	return w->len;
}

void jsonw_object_open(struct jsonw *w);
void jsonw_object_close(struct jsonw *w);
void jsonw_array_open(struct jsonw *w);
void jsonw_array_close(struct jsonw *w);
/* An object member's key of len bytes (escaped like a string); its value
 * follows. */
void jsonw_keyn(struct jsonw *w, const char *key, size_t len);
/* A string of len bytes (may hold NULs: they become \u0000). */
void jsonw_stringn(struct jsonw *w, const char *s, size_t len);

/* A key that is a string literal of characters that need no escaping
 * (letters, digits, '_'): copied with its quotes and colon as one
 * constant, without looking at it. */
#define JSONW_KEY(w, lit)                                                      \
	jsonw_key_plain((w), "\"" lit "\":", sizeof("\"" lit "\":") - 1)
void jsonw_key_plain(struct jsonw *w, const char *quoted, size_t len);

/* The same for NUL-terminated keys and strings; inline, so that the
 * length of a literal is known at compile time. */
static inline void
jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_keyn(w, key, strlen(key));
}

static inline void
jsonw_string(struct jsonw *w, const char *s)
{
	jsonw_stringn(w, s, strlen(s));
}
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, int b);
void jsonw_null(struct jsonw *w);
/* A value that is JSON already (e.g. json_dumps of one jansson value);
 * written as it is. */
void jsonw_raw(struct jsonw *w, const char *json, size_t len);

/* Writes the decimal digits of v into out (at least 20 bytes); returns
 * their count. No NUL. */
size_t jsonw_format_int(char *out, int64_t v);

#endif
