/* chatd/chat_json.c — message objects and message events written with
 * jsonw (history, search, replies and room events), with the version 2
 * members (PROTOCOL.md "Mentions", "Reactions", "Replies");
 * storage/jsonl.c writes the same bytes with jansson
 * (tests/unit/test_jsonw.c compares them). */
#include <string.h>

#include "chatd/chat_int.h"
#include "chatd/conn.h"
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

/* The members of a message object, in storage/jsonl.c's order. */
static void
chat_message_members(struct jsonw *w, const struct message *m)
{
	JSONW_KEY(w, "id");
	jsonw_int(w, m->id);
	JSONW_KEY(w, "seq");
	jsonw_int(w, m->seq);
	JSONW_KEY(w, "room");
	jsonw_string(w, m->room);
	JSONW_KEY(w, "user");
	jsonw_string(w, m->username);
	if (m->deleted) {
		JSONW_KEY(w, "ts");
		jsonw_int(w, m->ts);
		JSONW_KEY(w, "deleted");
		jsonw_bool(w, 1);
		if (m->deleted_by[0] != '\0') {
			JSONW_KEY(w, "deleted_by");
			jsonw_string(w, m->deleted_by);
		}
		return;
	}
	JSONW_KEY(w, "text");
	jsonw_stringn(w, m->text ? m->text : "", m->text_len);
	JSONW_KEY(w, "ts");
	jsonw_int(w, m->ts);
	if (m->edited_ts > 0) {
		JSONW_KEY(w, "edited_ts");
		jsonw_int(w, m->edited_ts);
	}
	chat_message_v2_members(w, m);
}

void
chat_message_write(struct jsonw *w, const struct message *m)
{
	jsonw_object_open(w);
	chat_message_members(w, m);
	jsonw_object_close(w);
}

/* Writes a request's ref as the "ref" member. chat_ref (chat.c) admits
 * only strings; anything else is dumped by jansson, so it is echoed all
 * the same. */
void
chat_ref_write(struct jsonw *w, json_t *ref)
{
	char *text;

	JSONW_KEY(w, "ref");
	if (json_is_string(ref)) {
		jsonw_stringn(w, json_string_value(ref),
		    json_string_length(ref));
		return;
	}
	text = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
	if (text != NULL)
		jsonw_raw(w, text, strlen(text));
	else
		jsonw_null(w);
	free(text);
}

void
chat_event_write(struct jsonw *w, const char *type, const struct message *m,
    json_t *ref)
{
	jsonw_object_open(w);
	JSONW_KEY(w, "type");
	jsonw_string(w, type);
	chat_message_members(w, m);
	if (ref != NULL)
		chat_ref_write(w, ref);
	jsonw_object_close(w);
}

void
chat_event_reply(struct server *srv, struct session *s, const char *type,
    const struct message *m, json_t *ref)
{
	struct jsonw *w;

	if (s == NULL)
		return;
	w = chat_out(srv);
	chat_event_write(w, type, m, ref);
	chat_out_send(s, w);
}

struct frame *
chat_event_frame(const char *type, const struct message *m)
{
	struct jsonw w;

	jsonw_init(&w, CONN_JSONW_HEAD);
	chat_event_write(&w, type, m, NULL);
	return frame_from_jsonw(&w);
}

/* message_cb that keeps a copy of the message (arg: struct message **). */
int
chat_capture_message(void *arg, const struct message *m)
{
	struct message **out = arg;

	message_free(*out);
	*out = message_copy(m);
	return 0;
}
