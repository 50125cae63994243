/* chatd/chat.c — the chat protocol over WebSocket (PROTOCOL.md) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/conn.h"
#include "chatd/hub.h"
#include "chatd/jsonw.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/utf8.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

#define CHAT_MAX_TEXT 4000   /* code points */
#define CHAT_MAX_REF 64      /* characters of ref and client_msg_id */
#define CHAT_RESYNC_MAX 1000 /* changes replayed before "truncated" */
#define CHAT_INDEX_DELAY_MS 200 /* search indexing lags commits by this */
#define CHAT_INDEX_CHUNK 500    /* messages indexed per loop pass */
#define CHAT_BATCH_MAX 1000     /* changes per group commit, at most */
#define CHAT_OUT_KEEP (256u * 1024) /* reply buffer kept between replies */

/* What to do once the group commit holding a request is durable. */
enum action_type {
	ACT_SEND,   /* deliver a new message */
	ACT_CHANGE, /* deliver an edit or delete */
	ACT_REPLY,  /* only reply (idempotent resend) */
	ACT_JOIN,
	ACT_LEAVE,
	ACT_DM,
	ACT_READ,
};

struct action {
	enum action_type type;
	struct session *sess; /* the requester; NULL once it is gone */
	json_t *ref;
	struct hub_room *room;
	int64_t seq;
	json_t *event;        /* ACT_READ: the event everyone gets */
	struct message *msg;  /* ACT_SEND/CHANGE/REPLY: the message, */
	const char *evtype;   /* sent as this event ("message", "edited"...) */
	int64_t user_id;      /* the requester's user, who may go offline */
	char username[USERNAME_MAX + 1];
	int64_t other_id;     /* ACT_DM: the other user */
	int fresh;            /* joined anew / read position moved */
	TAILQ_ENTRY(action) link;
};
TAILQ_HEAD(action_list, action);

struct chat {
	struct hub *hub;
	int64_t next_seq;     /* the seq the next stored change takes */
	int txn;              /* a group-commit transaction is open */
	struct action_list actions;
	unsigned nactions;
	int64_t data_version;   /* of the database at the last check */
	struct timeval dv_checked; /* the loop pass (cached time) of it */
	struct event *commit_ev;
	struct event *index_ev; /* search indexing, after commits */
	struct jsonw out;       /* replies are encoded here, then sent */
};

/* A request handler: validated fields are read from req. */
typedef void (*chat_handler)(struct session *s, json_t *req, json_t *ref);

static void chat_send_error(struct session *s, json_t *ref, const char *code,
    const char *message);

/* Milliseconds now (shared clock with the server). */
static int64_t
chat_now(void)
{
	return now_ms();
}

/* Sends obj (plus ref when not NULL) to one session; takes obj. */
static void
chat_reply(struct session *s, json_t *obj, json_t *ref)
{
	char *text;

	if (s == NULL) {
		json_decref(obj);
		return;
	}
	if (ref != NULL)
		json_object_set(obj, "ref", ref);
	text = json_dumps(obj, JSON_COMPACT);
	conn_ws_send(s->conn, text, strlen(text));
	free(text);
	json_decref(obj);
}

/* Encodes obj once as a shared frame; takes obj. */
static struct frame *
chat_frame(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	struct frame *f = frame_new(text, strlen(text));

	free(text);
	json_decref(obj);
	return f;
}

static void
chat_send_error(struct session *s, json_t *ref, const char *code,
    const char *message)
{
	chat_reply(s,
	    json_pack("{s:s,s:s,s:s}", "type", "error", "code", code,
		"message", message),
	    ref);
}

json_t *
chat_message_json(const struct message *m)
{
	json_t *o = json_pack("{s:I,s:I,s:s,s:s}", "id", (json_int_t)m->id,
	    "seq", (json_int_t)m->seq, "room", m->room, "user", m->username);

	if (m->deleted) {
		json_object_set_new(o, "ts", json_integer(m->ts));
		json_object_set_new(o, "deleted", json_true());
		return o;
	}
	json_object_set_new(o, "text",
	    json_stringn(m->text ? m->text : "", m->text_len));
	json_object_set_new(o, "ts", json_integer(m->ts));
	if (m->edited_ts > 0)
		json_object_set_new(o, "edited_ts", json_integer(m->edited_ts));
	return o;
}

/* The members of a message object, in chat_message_json's order. */
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
}

void
chat_message_write(struct jsonw *w, const struct message *m)
{
	jsonw_object_open(w);
	chat_message_members(w, m);
	jsonw_object_close(w);
}

/* Writes a request's ref as the "ref" member. chat_ref admits only
 * strings; anything else is dumped by jansson, so it is echoed all the
 * same. */
static void
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

int
chat_message_cb(void *w, const struct message *m)
{
	chat_message_write(w, m);
	return 0;
}

int
chat_message_page_ok(int64_t before, int64_t after, int64_t limit)
{
	return !(before >= 0 && after >= 0) && limit != 0 && limit <= 100;
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
		limit < 0 ? 50 : (int)limit, chat_message_cb, w, &more) != 0)
		return -1;
	jsonw_array_close(w);
	JSONW_KEY(w, "has_more");
	jsonw_bool(w, more);
	return 0;
}

