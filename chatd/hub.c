/* chatd/hub.c — who is online where: rooms, users, subscriptions, fan-out */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/conn.h"
#include "chatd/hub.h"
#include "chatd/xmalloc.h"

#define HUB_BUCKETS 4096 /* chained; plenty for a team's rooms and users */

struct hub {
	struct hub_room *by_id[HUB_BUCKETS];
	struct hub_room *by_name[HUB_BUCKETS];
	struct hub_user *users[HUB_BUCKETS];
	unsigned mark; /* generation for de-duplicating sends */
};

/* Bucket of an integer id. */
static unsigned
hub_id_slot(int64_t id)
{
	return (unsigned)((uint64_t)id * 11400714819323198485ull >> 52);
}

/* Bucket of a name (FNV-1a). */
static unsigned
hub_name_slot(const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return (unsigned)(h % HUB_BUCKETS);
}

struct hub *
hub_new(void)
{
	return xcalloc(1, sizeof(struct hub));
}

void
hub_free(struct hub *h)
{
	if (h == NULL)
		return;
	for (unsigned i = 0; i < HUB_BUCKETS; i++) {
		struct hub_room *r, *rn;
		struct hub_user *u, *un;

		for (r = h->by_id[i]; r != NULL; r = rn) {
			rn = r->next_id;
			free(r);
		}
		for (u = h->users[i]; u != NULL; u = un) {
			un = u->next;
			free(u);
		}
	}
	free(h);
}

struct hub_room *
hub_room_add(struct hub *h, const struct room *r)
{
	struct hub_room *room = xcalloc(1, sizeof *room);
	unsigned is = hub_id_slot(r->id), ns = hub_name_slot(r->name);

	room->id = r->id;
	snprintf(room->name, sizeof room->name, "%s", r->name);
	room->kind = r->kind;
	room->last_seq = room->pending_seq = r->last_seq;
	LIST_INIT(&room->subs);
	room->next_id = h->by_id[is];
	h->by_id[is] = room;
	room->next_name = h->by_name[ns];
	h->by_name[ns] = room;
	return room;
}

/* Drops a room's subscriptions and takes it out of the name table. */
static void
hub_room_forget(struct hub *h, struct hub_room *room)
{
	struct hub_room **pp;
	struct sub *sub;

	while ((sub = LIST_FIRST(&room->subs)) != NULL)
		hub_unsubscribe(sub->sess, room);
	for (pp = &h->by_name[hub_name_slot(room->name)]; *pp;
	    pp = &(*pp)->next_name)
		if (*pp == room) {
			*pp = room->next_name;
			break;
		}
}

void
hub_rooms_check(struct hub *h, struct db *db)
{
	struct hub_room *room, *next;

	for (unsigned i = 0; i < HUB_BUCKETS; i++)
		for (room = h->by_name[i]; room != NULL; room = next) {
			next = room->next_name;
			if (admin_room_gone(db, room->id) == 1)
				hub_room_forget(h, room);
		}
}

int
hub_room_gone(struct hub *h, struct db *db, struct hub_room *room)
{
	if (admin_room_gone(db, room->id) != 1)
		return 0;
	hub_room_forget(h, room);
	return 1;
}

/* The cached room called name, or NULL. */
static struct hub_room *
hub_room_cached(struct hub *h, const char *name)
{
	struct hub_room *room;

	for (room = h->by_name[hub_name_slot(name)]; room != NULL;
	    room = room->next_name)
		if (strcmp(room->name, name) == 0)
			return room;
	return NULL;
}

struct hub_room *
hub_room_get(struct hub *h, struct db *db, const char *name, int *err)
{
	struct hub_room *room;
	struct room r;
	int rc;

	*err = 0;
	if ((room = hub_room_cached(h, name)) != NULL)
		return room;
	rc = room_by_name(db, name, &r);
	if (rc < 0)
		*err = 1;
	if (rc != 0)
		return NULL;
	return hub_room_add(h, &r);
}

struct hub_room *
hub_room_cache(struct hub *h, const struct room *r)
{
	struct hub_room *room = hub_room_cached(h, r->name);

	return room != NULL ? room : hub_room_add(h, r);
}

void
hub_user_each(struct hub *h, void (*fn)(void *arg, struct hub_user *u),
    void *arg)
{
	struct hub_user *u, *next;

	for (unsigned i = 0; i < HUB_BUCKETS; i++)
		for (u = h->users[i]; u != NULL; u = next) {
			next = u->next;
			fn(arg, u);
		}
}

struct hub_user *
hub_user_find(struct hub *h, int64_t id)
{
	struct hub_user *u;

	for (u = h->users[hub_id_slot(id)]; u != NULL; u = u->next)
		if (u->id == id)
			return u;
	return NULL;
}

int
hub_user_attach(struct hub *h, struct session *s, int64_t id,
    const char *username)
{
	struct hub_user *u = hub_user_find(h, id);
	unsigned slot = hub_id_slot(id);

	if (u == NULL) {
		u = xcalloc(1, sizeof *u);
		u->id = id;
		snprintf(u->username, sizeof u->username, "%s", username);
		LIST_INIT(&u->sessions);
		u->next = h->users[slot];
		h->users[slot] = u;
	}
	s->user = u;
	LIST_INSERT_HEAD(&u->sessions, s, user_link);
	return ++u->nsessions == 1;
}

