/* chatd/mention.h — finding the mentions of a message's text (PROTOCOL.md
 * "Mentions"), without I/O: who is a member is asked of a callback */
#ifndef CHATD_MENTION_H
#define CHATD_MENTION_H

#include <stddef.h>
#include <stdint.h>

#define MENTION_NAME_MAX 32 /* a username's length, at most */

struct mention {
	char name[MENTION_NAME_MAX + 1]; /* lower case */
	int64_t id;                      /* what the callback gave */
};

/* The mentions of a text: sorted by name, each once. */
struct mention_list {
	struct mention *v;
	size_t n, cap;
	int room; /* the text holds @room (any case) */
};

/* Whether name (lower case) names a member of the room: 1 and *id set,
 * 0 if not, -1 on an error. */
typedef int (*mention_member_fn)(void *arg, const char *name, int64_t *id);

/* Finds the mentions of text (len bytes of UTF-8) into out (zeroed
 * first; free with mention_list_free): each @name whose @ starts the
 * text or follows a character outside [a-z0-9_.-] (case-insensitively),
 * name being the longest run of [A-Za-z0-9_.-] after it, or failing
 * that the run without its trailing '.' and '-', that is @room or names
 * a member. 0, or -1 if is_member failed (out then holds what was found
 * before). */
int mention_parse(const char *text, size_t len, mention_member_fn is_member,
                  void *arg, struct mention_list *out);
/* Frees what mention_parse allocated; NULL-safe, idempotent. */
void mention_list_free(struct mention_list *l);

#endif