/* The reply buffer, empty. */
static struct jsonw *
chat_out(struct server *srv)
{
	struct jsonw *w = &srv->chat->out;

	jsonw_reset(w);
	return w;
}

/* Sends what the reply buffer holds to one session (none: discards it),
 * and lets a buffer that a big reply grew go. */
static void
chat_out_send(struct session *s, struct jsonw *w)
{
	if (s != NULL)
		conn_ws_send_jsonw(s->conn, w);
	jsonw_reset(w);
	if (w->cap > CHAT_OUT_KEEP)
		jsonw_free(w);
}

/* Sends a message event (with ref) to one session. */
static void
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

/* A message event as a shared frame, encoded once for every recipient. */
static struct frame *
chat_event_frame(const char *type, const struct message *m)
{
	struct jsonw w;

	jsonw_init(&w, CONN_JSONW_HEAD);
	chat_event_write(&w, type, m, NULL);
	return frame_from_jsonw(&w);
}

/* message_cb that keeps a copy of the message (arg: struct message **). */
static int
chat_capture_message(void *arg, const struct message *m)
{
	struct message **out = arg;

	message_free(*out);
	*out = message_copy(m);
	return 0;
}

/* Opens the group-commit transaction if needed; the commit runs once the
 * loop has handled everything that arrived in this pass. 0 or -1. */
static int
chat_txn(struct chat *ch, struct server *srv)
{
	if (ch->txn)
		return 0;
	if (db_begin(srv->db) != 0)
		return -1;
	ch->txn = 1;
	metrics_txn_begin(&srv->m);
	event_active(ch->commit_ev, EV_TIMEOUT, 0);
	return 0;
}

/* Queues what happens after the commit. Takes event (may be NULL). */
static struct action *
chat_action(struct chat *ch, enum action_type type, struct session *s,
    json_t *ref, struct hub_room *room, json_t *event)
{
	struct action *a = xcalloc(1, sizeof *a);

	a->type = type;
	a->sess = s;
	a->ref = ref ? json_incref(ref) : NULL;
	a->room = room;
	a->event = event;
	a->user_id = s->user->id;
	snprintf(a->username, sizeof a->username, "%s", s->user->username);
	s->pending++;
	ch->nactions++;
	TAILQ_INSERT_TAIL(&ch->actions, a, link);
	return a;
}

/* Subscribes every session of user u to room from its last_seq on. */
static void
chat_subscribe_user(struct hub_user *u, struct hub_room *room)
{
	struct session *s;

	if (u == NULL)
		return;
	LIST_FOREACH(s, &u->sessions, user_link)
		hub_subscribe(s, room, room->last_seq);
}

/* The usernames of a room's members, as a JSON array. */
static int
chat_member_name(void *arg, int64_t user_id, const char *username)
{
	(void)user_id;
	json_array_append_new(arg, json_string(username));
	return 0;
}

/* The "joined" reply for room. */
static json_t *
chat_joined(struct server *srv, struct hub_room *room)
{
	json_t *members = json_array();

	member_list(srv->db, room->id, chat_member_name, members);
	return json_pack("{s:s,s:s,s:s,s:o,s:I}", "type", "joined", "room",
	    room->name, "kind", room->kind == ROOM_DM ? "dm" : "public",
	    "members", members, "last_seq", (json_int_t)room->last_seq);
}

/* {"type":"room","room","kind"} for a user's other connections. */
static struct frame *
chat_room_event(struct hub_room *room)
{
	return chat_frame(json_pack("{s:s,s:s,s:s}", "type", "room", "room",
	    room->name, "kind", room->kind == ROOM_DM ? "dm" : "public"));
}

