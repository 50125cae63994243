/* chatd/chat_room.c — rooms and membership: the room of a request,
 * join, leave, dm, read positions, and what a committed membership
 * change delivers (room states: chat_state.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/hub.h"
#include "chatd/limiter.h"
#include "chatd/server.h"
#include "chatd/xmalloc.h"
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
 * replying (invalid_room, no_such_room, not_member; forbidden for a
 * private room, which non-members may not know more of). */
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
		if (room->kind == ROOM_PRIVATE)
			chat_send_error(s, ref, "forbidden", "a private room");
		else
			chat_send_error(s, ref, "not_member",
			    "not a member of the room");
		return NULL;
	}
	return room;
}

/* Subscribes every session of user u to room from its last_seq on. */
void
chat_room_subscribe_user(struct hub_user *u, struct hub_room *room)
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

/* member_roles callback: one "name": "role" member of an object. */
static int
chat_member_role(void *arg, const char *username, int role)
{
	json_object_set_new(arg, username, json_string(chat_role_name(role)));
	return 0;
}

json_t *
chat_room_joined(struct server *srv, struct hub_room *room, int64_t user_id)
{
	json_t *members = json_array(), *roles = json_object(), *o;
	struct room r;
	int role = chat_role_of(srv, room, user_id);

	member_list(srv->db, room->id, chat_member_name, members);
	if (room->kind != ROOM_DM)
		member_roles(srv->db, room->id, chat_member_role, roles);
	if (room_by_name(srv->db, room->name, &r) != 0)
		r.topic[0] = '\0';
	o = json_pack("{s:s,s:s,s:s,s:o,s:I,s:s,s:o}", "type", "joined",
	    "room", room->name, "kind", chat_kind_name(room->kind), "members",
	    members, "last_seq", (json_int_t)room->last_seq, "topic", r.topic,
	    "roles", roles);
	if (role >= 0)
		json_object_set_new(o, "role", json_string(chat_role_name(role)));
	return o;
}

struct frame *
chat_room_event(struct hub_room *room)
{
	return chat_frame(json_pack("{s:s,s:s,s:s}", "type", "room", "room",
	    room->name, "kind", chat_kind_name(room->kind)));
}

/* Carries out a committed join, leave, dm or read: subscriptions, the
 * reply, the events to the user's other connections and the room. */
void
chat_room_run(struct server *srv, struct action *a)
{
	/* The requesting connection may be gone; its user's others not:
	 * everything goes by user id, to every node. */
	struct frame *f;

	switch (a->type) {
	case ACT_JOIN:
		chat_subscribe_everywhere(srv, a->user_id, a->room);
		chat_reply(a->sess, chat_room_joined(srv, a->room, a->user_id),
		    a->ref);
		if (!a->fresh)
			break;
		f = chat_room_event(a->room);
		chat_to_user(srv, a->user_id, f, a->sess);
		frame_unref(f);
		f = chat_frame(json_pack("{s:s,s:s,s:s,s:s}", "type", "member",
		    "room", a->room->name, "user", a->username, "event",
		    "join"));
		chat_to_room(srv, a->room, f, a->user_id, NULL);
		frame_unref(f);
		break;
	case ACT_LEAVE:
		chat_unsubscribe_everywhere(srv, a->user_id, a->room);
		f = chat_frame(json_pack("{s:s,s:s}", "type", "left", "room",
		    a->room->name));
		chat_to_user(srv, a->user_id, f, a->sess);
		frame_unref(f);
		chat_reply(a->sess, json_pack("{s:s,s:s}", "type", "left",
		    "room", a->room->name), a->ref);
		f = chat_frame(json_pack("{s:s,s:s,s:s,s:s}", "type", "member",
		    "room", a->room->name, "user", a->username, "event",
		    "leave"));
		chat_to_room(srv, a->room, f, a->user_id, NULL);
		frame_unref(f);
		break;
	case ACT_DM:
		chat_subscribe_everywhere(srv, a->user_id, a->room);
		if (a->other_id != a->user_id)
			chat_subscribe_everywhere(srv, a->other_id, a->room);
		chat_reply(a->sess, chat_room_joined(srv, a->room, a->user_id),
		    a->ref);
		if (!a->fresh)
			break;
		f = chat_room_event(a->room);
		chat_to_user(srv, a->user_id, f, a->sess);
		if (a->other_id != a->user_id)
			chat_to_user(srv, a->other_id, f, NULL);
		frame_unref(f);
		break;
	case ACT_READ:
		if (a->fresh) {
			f = chat_frame(json_incref(a->event));
			chat_to_room(srv, a->room, f, 0, a->sess);
			frame_unref(f);
		}
		chat_reply(a->sess, json_incref(a->event), a->ref);
		break;
	default: /* chat_message_run's */
		break;
	}
}

