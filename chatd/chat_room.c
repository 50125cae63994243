/* chatd/chat_room.c — rooms and membership: the room of a request,
 * join, leave, dm, read positions, what a committed membership change
 * delivers, and a user's room states (hello, /api/me). */
#include <stdio.h>
#include <string.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/hub.h"
#include "chatd/server.h"
#include "storage/storage.h"

/* Reads and folds the "room" field into name; replies with the error and
 * returns -1, else the room kind. */
int
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
struct hub_room *
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
struct hub_room *
chat_room_member(struct session *s, json_t *req, json_t *ref)
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

/* Carries out a committed join, leave, dm or read: subscriptions, the
 * reply, the events to the user's other connections and the room. */
void
chat_room_run(struct server *srv, struct action *a)
{
	struct chat *ch = srv->chat;
	/* The requesting connection may be gone; its user's others not. */
	struct hub_user *u = hub_user_find(ch->hub, a->user_id);
	struct frame *f;

	switch (a->type) {
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
	default: /* chat_message_run's */
		break;
	}
}

/* join: a public room (created on first join), or a DM room again. */
void
chat_room_join(struct session *s, json_t *req, json_t *ref)
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

/* leave: a public room. */
void
chat_room_leave(struct session *s, json_t *req, json_t *ref)
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

/* dm: the direct-message room of two users, created on first use. */
void
chat_room_dm(struct session *s, json_t *req, json_t *ref)
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

/* read: moves the user's read position in a room. */
void
chat_room_read(struct session *s, json_t *req, json_t *ref)
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
	if ((room = chat_room_member(s, req, ref)) == NULL)
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

/* member_rooms callback: one room state appended to a JSON array. */
static int
chat_room_state_cb(void *arg, const struct room_state *st)
{
	json_array_append_new(arg,
	    json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "name", st->room.name,
		"kind", st->room.kind == ROOM_DM ? "dm" : "public", "last_seq",
		(json_int_t)st->room.last_seq, "read_seq",
		(json_int_t)st->read_seq, "unread", (json_int_t)st->unread,
		"mentions", (json_int_t)st->mentions));
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
