/* chatd/chat_message.c — messages: send, edit and delete requests, and
 * what a committed message change delivers (edits, deletes and
 * reactions). The message and event JSON is chat_json.c's; history
 * pages are chat_page.c's. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/files.h"
#include "chatd/hub.h"
#include "chatd/jsonw.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/utf8.h"
#include "storage/storage.h"

/* Carries out a committed send, edit, delete or idempotent resend:
 * the event to the room (encoded once), the reply to the requester. */
void
chat_message_run(struct server *srv, struct action *a)
{
	struct frame *f;
	unsigned n;

	if (a->type == ACT_REPLY) {
		chat_event_reply(srv, a->sess, a->evtype, a->msg, a->ref);
		return;
	}
	if (a->seq > a->room->last_seq)
		a->room->last_seq = a->seq;
	f = chat_event_frame(a->evtype, a->msg);
	n = a->room->nsubs;
	chat_cluster_event(srv, a->room, a->prev_seq, a->seq, f, a->sess);
	metrics_delivered(&srv->m);
	frame_unref(f);
	srv->m.deliveries += n + (a->sess != NULL);
	if (a->type == ACT_SEND)
		srv->m.messages_stored++;
	chat_event_reply(srv, a->sess, a->evtype, a->msg, a->ref);
}

/* Checks message text: 0, or -1 after replying bad_request/empty/too_long.
 * With empty_ok (a message with files), blank text is allowed. */
static int
chat_text_check(struct session *s, json_t *ref, json_t *v, int empty_ok)
{
	const char *t = json_string_value(v);
	size_t len = json_string_length(v), i;

	if (t == NULL) {
		chat_send_error(s, ref, "bad_request", "text must be a string");
		return -1;
	}
	for (i = 0; i < len && isspace((unsigned char)t[i]); i++)
		;
	if (i == len && !empty_ok) {
		chat_send_error(s, ref, "empty", "the message is empty");
		return -1;
	}
	if (utf8_codepoints((const uint8_t *)t, len) > CHAT_MAX_TEXT) {
		chat_send_error(s, ref, "too_long",
		    "the message is over 4000 characters");
		return -1;
	}
	/* PostgreSQL's text cannot hold U+0000 (SQLite keeps it). */
	if (memchr(t, '\0', len) != NULL && db_is_postgres(s->conn->srv->db)) {
		chat_send_error(s, ref, "bad_request",
		    "text with U+0000 cannot be stored on this server");
		return -1;
	}
	return 0;
}

int
chat_seq_ok(struct session *s, json_t *ref)
{
	struct server *srv = s->conn->srv;

	if (srv->chat->next_seq > SEQ_MAX) {
		log_error("%s: seq %lld would pass %lld: change refused",
		          __func__, (long long)srv->chat->next_seq,
		          (long long)SEQ_MAX);
		chat_send_error(s, ref, "internal", "no more seqs");
		return -1;
	}
	return 0;
}

/* Checks message text (not empty): 0, or -1 after replying. */
static int
chat_text_ok(struct session *s, json_t *ref, json_t *v)
{
	return chat_text_check(s, ref, v, 0);
}

/* Reads "files": 0 (absent), n ids into ids (at most
 * FILES_MAX_PER_MESSAGE), or -1 after replying bad_request. */
static int
chat_files_arg(struct session *s, json_t *req, json_t *ref,
    const char *ids[FILES_MAX_PER_MESSAGE])
{
	json_t *v = json_object_get(req, "files"), *e;
	size_t i;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > FILES_MAX_PER_MESSAGE)
		goto bad;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			goto bad;
		ids[i] = json_string_value(e);
	}
	return (int)json_array_size(v);
bad:
	chat_send_error(s, ref, "bad_request",
	    "files must be an array of 1-10 file ids");
	return -1;
}

/* Allocates the next seq of a change of room, opening the transaction.
 * -1 after replying (also once the seqs are used up: SEQ_MAX, logged).
 * On PostgreSQL the seq comes from the database's sequence, taken under
 * the room's lock (chat_cluster_lock_room): a room's changes commit in
 * the order of their seqs whichever node stores them; room->seq_prev is
 * the room's seq before this one. */
