/* chatd/chat_mention.c — the mentions of a sent or edited text, resolved
 * against the room's members (PROTOCOL.md "Mentions"), in the shape
 * storage keeps them. */
#include <stdlib.h>
#include <string.h>

#include "chatd/chat_int.h"
#include "chatd/mention.h"
#include "chatd/server.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

/* What mention_parse asks: is name a member of the room? */
struct chat_member_q {
	struct db *db;
	int64_t room_id;
};

/* mention_member_fn over storage's mention_member. */
static int
chat_mention_member(void *arg, const char *name, int64_t *id)
{
	struct chat_member_q *q = arg;
	int rc = mention_member(q->db, q->room_id, name, id);

	return rc == 0 ? 1 : rc == 1 ? 0 : -1;
}

int
chat_mentions_find(struct server *srv, int64_t room_id, struct message *m,
                   struct chat_mentions *cm)
{
	struct chat_member_q q = {srv->db, room_id};
	struct mention_list l;
	size_t len = 0;

	memset(cm, 0, sizeof *cm);
	if (mention_parse(m->text, m->text_len, chat_mention_member, &q, &l) !=
	    0) {
		mention_list_free(&l);
		return -1;
	}
	if (l.n > 0) {
		cm->names = xmalloc(l.n * (MENTION_NAME_MAX + 1));
		cm->ids = xmalloc(l.n * sizeof *cm->ids);
		for (size_t i = 0; i < l.n; i++) {
			size_t n = strlen(l.v[i].name);

			if (i > 0)
				cm->names[len++] = ' ';
			memcpy(cm->names + len, l.v[i].name, n);
			len += n;
			cm->ids[i] = l.v[i].id;
		}
		cm->names[len] = '\0';
	}
	m->mentions = cm->names;
	m->mentions_len = len;
	m->mention_room = l.room;
	m->mention_ids = cm->ids;
	m->nmention_ids = l.n;
	mention_list_free(&l);
	return 0;
}

void
chat_mentions_free(struct chat_mentions *cm)
{
	free(cm->names);
	free(cm->ids);
	memset(cm, 0, sizeof *cm);
}
