/* storage/pg_search.c — message search on PostgreSQL: pg_trgm's trigram
 * index for terms of three or more characters (substrings, any script,
 * case folded), word matches for shorter ones; the same contract as
 * SQLite's FTS5 search (storage.h message_search). */
#include <stdlib.h>
#include <string.h>

#include "chatd/xmalloc.h"
#include "storage/db.h"
#include "storage/message_int.h"
#include "storage/storage.h"

/* A growing PostgreSQL array literal of the terms: {"a","b"}, with " and
 * \ escaped, so no character of a term is array syntax. */
struct pg_terms {
	char *s;
	size_t len, cap;
	int n;
};

static void
pg_terms_add(struct pg_terms *t, const char *term, size_t len)
{
	size_t need = t->len + 2 * len + 8;

	if (need > t->cap) {
		t->cap = need * 2;
		t->s = xrealloc(t->s, t->cap);
	}
	t->s[t->len++] = t->n++ == 0 ? '{' : ',';
	t->s[t->len++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (term[i] == '"' || term[i] == '\\')
			t->s[t->len++] = '\\';
		t->s[t->len++] = term[i];
	}
	t->s[t->len++] = '"';
	t->s[t->len] = '\0';
}

/* 1 if the byte c is part of a word for the short terms: ASCII letters
 * and digits, and every byte of a non-ASCII character (SQLite's unicode61
 * tokenizer, which the SQLite backend's word index uses, splits on ASCII
 * punctuation and white space the same way). */
static int
pg_word_byte(unsigned char c)
{
	return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* Adds a short term as the words in it ("b)" is the word b), as SQLite's
 * word index reads it; a term without any (punctuation) adds nothing. */
static void
pg_terms_add_words(struct pg_terms *t, const char *term, size_t len)
{
	size_t i = 0, start;

	while (i < len) {
		while (i < len && !pg_word_byte((unsigned char)term[i]))
			i++;
		start = i;
		while (i < len && pg_word_byte((unsigned char)term[i]))
			i++;
		if (i > start)
			pg_terms_add(t, term + start, i - start);
	}
}

/* Each term must match: one of three or more characters as a substring
 * (strpos over lower(): ILIKE would read % and _ in it), a shorter one
 * as a whole word (a regular expression with its characters escaped).
 * The longest term, as an ILIKE pattern, drives the trigram index. */
#define PG_SEARCH_TERMS                                                        \
	" NOT EXISTS (SELECT 1 FROM unnest(:terms::text[]) t WHERE NOT"        \
	" CASE WHEN char_length(t) >= 3"                                       \
	" THEN strpos(lower(m.text), lower(t)) > 0"                            \
	" ELSE unaccent(m.text) ~* ('\\m' || regexp_replace(unaccent(t),"       \
	" '([][!$()*+.:<=>?\\\\^{|}-])', '\\\\\\1', 'g') || '\\M') END)"

int
pg_message_search(struct db *db, int64_t user_id, int64_t room_id,
                  const char *q, int limit, message_cb cb, void *arg)
{
	struct db_stmt *by_lead = db_prepare(
	    db, "SELECT " MESSAGE_COLUMNS " FROM messages m" MESSAGE_JOINS
	        " WHERE m.text ILIKE '%' || replace(replace(replace(:lead,"
	        " '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'"
	        " AND" PG_SEARCH_TERMS MESSAGE_SEARCH_SCOPE
	        " ORDER BY m.id DESC LIMIT :limit");
	struct db_stmt *by_words = db_prepare(
	    db, "SELECT " MESSAGE_COLUMNS " FROM messages m" MESSAGE_JOINS
	        " WHERE" PG_SEARCH_TERMS MESSAGE_SEARCH_SCOPE
	        " ORDER BY m.id DESC LIMIT :limit");
	const unsigned char *p = (const unsigned char *)q, *start;
	const char *lead = NULL;
	size_t sp, chars, lead_len = 0, lead_chars = 0;
	struct pg_terms terms = {0};
	struct db_stmt *st;
	int ret;

	if (by_lead == NULL || by_words == NULL)
		return -1;
	for (;;) {
		while (*p != '\0' && (sp = message_space(p)) > 0)
			p += sp;
		if (*p == '\0')
			break;
		start = p;
		chars = 0;
		while (*p != '\0' && message_space(p) == 0) {
			if ((*p & 0xc0) != 0x80)
				chars++;
			p++;
		}
		if (chars >= 3)
			pg_terms_add(&terms, (const char *)start,
			             (size_t)(p - start));
		else
			pg_terms_add_words(&terms, (const char *)start,
			                   (size_t)(p - start));
		if (chars >= 3 && chars > lead_chars) {
			lead = (const char *)start;
			lead_len = (size_t)(p - start);
			lead_chars = chars;
		}
	}
	if (terms.n == 0)
		return 0; /* nothing to look for (SQLite finds nothing too) */
	terms.s[terms.len++] = '}';
	terms.s[terms.len] = '\0';
	st = lead != NULL ? by_lead : by_words;
	if (lead != NULL)
		db_bind_text(st, ":lead", lead, (ptrdiff_t)lead_len);
	db_bind_text(st, ":terms", terms.s, (ptrdiff_t)terms.len);
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":limit", limit);
	ret = message_each(db, st, -1, cb, arg, NULL);
	free(terms.s);
	return ret;
}
