/* chatd/hub.h — who is online where: rooms, users, subscriptions, fan-out */
#ifndef CHATD_HUB_H
#define CHATD_HUB_H

#include <stdint.h>
#include <sys/queue.h>

#include "chatd/limiter.h"
#include "storage/storage.h"

struct conn;
struct frame;
struct hub_room;
struct hub_user;

/* One connection's interest in one room: it gets the room's live events
 * with seq above last_sent (so none twice, none out of order). */
struct sub {
	struct hub_room *room;
	struct session *sess;
	int64_t last_sent;
	LIST_ENTRY(sub) room_link;
	LIST_ENTRY(sub) sess_link;
};
LIST_HEAD(sub_list, sub);

/* A room known to the server; rooms are never evicted (small teams). */
struct hub_room {
	int64_t id;
	char name[ROOMNAME_MAX + 1];
	int kind;
	int64_t last_seq;    /* latest committed and delivered change */
	int64_t pending_seq; /* latest change, open transaction included */
	struct sub_list subs;
	unsigned nsubs;
	/* PostgreSQL: the transaction (chat's txn_gen) that holds the
	 * room's lock, and the room's last_seq it read when it took it. */
	uint64_t lock_txn;
	int64_t lock_prev;  /* ...then the seq the transaction took last */
	int64_t seq_prev;   /* the room's seq before the seq taken last */
	struct hub_room *next_id;
	struct hub_room *next_name;
};

/* A signed-in user with at least one authenticated WebSocket. */
struct hub_user {
	int64_t id;
	char username[USERNAME_MAX + 1];
	LIST_HEAD(, session) sessions;
	unsigned nsessions;
	struct hub_user *next;
};

/* The chat state of one WebSocket connection (conn->app_data). */
struct session {
	struct conn *conn;
	struct hub_user *user; /* NULL until authenticated */
	uint8_t token_hash[32];
	struct sub_list subs;
	unsigned nsubs;
	struct bucket rate;
	unsigned pending;      /* batch actions that still point here */
	unsigned parked;       /* requests waiting for the write lock */
	struct event *expiry;  /* the token's end: close 4001 (authed) */
	int64_t expires_at;    /* ...in ms since the epoch */
	LIST_ENTRY(session) user_link;
};

struct hub;

struct hub *hub_new(void);
/* Frees rooms and users; sessions must be gone already. */
void hub_free(struct hub *h);
/* The room called name, loaded from the database on first use. NULL if
 * it does not exist (or on a database error: *err set). */
struct hub_room *hub_room_get(struct hub *h, struct db *db, const char *name,
    int *err);
/* 1 if room was deleted meanwhile (chatd room del): then forgotten like
 * hub_rooms_check does; 0 if it exists or on a database error. */
int hub_room_gone(struct hub *h, struct db *db, struct hub_room *room);
/* Adds a room just created (or loaded) to the hub. */
struct hub_room *hub_room_add(struct hub *h, const struct room *r);
/* The cached room called r->name, else r (just read from the database)
 * added: hub_room_get without a second query. */
struct hub_room *hub_room_cache(struct hub *h, const struct room *r);
/* Forgets the cached rooms that are no longer in the database (deleted by
 * "chatd room del" while serving): their names may be taken by new rooms.
 * Their memory stays until hub_free, as pending actions may point to
 * them. */
void hub_rooms_check(struct hub *h, struct db *db);
/* The cached room with id (a deleted one too: it has no subscribers),
 * or NULL. */
struct hub_room *hub_room_by_id(struct hub *h, int64_t id);
/* Calls fn for every cached room. */
void hub_room_each(struct hub *h, void (*fn)(void *arg, struct hub_room *r),
    void *arg);
/* Starts a de-duplicated send (hub_mark_send): each connection gets f at
 * most once until the next hub_mark_begin. */
void hub_mark_begin(struct hub *h);
/* Sends f to every subscriber of room not sent it since hub_mark_begin,
 * but skip_user's. */
void hub_mark_send(struct hub *h, struct hub_room *room, struct frame *f,
    int64_t skip_user);
/* Calls fn for every online user; fn may close the user's sessions. */
void hub_user_each(struct hub *h, void (*fn)(void *arg, struct hub_user *u),
    void *arg);
/* The online user with id, or NULL. */
struct hub_user *hub_user_find(struct hub *h, int64_t id);
/* Attaches an authenticated session to its user; 1 if it is the user's
 * first (presence goes online), else 0. */
int hub_user_attach(struct hub *h, struct session *s, int64_t id,
    const char *username);
/* Detaches a session and drops its subscriptions; 1 if it was the
 * user's last (presence goes offline), else 0. */
int hub_user_detach(struct hub *h, struct session *s);
/* Subscribes s to room from seq on (no-op if already). */
struct sub *hub_subscribe(struct session *s, struct hub_room *room,
    int64_t seq);
/* The subscription of s to room, or NULL: s's user is not a member.
 * Walks the shorter of the two lists (a user's rooms, a room's
 * sessions). */
struct sub *hub_sub_find(struct session *s, struct hub_room *room);
/* Drops the subscription of s to room, if any. */
void hub_unsubscribe(struct session *s, struct hub_room *room);
/* Sends a stored event (seq) of room: f to every subscriber except skip,
 * each at most once and in seq order; returns the number sent. */
unsigned hub_deliver(struct hub_room *room, int64_t seq, struct frame *f,
    struct session *skip);
/* Sends f to every subscriber of room but skip_user's sessions and the
 * session skip (either may be NULL). */
unsigned hub_broadcast(struct hub_room *room, struct frame *f,
    struct hub_user *skip_user, struct session *skip);
/* Sends f to each session of u except skip. */
void hub_user_send(struct hub_user *u, struct frame *f, struct session *skip);
/* Sends f once to every other user sharing a room with u (presence). */
void hub_neighbours_send(struct hub *h, struct hub_user *u, struct frame *f);

#endif
