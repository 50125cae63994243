/* chatd/mention.c — finding the mentions of a message's text */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/mention.h"
#include "chatd/xmalloc.h"

/* 1 if c may be part of a name: [A-Za-z0-9_.-]. */
static int
mention_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Copies n bytes of s into name in lower case, NUL-ended. */
static void
mention_fold(const unsigned char *s, size_t n, char *name)
{
	for (size_t k = 0; k < n; k++)
		name[k] = (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] + 32 : s[k]);
	name[n] = '\0';
}

/* Inserts name (with id) in its sorted place, unless it is there. */
static void
mention_add(struct mention_list *l, const char *name, int64_t id)
{
	size_t lo = 0, hi = l->n, mid;
	int c;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		c = strcmp(l->v[mid].name, name);
		if (c == 0)
			return;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	memmove(l->v + lo + 1, l->v + lo, (l->n - lo) * sizeof *l->v);
	snprintf(l->v[lo].name, sizeof l->v[lo].name, "%s", name);
	l->v[lo].id = id;
	l->n++;
}

/* 1 if name is in the list already. */
static int
mention_has(const struct mention_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return 1;
	return 0;
}

/* Resolves one candidate (lower case): 1 if it is @room or a member
 * (recorded), 0 if neither, -1 on a callback error. */
static int
mention_try(struct mention_list *l, const char *name, mention_member_fn fn,
            void *arg)
{
	int64_t id = 0;
	int rc;

	if (strcmp(name, "room") == 0) {
		/* @room is everyone, and never the user named room. */
		l->room = 1;
		return 1;
	}
	if (mention_has(l, name))
		return 1;
	if ((rc = fn(arg, name, &id)) <= 0)
		return rc;
	mention_add(l, name, id);
	return 1;
}

int
mention_parse(const char *text, size_t len, mention_member_fn is_member,
              void *arg, struct mention_list *out)
{
	const unsigned char *s = (const unsigned char *)text;
	char name[MENTION_NAME_MAX + 1];
	size_t i = 0, start, run, trim;
	int rc;

	memset(out, 0, sizeof *out);
	while (i < len) {
		if (s[i] != '@' || (i > 0 && mention_char(s[i - 1]))) {
			i++;
			continue;
		}
		start = ++i;
		while (i < len && mention_char(s[i]))
			i++;
		run = i - start;
		for (trim = run; trim > 0 && (s[start + trim - 1] == '.' ||
		                              s[start + trim - 1] == '-');
		     trim--)
			;
		/* The full run first: it wins when both name members. */
		rc = 0;
		if (run > 0 && run <= MENTION_NAME_MAX) {
			mention_fold(s + start, run, name);
			rc = mention_try(out, name, is_member, arg);
		}
		if (rc == 0 && trim > 0 && trim < run &&
		    trim <= MENTION_NAME_MAX) {
			mention_fold(s + start, trim, name);
			rc = mention_try(out, name, is_member, arg);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

void
mention_list_free(struct mention_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
