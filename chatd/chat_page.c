/* chatd/chat_page.c — pages of a room's history (PROTOCOL.md "Paging"
 * and around=ID) written with jsonw, for the WebSocket history request
 * and GET /api/rooms/{room}/messages. */
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