/* Carries out one committed action: in-memory state, replies, fan-out. */
static void
chat_action_run(struct server *srv, struct action *a)
{
	struct chat *ch = srv->chat;
	/* The requesting connection may be gone; its user's others not. */
	struct hub_user *u = hub_user_find(ch->hub, a->user_id);
	struct frame *f;
	unsigned n;

	switch (a->type) {
	case ACT_SEND:
	case ACT_CHANGE:
		if (a->seq > a->room->last_seq)
			a->room->last_seq = a->seq;
		f = chat_event_frame(a->evtype, a->msg);
		n = hub_deliver(a->room, a->seq, f, a->sess);
		metrics_delivered(&srv->m);
		frame_unref(f);
		srv->m.deliveries += n + (a->sess != NULL);
		if (a->type == ACT_SEND)
			srv->m.messages_stored++;
		chat_event_reply(srv, a->sess, a->evtype, a->msg, a->ref);
		break;
	case ACT_REPLY:
		chat_event_reply(srv, a->sess, a->evtype, a->msg, a->ref);
		break;
	case ACT_JOIN:
		chat_subscribe_user(u, a->room);
		chat_reply(a->sess, chat_joined(srv, a->room), a->ref);
		if (!a->fresh)
			break;
		if (u != NULL) {
			f = chat_room_event(a->room);
			hub_user_send(u, f, a->sess);
			frame_unref(f);
		}
		f = chat_frame(json_pack("{s:s,s:s,s:s,s:s}", "type", "member",
		    "room", a->room->name, "user", a->username, "event",
		    "join"));
		hub_broadcast(a->room, f, u, NULL);
		frame_unref(f);
		break;
	case ACT_LEAVE:
		if (u != NULL) {
			struct session *s;

			LIST_FOREACH(s, &u->sessions, user_link)
				hub_unsubscribe(s, a->room);
		}
		f = chat_frame(json_pack("{s:s,s:s}", "type", "left", "room",
		    a->room->name));
		if (u != NULL)
			hub_user_send(u, f, a->sess);
		frame_unref(f);
		chat_reply(a->sess, json_pack("{s:s,s:s}", "type", "left",
		    "room", a->room->name), a->ref);
		f = chat_frame(json_pack("{s:s,s:s,s:s,s:s}", "type", "member",
		    "room", a->room->name, "user", a->username, "event",
		    "leave"));
		hub_broadcast(a->room, f, u, NULL);
		frame_unref(f);
		break;
	case ACT_DM: {
		struct hub_user *other = hub_user_find(ch->hub, a->other_id);

		chat_subscribe_user(u, a->room);
		if (other != u)
			chat_subscribe_user(other, a->room);
		chat_reply(a->sess, chat_joined(srv, a->room), a->ref);
		if (!a->fresh)
			break;
		f = chat_room_event(a->room);
		if (u != NULL)
			hub_user_send(u, f, a->sess);
		if (other != NULL && other != u)
			hub_user_send(other, f, NULL);
		frame_unref(f);
		break;
	}
	case ACT_READ:
		if (a->fresh) {
			f = chat_frame(json_incref(a->event));
			hub_broadcast(a->room, f, NULL, a->sess);
			frame_unref(f);
		}
		chat_reply(a->sess, json_incref(a->event), a->ref);
		break;
	}
}

/* Frees an action and releases its session. */
static void
chat_action_free(struct action *a)
{
	if (a->sess != NULL)
		a->sess->pending--;
	json_decref(a->ref);
	json_decref(a->event);
	message_free(a->msg);
	free(a);
}

void
chat_flush(struct server *srv)
{
	struct chat *ch = srv->chat;
	struct action *a;
	int ok;

	if (ch == NULL || !ch->txn)
		return;
	ch->txn = 0;
	ch->nactions = 0;
	ok = db_commit(srv->db) == 0;
	metrics_txn_end(&srv->m);
	srv->m.commits++;
	if (!ok) {
		log_error("%s: commit failed: rolling back the batch", __func__);
		db_rollback(srv->db);
	}
	if (ok && !evtimer_pending(ch->index_ev, NULL)) {
		struct timeval tv = {0, CHAT_INDEX_DELAY_MS * 1000};

		evtimer_add(ch->index_ev, &tv);
	}
	while ((a = TAILQ_FIRST(&ch->actions)) != NULL) {
		TAILQ_REMOVE(&ch->actions, a, link);
		if (ok) {
			chat_action_run(srv, a);
		} else {
			if (a->room != NULL)
				a->room->pending_seq = a->room->last_seq;
			chat_send_error(a->sess, a->ref, "internal",
			    "the change could not be stored");
		}
		chat_action_free(a);
	}
}

int64_t
chat_index(struct server *srv, int64_t max)
{
	int64_t n;

	chat_flush(srv);
	if (db_begin(srv->db) != 0)
		return -1;
	n = message_index_pending(srv->db, max);
	if (n < 0 || db_commit(srv->db) != 0) {
		db_rollback(srv->db);
		return -1;
	}
	return n;
}

/* Indexes what recent commits stored, a chunk per loop pass. */
static void
chat_index_cb(int fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval soon = {0, 1000}; /* let the loop serve in between */

	(void)fd;
	(void)what;
	if (chat_index(srv, CHAT_INDEX_CHUNK) == CHAT_INDEX_CHUNK)
		evtimer_add(srv->chat->index_ev, &soon);
}

/* The commit event: the end of a loop pass. */
static void
chat_commit_cb(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	chat_flush(arg);
}

/* A string field, or NULL if absent or not a string. */
static const char *
chat_str(json_t *req, const char *key)
{
	return json_string_value(json_object_get(req, key));
}

/* Reads and folds the "room" field into name; replies with the error and
 * returns -1, else the room kind. */
static int
chat_room_name(struct session *s, json_t *req, json_t *ref,
    char name[ROOMNAME_MAX + 1])
{
	json_t *v = json_object_get(req, "room");
	int kind;

	if (!json_is_string(v)) {
		chat_send_error(s, ref, "bad_request", "room must be a string");
		return -1;
	}
	if (json_string_length(v) > ROOMNAME_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		chat_send_error(s, ref, "invalid_room", "invalid room name");
		return -1;
	}
	strcpy(name, json_string_value(v));
	if ((kind = auth_room_fold(name)) < 0) {
		chat_send_error(s, ref, "invalid_room", "invalid room name");
		return -1;
	}
	return kind;
}

