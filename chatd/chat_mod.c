/* chatd/chat_mod.c — moderation (PROTOCOL.md version 2, "Rooms, roles
 * and moderation"): create, invite, kick, unban, role, topic and notify,
 * and what each delivers once committed. The role table is chat_role.c. */
#include <stdio.h>
#include <string.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/hub.h"
#include "chatd/server.h"
#include "chatd/utf8.h"
#include "storage/storage.h"

/* The names of enum room_role and enum room_notify. */
static const char *const chat_roles[] = {"member", "moderator", "owner"};
static const char *const chat_levels[] = {"all", "mentions", "none"};
/* create's kinds, by enum room_kind ("dm" is refused). */
static const char *const chat_kinds[] = {"public", "dm", "private"};

/* The index of the string field key of req in names[n]; -1 after
 * replying bad_request if it is not one of them. */
static int
chat_enum_field(struct session *s, json_t *req, json_t *ref, const char *key,
                const char *const *names, int n)
{
	const char *v = chat_str(req, key);

	for (int i = 0; v != NULL && i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	chat_send_error(
	    s, ref, "bad_request",
	    strcmp(key, "role") == 0    ? "role: owner, moderator or member"
	    : strcmp(key, "level") == 0 ? "level: all, mentions or none"
	                                : "kind: public or private");
	return -1;
}

/* Checks a topic field (absent: ""): 0, or -1 after replying bad_request
 * or too_long. */
static int
chat_topic_ok(struct session *s, json_t *ref, json_t *v, const char **out)
{
	*out = "";
	if (v == NULL)
		return 0;
	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		chat_send_error(s, ref, "bad_request",
		                "topic must be a string");
		return -1;
	}
	if (utf8_codepoints((const uint8_t *)json_string_value(v),
	                    json_string_length(v)) > ROOM_TOPIC_MAX) {
		chat_send_error(s, ref, "too_long",
		                "the topic is over 250 characters");
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* The room of a moderation request (invite, kick, unban, role, topic)
 * and the sender's role in it: NULL after replying invalid_room,
 * no_such_room, forbidden (a DM room) or not_member. */
static struct hub_room *
chat_mod_room(struct session *s, json_t *req, json_t *ref, int *role)
{
	struct server *srv = s->conn->srv;
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;

	if (chat_room_name(s, req, ref, name) < 0 ||
	    (room = chat_room_find(s, ref, name)) == NULL)
		return NULL;
	if (room->kind == ROOM_DM) {
		chat_send_error(s, ref, "forbidden",
		                "direct-message rooms have no roles");
		return NULL;
	}
	if ((*role = chat_role_of(srv, room, s->user->id)) == -2 ||
	    chat_txn(srv->chat, srv) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return NULL;
	}
	if (*role == CHAT_NO_ROLE) {
		chat_send_error(s, ref, "not_member",
		                "not a member of the room");
		return NULL;
	}
	return room;
}

/* The "user" field of a request as a live user: 0, or -1 after replying
 * bad_request (not a string) or not_found. */
static int
chat_mod_user(struct session *s, json_t *req, json_t *ref, struct user *out)
{
	struct server *srv = s->conn->srv;
	json_t *v = json_object_get(req, "user");
	char name[USERNAME_MAX + 1];
	int rc;

	if (!json_is_string(v)) {
		chat_send_error(s, ref, "bad_request", "user must be a string");
		return -1;
	}
	if (json_string_length(v) > USERNAME_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		chat_send_error(s, ref, "not_found", "no such user");
		return -1;
	}
	snprintf(name, sizeof name, "%s", json_string_value(v));
	if (auth_username_fold(name) != 0 ||
	    (rc = user_by_name(srv->db, name, out, NULL, 0)) == 1) {
		chat_send_error(s, ref, "not_found", "no such user");
		return -1;
	}
	if (rc < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return -1;
	}
	return 0;
}

/* Queues a moderation action against user t. */
static struct action *
chat_mod_action(struct session *s, json_t *ref, enum action_type type,
                struct hub_room *room, const struct user *t, json_t *event)
{
	struct action *a =
	    chat_action(s->conn->srv->chat, type, s, ref, room, event);

	if (t != NULL) {
		a->other_id = t->id;
		snprintf(a->other_name, sizeof a->other_name, "%s",
		         t->username);
	}
	return a;
}

/* create: a new public or private room whose creator is its owner. */
void
chat_mod_create(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	char name[ROOMNAME_MAX + 1];
	const char *topic;
	struct hub_room *room;
	struct room r;
	int kind = ROOM_PUBLIC, err, rc;

	if ((rc = chat_room_name(s, req, ref, name)) < 0)
		return;
	if (rc == ROOM_DM) {
		chat_send_error(s, ref, "invalid_room",
		                "direct-message rooms are created with dm");
		return;
	}
	if (json_object_get(req, "kind") != NULL &&
	    (kind = chat_enum_field(s, req, ref, "kind", chat_kinds, 3)) < 0)
		return;
	if (kind == ROOM_DM) {
		chat_send_error(s, ref, "bad_request",
		                "kind: public or private");
		return;
	}
	if (chat_topic_ok(s, ref, json_object_get(req, "topic"), &topic) != 0)
		return;
	room = hub_room_get(ch->hub, srv->db, name, &err);
	if (room != NULL) {
		chat_send_error(s, ref, "room_exists", "the name is taken");
		return;
	}
	if (!err && (chat_room_cap(s, ref, s->user->id, NULL) != 0 ||
	             chat_room_create_ok(s, ref) != 0))
		return;
	if (err || chat_txn(ch, srv) != 0 ||
	    (rc = room_create(srv->db, name, kind, chat_now(), &r)) < 0 ||
	    (rc == 0 && topic[0] != '\0' &&
	     room_set_topic(srv->db, r.id, topic) != 0)) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (rc == 1) {
		chat_send_error(s, ref, "room_exists", "the name is taken");
		return;
	}
	room = hub_room_add(ch->hub, &r);
	if (member_add(srv->db, room->id, s->user->id, room->pending_seq,
	               chat_now()) != 0 ||
	    member_set_role(srv->db, room->id, s->user->id, ROLE_OWNER) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_action(ch, ACT_JOIN, s, ref, room, NULL)->fresh = 1;
}

/* invite: makes a user a member; a moderator's invite lifts a ban. */
void
chat_mod_invite(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct hub_room *room;
	struct user t;
	int role, banned, rc;

	if ((room = chat_mod_room(s, req, ref, &role)) == NULL ||
	    chat_mod_user(s, req, ref, &t) != 0)
		return;
	if ((banned = ban_get(srv->db, room->id, t.id)) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (!chat_role_may(role, banned == 0 ? CHAT_LIFT_BAN : CHAT_INVITE,
	                   ROLE_MEMBER)) {
		chat_send_error(s, ref, "forbidden", "the user is banned");
		return;
	}
	if (chat_room_invite_cap(s, ref, room->id, &t) != 0)
		return;
	if ((banned == 0 && ban_remove(srv->db, room->id, t.id) < 0) ||
	    (rc = member_add(srv->db, room->id, t.id, room->pending_seq,
	                     chat_now())) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_mod_action(s, ref, ACT_INVITE, room, &t,
	                json_pack("{s:s,s:s,s:s}", "type", "invited", "room",
	                          room->name, "user", t.username))
	    ->fresh = rc == 0;
}

/* Stops every session of user id receiving room's events at once (the
 * "left" events follow the commit): a kicked user's requests in the same
 * loop pass already find no membership. */
static void
chat_mod_unsubscribe(struct server *srv, struct hub_room *room, int64_t id)
{
	chat_unsubscribe_everywhere(srv, id, room);
}

/* kick: ends a membership, with "ban": true also bans (members or not). */
void
chat_mod_kick(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	json_t *banv = json_object_get(req, "ban");
	struct hub_room *room;
	struct action *a;
	struct user t;
	int role, target, ban, rc;

	if (banv != NULL && !json_is_boolean(banv)) {
		chat_send_error(s, ref, "bad_request", "ban must be a boolean");
		return;
	}
	ban = json_is_true(banv);
	if ((room = chat_mod_room(s, req, ref, &role)) == NULL)
		return;
	if (!chat_role_may(role, CHAT_KICK, ROLE_MEMBER)) {
		chat_send_error(s, ref, "forbidden",
		                "moderators and owners kick");
		return;
	}
	if (chat_mod_user(s, req, ref, &t) != 0)
		return;
	if ((target = chat_role_of(srv, room, t.id)) == -2) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (t.id == s->user->id ||
	    !chat_role_may(role, CHAT_KICK,
	                   target == CHAT_NO_ROLE ? ROLE_MEMBER : target)) {
		chat_send_error(s, ref, "forbidden",
		                t.id == s->user->id
		                    ? "not yourself"
		                    : "beyond your role in the room");
		return;
	}
	if (target == CHAT_NO_ROLE && !ban) {
		chat_send_error(s, ref, "not_member",
		                "not a member of the room");
		return;
	}
	if ((rc = member_remove(srv->db, room->id, t.id)) < 0 ||
	    (ban && ban_add(srv->db, room->id, t.id, chat_now()) < 0)) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (rc == 0)
		chat_mod_unsubscribe(srv, room, t.id);
	a = chat_mod_action(s, ref, ACT_KICK, room, &t,
	                    json_pack("{s:s,s:s,s:s,s:b}", "type", "kicked",
	                              "room", room->name, "user", t.username,
	                              "ban", ban));
	a->fresh = rc == 0;
	a->ban = ban;
}

/* unban: lifts a ban (nothing to lift: the same reply). */
void
chat_mod_unban(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct hub_room *room;
	struct user t;
	int role;

	if ((room = chat_mod_room(s, req, ref, &role)) == NULL)
		return;
	if (!chat_role_may(role, CHAT_UNBAN, ROLE_MEMBER)) {
		chat_send_error(s, ref, "forbidden",
		                "moderators and owners unban");
		return;
	}
	if (chat_mod_user(s, req, ref, &t) != 0)
		return;
	if (t.id == s->user->id) {
		chat_send_error(s, ref, "forbidden", "not yourself");
		return;
	}
	if (ban_remove(srv->db, room->id, t.id) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_mod_action(s, ref, ACT_ANSWER, room, &t,
	                json_pack("{s:s,s:s,s:s}", "type", "unbanned", "room",
	                          room->name, "user", t.username));
}

/* role: an owner gives a member a role (themselves included). */
void
chat_mod_role(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct hub_room *room;
	struct user t;
	int role, want, rc;

	if ((want = chat_enum_field(s, req, ref, "role", chat_roles, 3)) < 0 ||
	    (room = chat_mod_room(s, req, ref, &role)) == NULL)
		return;
	if (!chat_role_may(role, CHAT_ROLE, ROLE_MEMBER)) {
		chat_send_error(s, ref, "forbidden", "only owners give roles");
		return;
	}
	if (chat_mod_user(s, req, ref, &t) != 0)
		return;
	if ((rc = member_set_role(srv->db, room->id, t.id, want)) < 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (rc == 1) {
		chat_send_error(s, ref, "not_member",
		                "the user is not a member of the room");
		return;
	}
	chat_mod_action(s, ref, ACT_EVENT, room, NULL,
	                json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "role",
	                          "room", room->name, "user", t.username,
	                          "role", chat_roles[want], "by",
	                          s->user->username));
}

/* topic: moderators and owners set the room's topic. */
void
chat_mod_topic(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	json_t *v = json_object_get(req, "topic");
	struct hub_room *room;
	const char *topic;
	int role;

	if (v == NULL) {
		chat_send_error(s, ref, "bad_request",
		                "topic must be a string");
		return;
	}
	if (chat_topic_ok(s, ref, v, &topic) != 0 ||
	    (room = chat_mod_room(s, req, ref, &role)) == NULL)
		return;
	if (!chat_role_may(role, CHAT_TOPIC, ROLE_MEMBER)) {
		chat_send_error(s, ref, "forbidden",
		                "moderators and owners set the topic");
		return;
	}
	if (room_set_topic(srv->db, room->id, topic) != 0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	chat_mod_action(s, ref, ACT_EVENT, room, NULL,
	                json_pack("{s:s,s:s,s:s,s:s}", "type", "topic", "room",
	                          room->name, "topic", topic, "by",
	                          s->user->username));
}

/* notify: the user's notification level in a room (DM rooms too). */
void
chat_mod_notify(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	char name[ROOMNAME_MAX + 1];
	struct hub_room *room;
	int level, rc;

	if ((level = chat_enum_field(s, req, ref, "level", chat_levels, 3)) <
	        0 ||
	    chat_room_name(s, req, ref, name) < 0 ||
	    (room = chat_room_find(s, ref, name)) == NULL)
		return;
	if (chat_txn(srv->chat, srv) != 0 ||
	    (rc = member_set_notify(srv->db, room->id, s->user->id, level)) <
	        0) {
		chat_send_error(s, ref, "internal", "database error");
		return;
	}
	if (rc == 1) {
		chat_send_error(s, ref, "not_member",
		                "not a member of the room");
		return;
	}
	chat_action(srv->chat, ACT_NOTIFY, s, ref, room,
	            json_pack("{s:s,s:s,s:s}", "type", "notify", "room",
	                      room->name, "level", chat_levels[level]));
}

/* A member event about a->other_name ("join" or "kick"), by the sender,
 * to the room's connections but the sender's and skip_user's. */
static void
chat_mod_member_event(struct server *srv, struct action *a,
                      const char *event, int64_t skip_user)
{
	struct frame *f = chat_frame(json_pack(
	    "{s:s,s:s,s:s,s:s,s:s}", "type", "member", "room", a->room->name,
	    "user", a->other_name, "event", event, "by", a->username));

	chat_to_room(srv, a->room, f, skip_user, a->sess);
	frame_unref(f);
}

void
chat_mod_run(struct server *srv, struct action *a)
{
	struct frame *f;

	switch (a->type) {
	case ACT_INVITE:
		if (a->fresh) {
			chat_mod_member_event(srv, a, "join", a->other_id);
			chat_subscribe_everywhere(srv, a->other_id, a->room);
			f = chat_room_event(a->room);
			chat_to_user(srv, a->other_id, f, NULL);
			frame_unref(f);
		}
		break;
	case ACT_KICK:
		if (a->fresh) {
			f = chat_frame(json_pack("{s:s,s:s,s:s}", "type", "left",
			    "room", a->room->name, "by", a->username));
			chat_to_user(srv, a->other_id, f, NULL);
			frame_unref(f);
			chat_mod_member_event(srv, a, "kick", a->other_id);
		}
		break;
	case ACT_EVENT:
		f = chat_frame(json_incref(a->event));
		chat_to_room(srv, a->room, f, 0, a->sess);
		frame_unref(f);
		break;
	case ACT_NOTIFY:
		f = chat_frame(json_incref(a->event));
		chat_to_user(srv, a->user_id, f, a->sess);
		frame_unref(f);
		break;
	default: /* ACT_ANSWER: the reply alone */
		break;
	}
	chat_reply(a->sess, json_incref(a->event), a->ref);
}
