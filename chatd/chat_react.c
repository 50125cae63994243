/* chatd/chat_react.c — the react request (PROTOCOL.md "Reactions"): a
 * user's emoji on a message, added or removed as a stored change. */
#include <stdio.h>
#include <string.h>

#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/hub.h"
#include "chatd/server.h"
#include "chatd/utf8.h"
#include "storage/storage.h"

/* The code point at s (valid UTF-8, n bytes left) and its length. */
static size_t
chat_emoji_cp(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80 || n < 2) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xe0) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if (s[0] < 0xf0 || n < 4) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 |
		      (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
	      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	return 4;
}

/* 1 if cp is a control character (Cc) or white space (Unicode
 * White_Space). */
static int
chat_emoji_bad_cp(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == ' ' ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* 1 if v is an emoji as PROTOCOL.md "Reactions" says: 1-32 bytes of
 * UTF-8, no white space or control characters. */
static int
chat_emoji_ok(json_t *v)
{
	const unsigned char *s = (const unsigned char *)json_string_value(v);
	size_t len = json_string_length(v), i, n;
	uint32_t cp;

	if (s == NULL || len == 0 || len > REACTION_EMOJI_MAX ||
	    !utf8_valid(s, len))
		return 0;
	for (i = 0; i < len; i += n) {
		n = chat_emoji_cp(s + i, len - i, &cp);
		if (chat_emoji_bad_cp(cp))
			return 0;
	}
	return 1;
}

/* The live message id of room, or -1 after replying not_found /
 * internal. */
static int64_t
chat_react_target(struct session *s, json_t *ref, struct hub_room *room,
                  int64_t id)
{
	struct server *srv = s->conn->srv;
	struct message *m = NULL;
	int ok;

	if (message_get(srv->db, id, chat_capture_message, &m) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	ok = m != NULL && !m->deleted && m->room_id == room->id;
	message_free(m);
	if (!ok) {
		chat_send_error(s, ref, "not_found", "no such message");
		return -1;
	}
	return id;
}

/* Replies too_large for reaction_set's answer rc, naming the cap. */
static void
chat_react_over(struct session *s, json_t *ref, int rc)
{
	char msg[96];

	if (rc == REACTION_OVER_USER)
		snprintf(msg, sizeof msg,
		         "at most %d reactions of one user on a message",
		         REACTION_USER_MAX);
	else if (rc == REACTION_OVER_EMOJIS)
		snprintf(msg, sizeof msg,
		         "at most %d different emojis on a message",
		         REACTION_EMOJIS_MAX);
	else
		snprintf(msg, sizeof msg, "at most %d reactions on a message",
		         REACTION_MESSAGE_MAX);
	chat_send_error(s, ref, "too_large", msg);
}

/* react: adds or removes the user's reaction; a change is stored and
 * delivered like an edit, a no-op only answered. */
void
chat_react(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	json_t *idv = json_object_get(req, "id");
	json_t *onv = json_object_get(req, "on");
	json_t *emoji = json_object_get(req, "emoji");
	struct hub_room *room;
	struct message *m = NULL;
	struct action *a;
	int64_t id, seq;
	int rc, on;

	if ((room = chat_room_member(s, req, ref)) == NULL)
		return;
	if (!json_is_integer(idv)) {
		chat_send_error(s, ref, "bad_request", "id must be an integer");
		return;
	}
	if (!chat_emoji_ok(emoji)) {
		chat_send_error(
		    s, ref, "bad_request",
		    "emoji must be 1-32 bytes of UTF-8 without white space "
		    "or control characters");
		return;
	}
	if (onv != NULL && !json_is_null(onv) && !json_is_boolean(onv)) {
		chat_send_error(s, ref, "bad_request", "on must be a boolean");
		return;
	}
	on = onv == NULL || json_is_null(onv) || json_is_true(onv);
	if (chat_seq_ok(s, ref) != 0)
		return;
	if (chat_txn(ch, srv) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if ((id = chat_react_target(s, ref, room, json_integer_value(idv))) < 0)
		return;
	/* The seq is taken only if the reaction changes something (on
	 * PostgreSQL it is taken from the sequence, under the room's lock,
	 * before: a no-op leaves a gap, which seqs may have). */
	if (!db_is_postgres(srv->db))
		seq = ch->next_seq;
	else if ((seq = chat_next_seq(s, ref, room)) < 0)
		return;
	rc = reaction_set(srv->db, id, s->user->id, json_string_value(emoji),
	                  on, seq);
	if (rc == 0) {
		if (!db_is_postgres(srv->db))
			ch->next_seq++;
		chat_message_changed(s, ref, room, id, seq, "reaction");
		return;
	}
	if (rc == 1 &&
	    message_get(srv->db, id, chat_capture_message, &m) == 0) {
		/* Nothing changed: the reply alone, in the current state. */
		a = chat_action(ch, ACT_REPLY, s, ref, room, NULL);
		a->msg = m;
		a->evtype = "reaction";
		return;
	}
	message_free(m);
	if (rc == 2)
		chat_send_error(s, ref, "not_found", "no such message");
	else if (rc >= REACTION_OVER_USER && rc <= REACTION_OVER_MESSAGE)
		chat_react_over(s, ref, rc);
	else
		chat_send_error(s, ref, "internal", "database error");
}