int
chat_room_cap(struct session *s, json_t *ref, int64_t user_id,
    const char *who)
{
	struct server *srv = s->conn->srv;
	int64_t max = srv->cfg->max_rooms_per_user, n = 0;
	char msg[128];

	if (max <= 0)
		return 0;
	if (member_count(srv->db, user_id, max, &n) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	if (n < max)
		return 0;
	snprintf(msg, sizeof msg, "%s in too many rooms (at most %lld)",
	    who != NULL ? who : "you are", (long long)max);
	chat_send_error(s, ref, "forbidden", msg);
	return -1;
}

int
chat_room_invite_cap(struct session *s, json_t *ref, int64_t room_id,
    const struct user *u)
{
	char who[USERNAME_MAX + 16];
	int rc = member_get(s->conn->srv->db, room_id, u->id, NULL);

	if (rc < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	snprintf(who, sizeof who, "%s is", u->username);
	return rc == 0 ? 0 : chat_room_cap(s, ref, u->id, who);
}

int
chat_room_create_ok(struct session *s, json_t *ref)
{
	struct server *srv = s->conn->srv;

	if (srv->room_create == NULL ||
	    limiter_take(srv->room_create, s->user->username, chat_now()))
		return 0;
	srv->m.rate_limited++;
	chat_send_error(s, ref, "rate_limited",
	    "too many new rooms; try again later");
	return -1;
}

/* join: a public room (created on first join, its creator the owner), a
 * private room one is a member of, or a DM room again. Banned users:
 * forbidden. */
void
chat_room_join(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;
	struct room r;
	int kind, err, rc, created = 0;

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
	if (room != NULL && (rc = member_get(srv->db, room->id, s->user->id,
				 NULL)) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (room == NULL || rc == 1) {
		/* Not a member yet: private rooms and bans say no; over a
		 * cap, nothing is stored (a join already a member is not one
		 * more room). */
		if (room != NULL &&
		    (err = ban_get(srv->db, room->id, s->user->id)) < 0) {
			chat_send_error(s, ref, "internal", "database error");
			return;
		}
		if (room != NULL && (room->kind == ROOM_PRIVATE || err == 0)) {
			chat_send_error(s, ref, "forbidden",
			    room->kind == ROOM_PRIVATE ?
				"a private room: members invite" :
				"banned from the room");
			return;
		}
		if (chat_room_cap(s, ref, s->user->id, NULL) != 0)
			return;
	}
	if (room == NULL) {
		if (chat_room_create_ok(s, ref) != 0)
			return;
		if (room_create(srv->db, name, ROOM_PUBLIC, chat_now(), &r) < 0) {
			chat_send_error(s, ref, "internal", "database error");
			return;
		}
		room = hub_room_add(ch->hub, &r);
		created = 1;
	}
	rc = member_add(srv->db, room->id, s->user->id, room->pending_seq,
	    chat_now());
	if (rc < 0 || (created && member_set_role(srv->db, room->id,
				      s->user->id, ROLE_OWNER) != 0)) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_action(ch, ACT_JOIN, s, ref, room, NULL)->fresh = rc == 0;
}

/* leave: a public or private room (the role goes with the membership). */
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
		if (room->kind == ROOM_PRIVATE)
			chat_send_error(s, ref, "forbidden", "a private room");
		else
			chat_send_error(s, ref, "not_member",
			    "not a member of the room");
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
		char who[USERNAME_MAX + 16];

		snprintf(who, sizeof who, "%s is", peer.username);
		if (chat_room_cap(s, ref, s->user->id, NULL) != 0 ||
		    (peer.id != s->user->id &&
			chat_room_cap(s, ref, peer.id, who) != 0) ||
		    chat_room_create_ok(s, ref) != 0)
			return;
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
