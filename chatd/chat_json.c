/* chatd/chat_json.c — the version 2 members of a message object
 * (PROTOCOL.md "Mentions", "Reactions", "Replies"), written with jsonw for
 * chat_message.c's writer; storage/jsonl.c writes the same bytes with
 * jansson (tests/unit/test_jsonw.c compares them). */
#include <string.h>

#include "chatd/chat_int.h"
#include "chatd/jsonw.h"
#include "storage/storage.h"

/* Writes a list of names separated by sep (len bytes) as strings of an
 * open array. */
static void
chat_names_write(struct jsonw *w, const char *p, size_t len, char sep)
{
	const char *end = p + len, *e;

	for (; p < end; p = e + 1) {
		if ((e = memchr(p, sep, (size_t)(end - p))) == NULL)
			e = end;
		jsonw_stringn(w, p, (size_t)(e - p));
	}
}

/* The version 2 members of a live message (PROTOCOL.md "Mentions",
 * "Reactions", "Replies"), each omitted when empty, in jsonl.c's order. */
void
chat_message_v2_members(struct jsonw *w, const struct message *m)
{
	const char *p = m->reactions;
	struct reaction_view v;

	if (m->reply_to > 0) {
		JSONW_KEY(w, "reply_to");
		jsonw_int(w, m->reply_to);
	}
	if (m->mentions != NULL && m->mentions_len > 0) {
		JSONW_KEY(w, "mentions");
		jsonw_array_open(w);
		chat_names_write(w, m->mentions, m->mentions_len, ' ');
		jsonw_array_close(w);
	}
	if (m->mention_room) {
		JSONW_KEY(w, "mention_room");
		jsonw_bool(w, 1);
	}
	if (m->files != NULL && m->files_len > 0) {
		JSONW_KEY(w, "files");
		jsonw_raw(w, m->files, m->files_len);
	}
	if (p == NULL || m->reactions_len == 0)
		return;
	JSONW_KEY(w, "reactions");
	jsonw_array_open(w);
	while (reaction_next(&p, m->reactions + m->reactions_len, &v)) {
		jsonw_object_open(w);
		JSONW_KEY(w, "emoji");
		jsonw_stringn(w, v.emoji, v.emoji_len);
		JSONW_KEY(w, "count");
		jsonw_int(w, v.count);
		JSONW_KEY(w, "users");
		jsonw_array_open(w);
		if (v.users_len > 0)
			chat_names_write(w, v.users + 1, v.users_len - 1,
			                 REACTION_USER);
		jsonw_array_close(w);
		jsonw_object_close(w);
	}
	jsonw_array_close(w);
}
