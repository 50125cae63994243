/* chatd/chat_role.c — the role table of PROTOCOL.md version 2 ("Roles"):
 * chat_role_may is the one place that decides what a member, moderator or
 * owner may do; every request that needs a role asks it. */
#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/server.h"
#include "storage/storage.h"

/* The names of enum room_role and enum room_kind. */
static const char *const chat_roles[] = {"member", "moderator", "owner"};
static const char *const chat_kinds[] = {"public", "dm", "private"};

int
chat_role_may(int actor, enum chat_power what, int target)
{
	if (actor < ROLE_MEMBER || actor > ROLE_OWNER)
		return 0; /* no role: not a member, or a DM room */
	switch (what) {
	case CHAT_INVITE:
		return 1;
	case CHAT_LIFT_BAN:
	case CHAT_UNBAN:
	case CHAT_TOPIC:
	case CHAT_DELETE_ANY:
		return actor >= ROLE_MODERATOR;
	case CHAT_KICK:
		/* Moderators kick members, owners moderators too; nobody
		 * kicks an owner. */
		return actor >= ROLE_MODERATOR && target != ROLE_OWNER &&
		       (target == ROLE_MEMBER || actor == ROLE_OWNER);
	case CHAT_ROLE:
		return actor == ROLE_OWNER;
	}
	return 0;
}

int
chat_role_of(struct server *srv, struct hub_room *room, int64_t user_id)
{
	int role, rc;

	if (room->kind == ROOM_DM)
		return CHAT_NO_ROLE;
	rc = member_role(srv->db, room->id, user_id, &role);
	return rc < 0 ? -2 : rc == 1 ? CHAT_NO_ROLE : role;
}

const char *
chat_role_name(int role)
{
	return chat_roles[role >= 0 && role <= 2 ? role : 0];
}

const char *
chat_kind_name(int kind)
{
	return chat_kinds[kind >= 0 && kind <= 2 ? kind : 0];
}