/* The named room, or NULL after replying no_such_room / internal. */
static struct hub_room *
chat_room_find(struct session *s, json_t *ref, const char *name)
{
	struct server *srv = s->conn->srv;
	struct hub_room *room;
	int err;

	room = hub_room_get(srv->chat->hub, srv->db, name, &err);
	if (room == NULL)
		chat_send_error(s, ref, err ? "internal" : "no_such_room",
		    err ? "database error" : "no such room");
	return room;
}

/* The room of a request the user must be a member of, or NULL after
 * replying (invalid_room, no_such_room, not_member). */
static struct hub_room *
chat_member_room(struct session *s, json_t *req, json_t *ref)
{
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;

	if (chat_room_name(s, req, ref, name) < 0)
		return NULL;
	if ((room = chat_room_find(s, ref, name)) == NULL)
		return NULL;
	if (hub_sub_find(s, room) == NULL) {
		chat_send_error(s, ref, "not_member", "not a member of the room");
		return NULL;
	}
	return room;
}

/* Checks message text: 0, or -1 after replying bad_request/empty/too_long. */
static int
chat_text_ok(struct session *s, json_t *ref, json_t *v)
{
	const char *t = json_string_value(v);
	size_t len = json_string_length(v), i;

	if (t == NULL) {
		chat_send_error(s, ref, "bad_request", "text must be a string");
		return -1;
	}
	for (i = 0; i < len && isspace((unsigned char)t[i]); i++)
		;
	if (i == len) {
		chat_send_error(s, ref, "empty", "the message is empty");
		return -1;
	}
	if (utf8_codepoints((const uint8_t *)t, len) > CHAT_MAX_TEXT) {
		chat_send_error(s, ref, "too_long",
		    "the message is over 4000 characters");
		return -1;
	}
	return 0;
}