int
hub_user_detach(struct hub *h, struct session *s)
{
	struct hub_user *u = s->user, **pp;
	struct sub *sub;

	while ((sub = LIST_FIRST(&s->subs)) != NULL)
		hub_unsubscribe(s, sub->room);
	if (u == NULL)
		return 0;
	LIST_REMOVE(s, user_link);
	s->user = NULL;
	if (--u->nsessions > 0)
		return 0;
	for (pp = &h->users[hub_id_slot(u->id)]; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	free(u);
	return 1;
}

struct sub *
hub_sub_find(struct session *s, struct hub_room *room)
{
	struct sub *sub;

	/* A user in many rooms, or a room with many sessions: either list
	 * may be long, the shorter one is what a request costs. */
	if (room->nsubs < s->nsubs) {
		LIST_FOREACH(sub, &room->subs, room_link)
			if (sub->sess == s)
				return sub;
		return NULL;
	}
	LIST_FOREACH(sub, &s->subs, sess_link)
		if (sub->room == room)
			return sub;
	return NULL;
}

struct sub *
hub_subscribe(struct session *s, struct hub_room *room, int64_t seq)
{
	struct sub *sub = hub_sub_find(s, room);

	if (sub != NULL)
		return sub;
	sub = xcalloc(1, sizeof *sub);
	sub->room = room;
	sub->sess = s;
	sub->last_sent = seq;
	LIST_INSERT_HEAD(&room->subs, sub, room_link);
	LIST_INSERT_HEAD(&s->subs, sub, sess_link);
	room->nsubs++;
	s->nsubs++;
	return sub;
}

void
hub_unsubscribe(struct session *s, struct hub_room *room)
{
	struct sub *sub = hub_sub_find(s, room);

	if (sub == NULL)
		return;
	LIST_REMOVE(sub, room_link);
	LIST_REMOVE(sub, sess_link);
	room->nsubs--;
	s->nsubs--;
	free(sub);
}

unsigned
hub_deliver(struct hub_room *room, int64_t seq, struct frame *f,
    struct session *skip)
{
	struct sub *sub, *next;
	unsigned n = 0;

	/* conn_ws_send_frame may drop a slow peer, which unsubscribes it:
	 * hence the _SAFE walk. */
	for (sub = LIST_FIRST(&room->subs); sub != NULL; sub = next) {
		next = LIST_NEXT(sub, room_link);
		if (sub->last_sent >= seq)
			continue;
		sub->last_sent = seq;
		if (sub->sess == skip)
			continue;
		conn_ws_send_frame(sub->sess->conn, f);
		n++;
	}
	return n;
}

unsigned
hub_broadcast(struct hub_room *room, struct frame *f,
    struct hub_user *skip_user, struct session *skip)
{
	struct sub *sub, *next;
	unsigned n = 0;

	for (sub = LIST_FIRST(&room->subs); sub != NULL; sub = next) {
		next = LIST_NEXT(sub, room_link);
		if (sub->sess->user == skip_user || sub->sess == skip)
			continue;
		conn_ws_send_frame(sub->sess->conn, f);
		n++;
	}
	return n;
}

void
hub_user_send(struct hub_user *u, struct frame *f, struct session *skip)
{
	struct session *s, *next;

	for (s = LIST_FIRST(&u->sessions); s != NULL; s = next) {
		next = LIST_NEXT(s, user_link);
		if (s != skip)
			conn_ws_send_frame(s->conn, f);
	}
}

struct hub_room *
hub_room_by_id(struct hub *h, int64_t id)
{
	struct hub_room *room;

	for (room = h->by_id[hub_id_slot(id)]; room != NULL;
	    room = room->next_id)
		if (room->id == id)
			return room;
	return NULL;
}

void
hub_room_each(struct hub *h, void (*fn)(void *arg, struct hub_room *r),
    void *arg)
{
	struct hub_room *room, *next;

	for (unsigned i = 0; i < HUB_BUCKETS; i++)
		for (room = h->by_id[i]; room != NULL; room = next) {
			next = room->next_id;
			fn(arg, room);
		}
}

void
hub_mark_begin(struct hub *h)
{
	h->mark++;
}

void
hub_mark_send(struct hub *h, struct hub_room *room, struct frame *f,
    int64_t skip_user)
{
	struct sub *sub, *next;

	for (sub = LIST_FIRST(&room->subs); sub != NULL; sub = next) {
		struct conn *c = sub->sess->conn;

		next = LIST_NEXT(sub, room_link);
		if (sub->sess->user->id == skip_user || c->mark == h->mark)
			continue;
		c->mark = h->mark;
		conn_ws_send_frame(c, f);
	}
}

void
hub_neighbours_send(struct hub *h, struct hub_user *u, struct frame *f)
{
	struct session *s;
	struct sub *sub, *other;

	/* Users, not connections, are de-duplicated: each other user's
	 * sessions all get f once, through whichever room is found first. */
	h->mark++;
	LIST_FOREACH(s, &u->sessions, user_link)
		LIST_FOREACH(sub, &s->subs, sess_link)
			LIST_FOREACH(other, &sub->room->subs, room_link) {
				struct conn *c = other->sess->conn;

				if (other->sess->user == u || c->mark == h->mark)
					continue;
				c->mark = h->mark;
				conn_ws_send_frame(c, f);
			}
}
