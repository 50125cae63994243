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

/* The query being built: the terms, and the longest one of three or more
 * characters (the trigram index's lead). */
struct pg_query {
	struct pg_terms terms;
	const char *lead;
	size_t lead_len, lead_chars;
};

/* message_term_fn: a term into the query. */
static void
pg_query_term(void *arg, const char *term, size_t len, size_t chars)
{
	struct pg_query *q = arg;

	if (chars >= 3)
		pg_terms_add(&q->terms, term, len);
	else
		pg_terms_add_words(&q->terms, term, len);
	if (chars >= 3 && chars > q->lead_chars) {
		q->lead = term;
		q->lead_len = len;
		q->lead_chars = chars;
	}
}

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
	struct pg_query pq = {{0}, NULL, 0, 0};
	struct pg_terms *terms = &pq.terms;
	struct db_stmt *st;
	int ret;

	if (by_lead == NULL || by_words == NULL)
		return -1;
	message_terms(q, pg_query_term, &pq);
	if (terms->n == 0)
		return 0; /* nothing to look for (SQLite finds nothing too) */
	terms->s[terms->len++] = '}';
	terms->s[terms->len] = '\0';
	st = pq.lead != NULL ? by_lead : by_words;
	if (pq.lead != NULL)
		db_bind_text(st, ":lead", pq.lead, (ptrdiff_t)pq.lead_len);
	db_bind_text(st, ":terms", terms->s, (ptrdiff_t)terms->len);
	db_bind_int64(st, ":room_id", room_id);
	db_bind_int64(st, ":user_id", user_id);
	db_bind_int64(st, ":limit", limit);
	ret = message_each(db, st, -1, cb, arg, NULL);
	free(terms->s);
	return ret;
}
