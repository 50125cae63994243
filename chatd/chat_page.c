/* chatd/chat_page.c — the history request, and pages of a room's history
 * (PROTOCOL.md "Paging" and around=ID) written with jsonw for it and for
 * GET /api/rooms/{room}/messages. */
#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/jsonw.h"
#include "chatd/server.h"
#include "storage/storage.h"

#define CHAT_PAGE_DEFAULT 50 /* messages in a history page, by default */
#define CHAT_PAGE_MAX 100    /* messages in a history page, at most */

int
chat_message_cb(void *w, const struct message *m)
{
	chat_message_write(w, m);
	return 0;
}

int
chat_message_page_ok(int64_t before, int64_t after, int64_t limit)
{
	return !(before >= 0 && after >= 0) && limit != 0 &&
	       limit <= CHAT_PAGE_MAX;
}

int
chat_message_page(struct server *srv, int64_t room_id, int64_t before,
                  int64_t after, int64_t limit, struct jsonw *w)
{
	int more = 0;

	JSONW_KEY(w, "messages");
	jsonw_array_open(w);
	/* before=0: nothing has an id below 0, an empty page. */
	if (before != 0 &&
	    message_page(srv->db, room_id, before < 0 ? 0 : before, after,
	                 limit < 0 ? CHAT_PAGE_DEFAULT : (int)limit,
	                 chat_message_cb, w, &more) != 0)
		return -1;
	jsonw_array_close(w);
	JSONW_KEY(w, "has_more");
	jsonw_bool(w, more);
	return 0;
}

int
chat_message_around(struct server *srv, int64_t room_id, int64_t around,
                    int64_t limit, struct jsonw *w)
{
	int before = 0, after = 0;

	JSONW_KEY(w, "messages");
	jsonw_array_open(w);
	if (message_page_around(srv->db, room_id, around,
	                        limit < 0 ? CHAT_PAGE_DEFAULT : (int)limit,
	                        chat_message_cb, w, &before, &after) != 0)
		return -1;
	jsonw_array_close(w);
	JSONW_KEY(w, "has_more_before");
	jsonw_bool(w, before);
	JSONW_KEY(w, "has_more_after");
	jsonw_bool(w, after);
	return 0;
}

/* Reads an optional non-negative integer field: 0 ok (*out = -1 when
 * absent), -1 if present but not a non-negative integer. */
static int
chat_opt_uint(json_t *req, const char *key, int64_t *out)
{
	json_t *v = json_object_get(req, key);

	*out = -1;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

int
chat_message_readable(struct server *srv, int64_t room_id, int kind,
    int64_t user_id, int member)
{
	int rc;

	if (member)
		return 1; /* members are never banned */
	if (kind == ROOM_DM || kind == ROOM_PRIVATE) {
		rc = member_get(srv->db, room_id, user_id, NULL);
		return rc < 0 ? -1 : rc == 0;
	}
	rc = ban_get(srv->db, room_id, user_id);
	return rc < 0 ? -1 : rc == 1;
}

/* history: a page of a room's messages, encoded straight into the
 * reply buffer. */
void
chat_message_history(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;
	int64_t before, after, limit, around;
	struct jsonw *w;
	int kind, rc;

	if ((kind = chat_room_name(s, req, ref, name)) < 0)
		return;
	if (chat_opt_uint(req, "before", &before) != 0 ||
	    chat_opt_uint(req, "after", &after) != 0 ||
	    chat_opt_uint(req, "limit", &limit) != 0 ||
	    chat_opt_uint(req, "around", &around) != 0 ||
	    !chat_message_page_ok(before, after, limit) ||
	    (around >= 0 && (before >= 0 || after >= 0))) {
		chat_send_error(s, ref, "bad_request", CHAT_PAGE_RULES);
		return;
	}
	chat_flush(srv);
	if ((room = chat_room_find(s, ref, name)) == NULL)
		return;
	if (chat_message_readable(srv, room->id, room->kind, s->user->id,
		hub_sub_find(s, room) != NULL) != 1) {
		chat_send_error(s, ref, "forbidden",
		    "a private room, someone else's direct messages, or banned");
		return;
	}
	/* Encoded straight into the reply buffer, behind room for the
	 * frame header: no JSON tree, no copy. */
	w = chat_out(srv);
	jsonw_object_open(w);
	JSONW_KEY(w, "type");
	jsonw_string(w, "history");
	JSONW_KEY(w, "room");
	jsonw_string(w, room->name);
	rc = around >= 0 ? chat_message_around(srv, room->id, around, limit, w)
			 : chat_message_page(srv, room->id, before, after, limit, w);
	if (rc != 0) {
		chat_out_send(NULL, w);
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (ref != NULL)
		chat_ref_write(w, ref);
	jsonw_object_close(w);
	chat_out_send(s, w);
}