int64_t
chat_next_seq(struct session *s, json_t *ref, struct hub_room *room)
{
	struct server *srv = s->conn->srv;
	int64_t seq;

	if (chat_seq_ok(s, ref) != 0)
		return -1;
	if (chat_txn(srv->chat, srv) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	if (!db_is_postgres(srv->db)) {
		room->seq_prev = room->pending_seq;
		return srv->chat->next_seq++;
	}
	if (chat_cluster_lock_room(srv, room) != 0 ||
	    (seq = db_seq_next(srv->db)) < 0) {
		/* chatd room del may have committed since the loop's last
		 * look at admin changes (every 500 ms on PostgreSQL). */
		if (hub_room_gone(srv->chat->hub, srv->db, room))
			chat_send_error(s, ref, "no_such_room", "no such room");
		else
			chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	room->seq_prev = room->lock_prev;
	room->lock_prev = seq;
	return seq;
}

/* Reads client_msg_id: 0 (absent), 1 (present), -1 after replying. */
static int
chat_client_id(struct session *s, json_t *req, json_t *ref, const char **out)
{
	json_t *v = json_object_get(req, "client_msg_id");

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    utf8_codepoints((const uint8_t *)json_string_value(v),
		json_string_length(v)) > CHAT_MAX_REF ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		chat_send_error(s, ref, "bad_request",
		    "client_msg_id must be a string of 1-64 characters");
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

/* Reads reply_to: 0 (absent, *id = 0) or 1, -1 after replying. */
static int
chat_reply_to(struct session *s, json_t *req, json_t *ref, int64_t *id)
{
	json_t *v = json_object_get(req, "reply_to");

	*id = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v)) {
		chat_send_error(s, ref, "bad_request",
		    "reply_to must be an integer");
		return -1;
	}
	*id = json_integer_value(v);
	return 1;
}

/* 0 if id is a live message of room, else -1 after replying not_found
 * (or internal). */
static int
chat_reply_target(struct session *s, json_t *ref, struct hub_room *room,
    int64_t id)
{
	struct message *m = NULL;
	int ok;

	if (id > 0 && message_get(s->conn->srv->db, id, chat_capture_message,
	    &m) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	ok = m != NULL && !m->deleted && m->room_id == room->id;
	message_free(m);
	if (!ok)
		chat_send_error(s, ref, "not_found",
		    "reply_to: no such message in the room");
	return ok ? 0 : -1;
}

/* send: a new message, or the stored one again for a resent
 * client_msg_id. */
void
chat_message_send(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	json_t *text = json_object_get(req, "text");
	const char *cmid;
	struct hub_room *room;
	struct message m, *prev = NULL;
	struct chat_mentions cm;
	struct action *a;
	const char *fids[FILES_MAX_PER_MESSAGE];
	char *fjson = NULL;
	int64_t reply_to;
	int nfiles, rc, is_reply;

	if ((room = chat_room_member(s, req, ref)) == NULL ||
	    (nfiles = chat_files_arg(s, req, ref, fids)) < 0 ||
	    chat_text_check(s, ref, text, nfiles > 0) != 0 ||
	    chat_client_id(s, req, ref, &cmid) < 0 ||
	    (is_reply = chat_reply_to(s, req, ref, &reply_to)) < 0)
		return;
	if (chat_txn(ch, srv) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (cmid != NULL) {
		rc = message_by_client_id(srv->db, s->user->id, cmid,
		    chat_capture_message, &prev);
		if (rc < 0) {
			message_free(prev);
			chat_send_error(s, ref, "internal", "database error");
			return;
		}
		if (rc == 0) {
			a = chat_action(ch, ACT_REPLY, s, ref, room, NULL);
			a->msg = prev;
			a->evtype = prev->deleted ? "deleted" : "message";
			return;
		}
	}
	/* After the resend check: a resend gets its message even if the
	 * one it answered is gone since. */
	if (is_reply && chat_reply_target(s, ref, room, reply_to) != 0)
		return; /* reply_to 0 or below names no message either */
	if (nfiles > 0) {
		rc = files_message_json(srv, fids, (size_t)nfiles, s->user->id,
		    room->id, &fjson);
		if (rc != 0) {
			chat_send_error(s, ref, rc > 0 ? "not_found" : "internal",
			    rc > 0 ? "files: no such file of yours in the room, "
				     "not yet sent" : "database error");
			return;
		}
	}
	memset(&m, 0, sizeof m);
	m.room_id = room->id;
	m.user_id = s->user->id;
	snprintf(m.room, sizeof m.room, "%s", room->name);
	snprintf(m.username, sizeof m.username, "%s", s->user->username);
	m.text = json_string_value(text);
	m.text_len = json_string_length(text);
	m.reply_to = reply_to;
	m.files = fjson;
	m.files_len = fjson ? strlen(fjson) : 0;
	m.file_ids = fids;
	m.nfile_ids = (size_t)nfiles;
	if (chat_mentions_find(srv, room->id, &m, &cm) != 0) {
		free(fjson);
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if ((m.id = m.seq = chat_next_seq(s, ref, room)) < 0) {
		free(fjson);
		chat_mentions_free(&cm);
		return;
	}
	m.ts = chat_now();
	rc = message_insert(srv->db, &m, cmid);
	if (rc != 0) {
		free(fjson);
		chat_mentions_free(&cm);
		/* chatd room del may commit between the loop pass's check
		 * (chat_external_changes) and this insert. */
		if (rc == 2)
			chat_send_error(s, ref, "not_found",
			    "files: a file is no longer free to attach");
		else if (hub_room_gone(ch->hub, srv->db, room))
			chat_send_error(s, ref, "no_such_room", "no such room");
		else
			chat_send_error(s, ref, "internal", "database error");
		return;
	}
	room->pending_seq = m.seq;
	a = chat_action(ch, ACT_SEND, s, ref, room, NULL);
	a->seq = m.seq;
	a->prev_seq = room->seq_prev;
	a->msg = message_copy(&m);
	a->evtype = "message";
	free(fjson);
	chat_mentions_free(&cm);
}

/* What an edit or delete needs to find: the author's live message. */
struct chat_target {
	int64_t room_id;
	int64_t user_id;
	int deleted;
	int found;
};

static int
chat_capture_target(void *arg, const struct message *m)
{
	struct chat_target *t = arg;

	t->room_id = m->room_id;
	t->user_id = m->user_id;
	t->deleted = m->deleted;
	t->found = 1;
	return 0;
}

/* Shared checks of edit and delete: the author's live message, or for
 * a delete (any set) anyone's when the sender's role allows it
 * (chat_role_may); *by gets the sender's id when not the author. The
 * message id, or -1 after replying. */
static int64_t
chat_own_message(struct session *s, json_t *req, json_t *ref,
    struct hub_room **roomp, int any, int64_t *by)
{
	struct server *srv = s->conn->srv;
	json_t *idv = json_object_get(req, "id");
	struct chat_target t = {0};
	struct hub_room *room;

	if (!json_is_integer(idv)) {
		chat_send_error(s, ref, "bad_request", "id must be an integer");
		return -1;
	}
	if ((room = chat_room_member(s, req, ref)) == NULL)
		return -1;
	if (chat_txn(srv->chat, srv) != 0 ||
	    message_get(srv->db, json_integer_value(idv), chat_capture_target,
		&t) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	if (!t.found || t.deleted || t.room_id != room->id) {
		chat_send_error(s, ref, "not_found", "no such message");
		return -1;
	}
	*by = 0;
	if (t.user_id != s->user->id) {
		if (!any || !chat_role_may(chat_role_of(srv, room,
						s->user->id),
				CHAT_DELETE_ANY, ROLE_MEMBER)) {
			chat_send_error(s, ref, "forbidden",
			    "only the author may change a message");
			return -1;
		}
		*by = s->user->id;
	}
	*roomp = room;
	return json_integer_value(idv);
}

/* Queues the event of a stored edit, delete or reaction of message id. */
void
chat_message_changed(struct session *s, json_t *ref, struct hub_room *room,
    int64_t id, int64_t seq, const char *type)
{
	struct server *srv = s->conn->srv;
	struct message *m = NULL;
	struct action *a;

	room->pending_seq = seq;
	message_get(srv->db, id, chat_capture_message, &m);
	if (m == NULL) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	a = chat_action(srv->chat, ACT_CHANGE, s, ref, room, NULL);
	a->seq = seq;
	a->prev_seq = room->seq_prev;
	a->msg = m;
	a->evtype = type;
}

/* edit: new text for the author's message. */
void
chat_message_edit(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	json_t *text = json_object_get(req, "text");
	struct hub_room *room;
	struct chat_mentions cm;
	struct message m;
	int64_t id, by;
	int rc;

	if (chat_text_ok(s, ref, text) != 0 ||
	    (id = chat_own_message(s, req, ref, &room, 0, &by)) < 0)
		return;
	memset(&m, 0, sizeof m);
	m.id = id;
	m.text = json_string_value(text);
	m.text_len = json_string_length(text);
	/* Mentions are found again in the new text. */
	if (chat_mentions_find(srv, room->id, &m, &cm) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if ((m.seq = chat_next_seq(s, ref, room)) < 0) {
		chat_mentions_free(&cm);
		return;
	}
	m.edited_ts = chat_now();
	rc = message_replace(srv->db, &m);
	chat_mentions_free(&cm);
	if (rc != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_message_changed(s, ref, room, m.id, m.seq, "edited");
}

/* delete: the author's message (or a moderator's pick) becomes a
 * tombstone. */
void
chat_message_delete(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct hub_room *room;
	int64_t id, seq, by;

	if ((id = chat_own_message(s, req, ref, &room, 1, &by)) < 0)
		return;
	if ((seq = chat_next_seq(s, ref, room)) < 0)
		return;
	/* Its files go with it; their bytes once the batch commits. */
	if (message_delete(srv->db, id, seq, by) != 0 ||
	    files_delete_message(srv, id) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_message_changed(s, ref, room, id, seq, "deleted");
}
