/* chatd/chat_state.c — room states (PROTOCOL.md "hello"): the one
 * writer of the per-room objects of hello and GET /api/me, from one
 * query over the user's memberships (maintained unread and mention
 * counters, no scan of history), caching each room in the hub from the
 * same row. */
#include <stdlib.h>
#include <string.h>

#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/hub.h"
#include "chatd/jsonw.h"
#include "chatd/server.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

/* What chat_room_states collects. */
struct chat_states {
	struct hub *hub; /* NULL: JSON only */
	struct jsonw *w;
	struct hub_room **rooms; /* with hub: the rooms, cached in it */
	size_t n, cap;
};

/* The names of enum room_notify. */
static const char *const chat_levels[] = {"all", "mentions", "none"};

/* member_rooms callback: one room state written into the array (role
 * absent in DM rooms), and the room cached in the hub from the same row
 * (no second query). The one writer of room states: hello and /api/me. */
static int
chat_room_state_cb(void *arg, const struct room_state *st)
{
	struct chat_states *c = arg;
	int64_t last = st->room.last_seq;

	if (c->hub != NULL) {
		struct hub_room *room = hub_room_cache(c->hub, &st->room);

		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 16;
			c->rooms =
			    xrealloc(c->rooms, c->cap * sizeof *c->rooms);
		}
		c->rooms[c->n++] = room;
		last = room->last_seq;
	}
	jsonw_object_open(c->w);
	JSONW_KEY(c->w, "name");
	jsonw_string(c->w, st->room.name);
	JSONW_KEY(c->w, "kind");
	jsonw_string(c->w, chat_kind_name(st->room.kind));
	JSONW_KEY(c->w, "last_seq");
	jsonw_int(c->w, last);
	JSONW_KEY(c->w, "read_seq");
	jsonw_int(c->w, st->read_seq);
	JSONW_KEY(c->w, "unread");
	jsonw_int(c->w, st->unread);
	JSONW_KEY(c->w, "mentions");
	jsonw_int(c->w, st->mentions);
	JSONW_KEY(c->w, "topic");
	jsonw_string(c->w, st->room.topic);
	if (st->room.kind != ROOM_DM) {
		JSONW_KEY(c->w, "role");
		jsonw_string(c->w, chat_role_name(st->role));
	}
	JSONW_KEY(c->w, "notify");
	jsonw_string(
	    c->w,
	    chat_levels[st->notify >= 0 && st->notify <= 2 ? st->notify : 0]);
	jsonw_object_close(c->w);
	return 0;
}

int
chat_room_states_cached(struct server *srv, int64_t user_id, struct jsonw *w,
                        struct hub_room ***rooms, size_t *n)
{
	struct chat_states c = {0};

	c.hub = rooms != NULL ? srv->chat->hub : NULL;
	c.w = w;
	jsonw_array_open(w);
	if (member_rooms(srv->db, user_id, chat_room_state_cb, &c) != 0) {
		free(c.rooms);
		return -1;
	}
	jsonw_array_close(w);
	if (rooms != NULL) {
		*rooms = c.rooms;
		*n = c.n;
	}
	return 0;
}

int
chat_room_states(struct server *srv, int64_t user_id, struct jsonw *w)
{
	return chat_room_states_cached(srv, user_id, w, NULL, NULL);
}