/* Allocates the next seq, opening the transaction. -1 after replying. */
static int64_t
chat_next_seq(struct session *s, json_t *ref)
{
	struct server *srv = s->conn->srv;

	if (chat_txn(srv->chat, srv) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	return srv->chat->next_seq++;
}

static void
chat_join(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;
	struct room r;
	int kind, err, rc;

	if ((kind = chat_room_name(s, req, ref, name)) < 0)
		return;
	room = hub_room_get(ch->hub, srv->db, name, &err);
	if (err) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (kind == ROOM_DM) {
		if (room == NULL || member_get(srv->db, room->id,
					s->user->id, NULL) != 0) {
			chat_send_error(s, ref, "forbidden",
			    "direct-message rooms are joined with dm");
			return;
		}
		chat_action(ch, ACT_JOIN, s, ref, room, NULL);
		chat_txn(ch, srv);
		return;
	}
	if (chat_txn(ch, srv) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (room == NULL) {
		if (room_create(srv->db, name, ROOM_PUBLIC, chat_now(), &r) < 0) {
			chat_send_error(s, ref, "internal", "database error");
			return;
		}
		room = hub_room_add(ch->hub, &r);
	}
	rc = member_add(srv->db, room->id, s->user->id, room->pending_seq,
	    chat_now());
	if (rc < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_action(ch, ACT_JOIN, s, ref, room, NULL)->fresh = rc == 0;
}

static void
chat_leave(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;
	int kind, rc;

	if ((kind = chat_room_name(s, req, ref, name)) < 0)
		return;
	if ((room = chat_room_find(s, ref, name)) == NULL)
		return;
	if (kind == ROOM_DM) {
		chat_send_error(s, ref, "forbidden",
		    "direct-message rooms can't be left");
		return;
	}
	if (chat_txn(srv->chat, srv) != 0 ||
	    (rc = member_remove(srv->db, room->id, s->user->id)) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (rc == 1) {
		chat_send_error(s, ref, "not_member", "not a member of the room");
		return;
	}
	chat_action(srv->chat, ACT_LEAVE, s, ref, room, NULL);
}

static void
chat_dm(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	char other[64], name[ROOMNAME_MAX + 1];
	const char *a, *b;
	struct hub_room *room;
	struct user peer;
	struct room r;
	struct action *act;
	int err, rc;

	if (chat_str(req, "user") == NULL) {
		chat_send_error(s, ref, "bad_request", "user must be a string");
		return;
	}
	snprintf(other, sizeof other, "%s", chat_str(req, "user"));
	if (strlen(chat_str(req, "user")) > USERNAME_MAX ||
	    strlen(chat_str(req, "user")) !=
		json_string_length(json_object_get(req, "user")) ||
	    auth_username_fold(other) != 0 ||
	    (rc = user_by_name(srv->db, other, &peer, NULL, 0)) == 1) {
		chat_send_error(s, ref, "not_found", "no such user");
		return;
	}
	if (rc < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	a = s->user->username;
	b = peer.username;
	if (strcmp(a, b) > 0) {
		const char *t = a;

		a = b;
		b = t;
	}
	snprintf(name, sizeof name, "dm:%s:%s", a, b);
	room = hub_room_get(ch->hub, srv->db, name, &err);
	if (err || chat_txn(ch, srv) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (room == NULL) {
		if (room_create(srv->db, name, ROOM_DM, chat_now(), &r) < 0 ||
		    member_add(srv->db, r.id, s->user->id, 0, chat_now()) < 0 ||
		    member_add(srv->db, r.id, peer.id, 0, chat_now()) < 0) {
			chat_send_error(s, ref, "internal", "database error");
			return;
		}
		room = hub_room_add(ch->hub, &r);
		act = chat_action(ch, ACT_DM, s, ref, room, NULL);
		act->fresh = 1;
	} else {
		act = chat_action(ch, ACT_DM, s, ref, room, NULL);
	}
	act->other_id = peer.id;
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

static void
chat_send(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	json_t *text = json_object_get(req, "text");
	const char *cmid;
	struct hub_room *room;
	struct message m, *prev = NULL;
	struct action *a;
	int rc;

	if ((room = chat_member_room(s, req, ref)) == NULL ||
	    chat_text_ok(s, ref, text) != 0 ||
	    chat_client_id(s, req, ref, &cmid) < 0)
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
	memset(&m, 0, sizeof m);
	m.id = m.seq = chat_next_seq(s, ref);
	m.room_id = room->id;
	m.user_id = s->user->id;
	snprintf(m.room, sizeof m.room, "%s", room->name);
	snprintf(m.username, sizeof m.username, "%s", s->user->username);
	m.text = json_string_value(text);
	m.text_len = json_string_length(text);
	m.ts = chat_now();
	if (message_insert(srv->db, &m, cmid) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	room->pending_seq = m.seq;
	a = chat_action(ch, ACT_SEND, s, ref, room, NULL);
	a->seq = m.seq;
	a->msg = message_copy(&m);
	a->evtype = "message";
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

/* Shared checks of edit and delete; the message id, or -1 after
 * replying. */
static int64_t
chat_own_message(struct session *s, json_t *req, json_t *ref,
    struct hub_room **roomp)
{
	struct server *srv = s->conn->srv;
	json_t *idv = json_object_get(req, "id");
	struct chat_target t = {0};
	struct hub_room *room;

	if (!json_is_integer(idv)) {
		chat_send_error(s, ref, "bad_request", "id must be an integer");
		return -1;
	}
	if ((room = chat_member_room(s, req, ref)) == NULL)
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
	if (t.user_id != s->user->id) {
		chat_send_error(s, ref, "forbidden",
		    "only the author may change a message");
		return -1;
	}
	*roomp = room;
	return json_integer_value(idv);
}

/* Queues the event of a stored edit or delete of message id. */
static void
chat_changed(struct session *s, json_t *ref, struct hub_room *room,
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
	a->msg = m;
	a->evtype = type;
}

static void
chat_edit(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	json_t *text = json_object_get(req, "text");
	struct hub_room *room;
	int64_t id, seq;

	if (chat_text_ok(s, ref, text) != 0 ||
	    (id = chat_own_message(s, req, ref, &room)) < 0)
		return;
	seq = chat_next_seq(s, ref);
	if (message_edit(srv->db, id, json_string_value(text),
		json_string_length(text), seq, chat_now()) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_changed(s, ref, room, id, seq, "edited");
}

static void
chat_delete(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct hub_room *room;
	int64_t id, seq;

	if ((id = chat_own_message(s, req, ref, &room)) < 0)
		return;
	seq = chat_next_seq(s, ref);
	if (message_delete(srv->db, id, seq) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_changed(s, ref, room, id, seq, "deleted");
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

static void
chat_history(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;
	int64_t before, after, limit;
	struct jsonw *w;
	int kind;

	if ((kind = chat_room_name(s, req, ref, name)) < 0)
		return;
	if (chat_opt_uint(req, "before", &before) != 0 ||
	    chat_opt_uint(req, "after", &after) != 0 ||
	    chat_opt_uint(req, "limit", &limit) != 0 ||
	    !chat_message_page_ok(before, after, limit)) {
		chat_send_error(s, ref, "bad_request", CHAT_PAGE_RULES);
		return;
	}
	chat_flush(srv);
	if ((room = chat_room_find(s, ref, name)) == NULL)
		return;
	if (kind == ROOM_DM && hub_sub_find(s, room) == NULL &&
	    member_get(srv->db, room->id, s->user->id, NULL) != 0) {
		chat_send_error(s, ref, "forbidden", "not your direct messages");
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
	if (chat_message_page(srv, room->id, before, after, limit, w) != 0) {
		chat_out_send(NULL, w);
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (ref != NULL)
		chat_ref_write(w, ref);
	jsonw_object_close(w);
	chat_out_send(s, w);
}

static void
chat_read(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	json_t *seqv = json_object_get(req, "seq");
	struct hub_room *room;
	int64_t stored;
	int moved, rc;

	if (!json_is_integer(seqv) || json_integer_value(seqv) < 0) {
		chat_send_error(s, ref, "bad_request",
		    "seq must be a non-negative integer");
		return;
	}
	if ((room = chat_member_room(s, req, ref)) == NULL)
		return;
	if (chat_txn(srv->chat, srv) != 0 ||
	    (rc = member_set_read(srv->db, room->id, s->user->id,
		 json_integer_value(seqv), &stored, &moved)) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (rc == 1) {
		chat_send_error(s, ref, "not_member", "not a member of the room");
		return;
	}
	chat_action(srv->chat, ACT_READ, s, ref, room,
	    json_pack("{s:s,s:s,s:s,s:I}", "type", "read", "room", room->name,
		"user", s->user->username, "seq", (json_int_t)stored))
	    ->fresh = moved;
}

static void
chat_typing(struct session *s, json_t *req, json_t *ref)
{
	struct hub_room *room;
	struct frame *f;

	if ((room = chat_member_room(s, req, ref)) == NULL)
		return;
	f = chat_frame(json_pack("{s:s,s:s,s:s}", "type", "typing", "room",
	    room->name, "user", s->user->username));
	hub_broadcast(room, f, s->user, NULL);
	frame_unref(f);
}

static const struct {
	const char *type;
	chat_handler fn;
} chat_handlers[] = {
	{"join", chat_join},
	{"leave", chat_leave},
	{"dm", chat_dm},
	{"send", chat_send},
	{"edit", chat_edit},
	{"delete", chat_delete},
	{"history", chat_history},
	{"read", chat_read},
	{"typing", chat_typing},
};

/* member_rooms callback: one room state appended to a JSON array. */
static int
chat_room_state_cb(void *arg, const struct room_state *st)
{
	json_array_append_new(arg,
	    json_pack("{s:s,s:s,s:I,s:I,s:I}", "name", st->room.name, "kind",
		st->room.kind == ROOM_DM ? "dm" : "public", "last_seq",
		(json_int_t)st->room.last_seq, "read_seq",
		(json_int_t)st->read_seq, "unread", (json_int_t)st->unread));
	return 0;
}

json_t *
chat_room_states(struct server *srv, int64_t user_id)
{
	json_t *rooms = json_array();

	if (member_rooms(srv->db, user_id, chat_room_state_cb, rooms) != 0) {
		json_decref(rooms);
		return NULL;
	}
	return rooms;
}

/* The resync events of one room, encoded back to back. */
struct chat_replay {
	struct jsonw *w;
	int64_t since;
	size_t *ends; /* where each event's JSON ends in w */
	size_t n, max;
	int over;     /* more rows than max */
};

/* message_cb of the replay: one more event, or stop past max. */
static int
chat_replay_cb(void *arg, const struct message *m)
{
	struct chat_replay *r = arg;

	if (r->n == r->max) {
		r->over = 1;
		return 1;
	}
	chat_event_write(r->w, m->id > r->since ? "message" :
	    m->deleted ? "deleted" : "edited", m, NULL);
	r->ends[r->n++] = jsonw_len(r->w);
	return 0;
}

/* Replays what changed in a room after since (PROTOCOL.md Resync): all
 * the events, or on any failure none of them but truncated. */
static void
chat_replay(struct session *s, struct hub_room *room, int64_t since)
{
	struct server *srv = s->conn->srv;
	struct chat_replay r = {0};
	int64_t n;
	size_t i, start;

	n = since > room->last_seq ? CHAT_RESYNC_MAX + 1 :
	    message_count_changed(srv->db, room->id, since, CHAT_RESYNC_MAX);
	if (n > CHAT_RESYNC_MAX || n < 0) {
		chat_reply(s, json_pack("{s:s,s:s}", "type", "truncated",
		    "room", room->name), NULL);
		return;
	}
	r.w = chat_out(srv);
	r.since = since;
	r.max = (size_t)n;
	r.ends = xcalloc(r.max + 1, sizeof *r.ends);
	/* Nothing commits in between (one thread, flushed): the rows are
	 * the n just counted. More would be a bug; treat it as a failure. */
	if (message_changed(srv->db, room->id, since, chat_replay_cb, &r) != 0 ||
	    r.n != r.max || r.over) {
		free(r.ends);
		chat_out_send(NULL, r.w);
		chat_reply(s, json_pack("{s:s,s:s}", "type", "truncated",
		    "room", room->name), NULL);
		return;
	}
	/* The session is corked: these are copied into its output. */
	for (i = 0, start = 0; i < r.n; start = r.ends[i++])
		conn_ws_send(s->conn, jsonw_data(r.w) + start,
		    r.ends[i] - start);
	free(r.ends);
	chat_out_send(NULL, r.w);
}

/* Sends presence for u (online or offline) to the users sharing a room. */
static void
chat_presence(struct server *srv, struct hub_user *u, const char *status)
{
	struct frame *f = chat_frame(json_pack("{s:s,s:s,s:s}", "type",
	    "presence", "user", u->username, "status", status));

	hub_neighbours_send(srv->chat->hub, u, f);
	frame_unref(f);
}

/* Tells a fresh session who of its neighbours is online already. */
static void
chat_presence_snapshot(struct session *s)
{
	struct sub *sub, *other;
	json_t *seen = json_object();

	LIST_FOREACH(sub, &s->subs, sess_link)
		LIST_FOREACH(other, &sub->room->subs, room_link) {
			struct hub_user *u = other->sess->user;

			if (u == s->user || json_object_get(seen, u->username))
				continue;
			json_object_set_new(seen, u->username, json_true());
			chat_reply(s, json_pack("{s:s,s:s,s:s}", "type",
			    "presence", "user", u->username, "status",
			    "online"), NULL);
		}
	json_decref(seen);
}

/* Signs a session in: hello, subscriptions, resync, presence. */
static void
chat_authenticate(struct session *s, const struct user *u,
    const uint8_t hash[32], json_t *since, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	json_t *rooms, *hello, *v;
	const char *key;
	size_t i;
	int first;

	chat_flush(srv);
	if ((rooms = chat_room_states(srv, u->id)) == NULL) {
		chat_send_error(s, ref, "internal", "database error");
		conn_ws_close(s->conn, 1011, "database error");
		return;
	}
	memcpy(s->token_hash, hash, 32);
	s->conn->flags |= CONN_AUTHED;
	/* hello, the replay and the presence snapshot: one write. */
	conn_cork(s->conn, 1);
	first = hub_user_attach(ch->hub, s, u->id, u->username);
	for (i = 0; i < json_array_size(rooms); i++) {
		json_t *st = json_array_get(rooms, i);
		struct hub_room *room;
		int err;

		room = hub_room_get(ch->hub, srv->db,
		    json_string_value(json_object_get(st, "name")), &err);
		if (room == NULL)
			continue;
		hub_subscribe(s, room, room->last_seq);
		json_object_set_new(st, "last_seq",
		    json_integer(room->last_seq));
	}
	hello = json_pack("{s:s,s:{s:I,s:s},s:s,s:o,s:{s:i,s:i}}", "type",
	    "hello", "user", "id", (json_int_t)u->id, "username", u->username,
	    "epoch", db_epoch(srv->db), "rooms", rooms, "limits",
	    "max_text_chars", CHAT_MAX_TEXT, "max_message_bytes",
	    (int)WS_MAX_MESSAGE);
	chat_reply(s, hello, ref);
	json_object_foreach(since, key, v) {
		char name[ROOMNAME_MAX + 1];
		struct hub_room *room;
		int err;

		snprintf(name, sizeof name, "%s", key);
		if (strlen(key) > ROOMNAME_MAX || auth_room_fold(name) < 0)
			continue;
		room = hub_room_get(ch->hub, srv->db, name, &err);
		if (room != NULL && hub_sub_find(s, room) != NULL)
			chat_replay(s, room, json_integer_value(v));
	}
	chat_presence_snapshot(s);
	conn_cork(s->conn, 0);
	if (first)
		chat_presence(srv, s->user, "online");
}

void
chat_ws_authenticated(struct conn *c, const struct user *u,
    const uint8_t hash[32])
{
	chat_authenticate(c->app_data, u, hash, NULL, NULL);
}

/* Fails authentication: error unauthorized, close 1008. */
static void
chat_auth_fail(struct session *s, json_t *ref, const char *why)
{
	s->conn->srv->m.auth_failures++;
	log_info("%s: %s: %s", __func__, s->conn->addr, why);
	chat_send_error(s, ref, "unauthorized", why);
	conn_ws_close(s->conn, 1008, why);
}

/* 1 if since is absent or an object of room names to seqs >= 0. */
static int
chat_since_ok(json_t *since)
{
	const char *key;
	json_t *v;

	if (since == NULL)
		return 1;
	if (!json_is_object(since))
		return 0;
	json_object_foreach(since, key, v)
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return 0;
	return 1;
}

/* The first message of an unauthenticated connection. */
static void
chat_auth(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	const char *type = chat_str(req, "type"), *token = chat_str(req, "token");
	json_t *since = json_object_get(req, "since");
	uint8_t hash[32];
	struct user u;
	int rc;

	if (type == NULL || strcmp(type, "auth") != 0) {
		chat_auth_fail(s, ref, "the first message must be auth");
		return;
	}
	if (json_is_null(since))
		since = NULL;
	if (token == NULL || !chat_since_ok(since)) {
		chat_auth_fail(s, ref, "auth needs a token and a valid since");
		return;
	}
	chat_flush(srv);
	auth_token_hash(token, strlen(token), hash);
	rc = session_lookup(srv->db, hash, chat_now(), &u);
	if (rc != 0) {
		chat_auth_fail(s, ref, "invalid or expired token");
		return;
	}
	chat_authenticate(s, &u, hash, since, ref);
}

/* Reads "ref": 0 and *ref (borrowed, may be NULL), or -1 if invalid. */
static int
chat_ref(json_t *req, json_t **ref)
{
	json_t *v = json_object_get(req, "ref");

	*ref = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) ||
	    utf8_codepoints((const uint8_t *)json_string_value(v),
		json_string_length(v)) > CHAT_MAX_REF)
		return -1;
	*ref = v;
	return 0;
}

/* Closes the sessions of an online user whose account is gone. */
static void
chat_check_user(void *arg, struct hub_user *u)
{
	struct server *srv = arg;
	struct session *s, *next;
	struct user dummy;

	if (user_by_id(srv->db, u->id, &dummy) != 1)
		return;
	/* conn_ws_close only marks: the session list stays intact. */
	for (s = LIST_FIRST(&u->sessions); s != NULL; s = next) {
		next = LIST_NEXT(s, user_link);
		conn_ws_close(s->conn, 4001, "account deleted");
	}
}

/* Applies what another process (the admin CLI) committed since the last
 * request (checked once per loop pass): deleted rooms are forgotten,
 * deleted users' sockets closed.
 * One cheap PRAGMA when nothing changed. */
static void
chat_external_changes(struct server *srv)
{
	struct chat *ch = srv->chat;
	struct timeval now;
	int64_t v;

	/* Once per loop pass (libevent's cached time changes with each):
	 * the PRAGMA is a read transaction of its own. */
	event_base_gettimeofday_cached(srv->base, &now);
	if (timercmp(&now, &ch->dv_checked, ==))
		return;
	ch->dv_checked = now;
	v = db_data_version(srv->db);
	if (v == ch->data_version)
		return;
	ch->data_version = v;
	hub_rooms_check(ch->hub, srv->db);
	hub_user_each(ch->hub, chat_check_user, srv);
}

int
chat_ws_message(struct conn *c, int binary, uint8_t *data, size_t len)
{
	struct session *s = c->app_data;
	struct server *srv = c->srv;
	json_t *req, *ref;
	const char *type;
	json_error_t jerr;

	if (binary) {
		conn_ws_close(c, 1003, "binary messages are not supported");
		return 0;
	}
	chat_external_changes(srv);
	if (c->mode != CONN_MODE_WS)
		return 0; /* closed by it: the account is gone */
	req = json_loadb((const char *)data, len,
	    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &jerr);
	if (req != NULL && !json_is_object(req)) {
		json_decref(req);
		req = NULL;
	}
	if (!(c->flags & CONN_AUTHED)) {
		if (req == NULL) {
			chat_auth_fail(s, NULL, "the first message must be auth");
			return 0;
		}
		chat_ref(req, &ref);
		chat_auth(s, req, ref);
		json_decref(req);
		return 0;
	}
	if (req == NULL) {
		chat_send_error(s, NULL, "bad_request",
		    "a message must be a JSON object");
		return 0;
	}
	if (chat_ref(req, &ref) != 0) {
		chat_send_error(s, NULL, "bad_request",
		    "ref must be a string of at most 64 characters");
		json_decref(req);
		return 0;
	}
	if (srv->cfg->rate_limits &&
	    !bucket_take(&s->rate, srv->cfg->msg_rate, srv->cfg->msg_burst,
		chat_now())) {
		srv->m.rate_limited++;
		chat_send_error(s, ref, "rate_limited", "slow down");
		json_decref(req);
		return 0;
	}
	/* A pass that brings more than a batch commits early: memory and
	 * the wait for the first of them stay bounded under overload. */
	if (srv->chat->nactions >= CHAT_BATCH_MAX)
		chat_flush(srv);
	type = chat_str(req, "type");
	for (size_t i = 0; type != NULL &&
	     i < sizeof chat_handlers / sizeof chat_handlers[0]; i++)
		if (strcmp(type, chat_handlers[i].type) == 0) {
			chat_handlers[i].fn(s, req, ref);
			json_decref(req);
			return 0;
		}
	chat_send_error(s, ref, "bad_request",
	    type == NULL ? "type must be a string" : "unknown type");
	json_decref(req);
	return 0;
}

void
chat_ws_open(struct conn *c)
{
	struct session *s = xcalloc(1, sizeof *s);

	s->conn = c;
	LIST_INIT(&s->subs);
	c->app_data = s;
}

/* A connection is going away: presence, subscriptions, pending actions. */
void
chat_gone(struct conn *c)
{
	struct session *s = c->app_data;
	struct server *srv = c->srv;
	struct action *a;

	if (s == NULL)
		return;
	if (s->pending > 0)
		TAILQ_FOREACH(a, &srv->chat->actions, link)
			if (a->sess == s) {
				a->sess = NULL;
				s->pending--;
			}
	if (s->user != NULL && s->user->nsessions == 1)
		chat_presence(srv, s->user, "offline");
	hub_user_detach(srv->chat->hub, s);
	free(s);
	c->app_data = NULL;
}

void
chat_logout(struct server *srv, int64_t user_id, const uint8_t hash[32])
{
	struct hub_user *u = hub_user_find(srv->chat->hub, user_id);
	struct session *s, *next;

	if (u == NULL)
		return;
	for (s = LIST_FIRST(&u->sessions); s != NULL; s = next) {
		next = LIST_NEXT(s, user_link);
		if (memcmp(s->token_hash, hash, 32) == 0)
			conn_ws_close(s->conn, 4001, "logged out");
	}
}

int
chat_start(struct server *srv)
{
	struct chat *ch = xcalloc(1, sizeof *ch);

	ch->hub = hub_new();
	ch->next_seq = db_max_seq(srv->db) + 1;
	TAILQ_INIT(&ch->actions);
	ch->commit_ev = event_new(srv->base, -1, 0, chat_commit_cb, srv);
	ch->index_ev = evtimer_new(srv->base, chat_index_cb, srv);
	jsonw_init(&ch->out, CONN_JSONW_HEAD);
	srv->chat = ch;
	return 0;
}

void
chat_free(struct server *srv)
{
	struct chat *ch = srv->chat;

	if (ch == NULL)
		return;
	chat_flush(srv);
	event_free(ch->commit_ev);
	event_free(ch->index_ev);
	hub_free(ch->hub);
	jsonw_free(&ch->out);
	free(ch);
	srv->chat = NULL;
}
