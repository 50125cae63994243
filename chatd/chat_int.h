/* chatd/chat_int.h — what the chat*.c files (chat.c, chat_room.c,
 * chat_message.c, chat_session.c, chat_react.c, ...) share; no other file
 * includes it (chat.h is the public interface). */
#ifndef CHATD_CHAT_INT_H
#define CHATD_CHAT_INT_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <jansson.h>

#include "chatd/hub.h"
#include "chatd/jsonw.h"
#include "storage/storage.h"

struct server;

#define CHAT_MAX_TEXT 4000   /* code points */
#define CHAT_MAX_REF 64      /* characters of ref and client_msg_id */

/* What to do once the group commit holding a request is durable. */
enum action_type {
	ACT_SEND,   /* deliver a new message */
	ACT_CHANGE, /* deliver an edit or delete */
	ACT_REPLY,  /* only reply (idempotent resend) */
	ACT_JOIN,
	ACT_LEAVE,
	ACT_DM,
	ACT_READ,
	ACT_INVITE, /* subscribe the invitee, room/member events */
	ACT_KICK,   /* left to the target's connections, member event */
	ACT_EVENT,  /* event to the room (role, topic), with ref to the sender */
	ACT_NOTIFY, /* event to the sender (with ref) and their other sessions */
	ACT_ANSWER, /* only the reply, event (unban) */
};

/* A request's queued action: what it does once its batch is durable. */
struct action {
	enum action_type type;
	struct session *sess; /* the requester; NULL once it is gone */
	json_t *ref;
	struct hub_room *room;
	int64_t seq;
	int64_t prev_seq;     /* the room's seq before it (several nodes) */
	json_t *event;        /* ACT_READ: the event everyone gets */
	struct message *msg;  /* ACT_SEND/CHANGE/REPLY: the message, */
	const char *evtype;   /* sent as this event ("message", "edited"...) */
	int64_t user_id;      /* the requester's user, who may go offline */
	char username[USERNAME_MAX + 1];
	int64_t other_id;     /* ACT_DM, ACT_INVITE, ACT_KICK: the other user */
	char other_name[USERNAME_MAX + 1]; /* ACT_INVITE, ACT_KICK */
	int fresh;            /* joined anew / read position moved / kicked */
	int ban;              /* ACT_KICK: with a ban */
	TAILQ_ENTRY(action) link;
};
TAILQ_HEAD(action_list, action);

/* A request handler: validated fields are read from req. */
typedef void (*chat_handler)(struct session *s, json_t *req, json_t *ref);

#define CHAT_BATCH_MAX 1000 /* changes per group commit, at most */

/* chat_json.c: sends a message event (with ref) to one session (NULL:
 * nothing); a message event as a shared frame, encoded once for every
 * recipient (NULL on failure). */
void chat_event_reply(struct server *srv, struct session *s, const char *type,
    const struct message *m, json_t *ref);
struct frame *chat_event_frame(const char *type, const struct message *m);

/* chat_park.c: carries out one request now, or parks it while another
 * process holds the write lock (write: the request changes something).
 * Takes req. */
void chat_request(struct server *srv, struct session *s, chat_handler fn,
    int write, json_t *req, json_t *ref);
/* Sets up, empties (a closing session's requests) and frees the queue. */
void chat_park_init(struct server *srv);
void chat_park_drop_session(struct server *srv, struct session *s);
void chat_park_free(struct server *srv);

/* A request that waits for the database's write lock, which another
 * process holds (chat_park): run in arrival order once it is free. */
struct parked {
	struct session *sess;
	json_t *req;          /* owned; ref points into it */
	json_t *ref;
	chat_handler fn;
	int write;            /* a change: needs the write transaction */
	int64_t since;        /* chat_now() at arrival */
	TAILQ_ENTRY(parked) link;
};
TAILQ_HEAD(parked_list, parked);

/* The chat server's state (srv->chat). */
struct chat {
	struct hub *hub;
	int64_t next_seq;     /* the seq the next stored change takes */
	int txn;              /* a group-commit transaction is open */
	uint64_t txn_gen;     /* counts the transactions begun (room locks) */
	uint64_t commit_waited; /* txn_gen whose commit went behind the gate's
	                           queue once (chat_commit_cb) */
	unsigned rooms_locked; /* rooms the open transaction has locked */
	struct action_list actions;
	unsigned nactions;
	int64_t data_version;   /* of the database at the last check */
	struct timeval dv_checked; /* the loop pass (cached time) of it */
	struct event *commit_ev;
	struct event *index_ev; /* search indexing, after commits */
	struct parked_list parked; /* waiting for the write lock, in order */
	unsigned nparked;
	struct event *park_ev;  /* retries BEGIN while requests are parked */
	int park_backoff_ms;    /* the retry's current delay */
	struct jsonw out;       /* replies are encoded here, then sent */
};

struct frame;
struct server;

/* chat.c: replies, the reply buffer, the group commit, requests. */

/* Milliseconds now (shared clock with the server). */
int64_t chat_now(void);
/* Sends obj (plus ref when not NULL) to one session (none: drops it);
 * takes obj. */
void chat_reply(struct session *s, json_t *obj, json_t *ref);
/* Encodes obj once as a shared frame; takes obj. */
struct frame *chat_frame(json_t *obj);
/* Sends {"type":"error", code, message} (plus ref) to one session. */
void chat_send_error(struct session *s, json_t *ref, const char *code,
    const char *message);
/* The reply buffer, empty. */
struct jsonw *chat_out(struct server *srv);
/* Sends what the reply buffer holds to one session (none: discards it),
 * and lets a buffer that a big reply grew go. */
void chat_out_send(struct session *s, struct jsonw *w);
/* Opens the group-commit transaction if needed; the commit runs once the
 * loop has handled everything that arrived in this pass. 0, -1, or
 * DB_BUSY (another process holds the write lock: nothing is open). */
int chat_txn(struct chat *ch, struct server *srv);
/* 0 while seqs are left (next_seq <= SEQ_MAX), else -1 after replying
 * internal (logged): a change must not take a seq past it. */
int chat_seq_ok(struct session *s, json_t *ref);
/* Queues what happens after the commit. Takes event (may be NULL). */
struct action *chat_action(struct chat *ch, enum action_type type,
    struct session *s, json_t *ref, struct hub_room *room, json_t *event);
/* A string field, or NULL if absent, not a string, or holding a NUL. */
const char *chat_str(json_t *req, const char *key);

/* chat_room.c: rooms and membership. */

/* Reads and folds the "room" field into name; replies with the error and
 * returns -1, else the room kind. */
int chat_room_name(struct session *s, json_t *req, json_t *ref,
    char name[ROOMNAME_MAX + 1]);
/* The named room, or NULL after replying no_such_room / internal. */
struct hub_room *chat_room_find(struct session *s, json_t *ref,
    const char *name);
/* The room of a request the user must be a member of, or NULL after
 * replying (invalid_room, no_such_room, not_member). */
struct hub_room *chat_room_member(struct session *s, json_t *req,
    json_t *ref);
/* Subscribes every session of user u (NULL: offline) to room. */
void chat_room_subscribe_user(struct hub_user *u, struct hub_room *room);
/* The "joined" reply for room as user_id sees it (role, roles, topic). */
json_t *chat_room_joined(struct server *srv, struct hub_room *room,
    int64_t user_id);
/* {"type":"room","room","kind"} for a user's other connections. */
struct frame *chat_room_event(struct hub_room *room);
/* 0 if user may be a member of one more room, else -1 after replying
 * forbidden (who names the user when it is not the requester). The cap
 * (--max-rooms-per-user) bounds what every hello and /api/me of the user
 * costs. */
int chat_room_cap(struct session *s, json_t *ref, int64_t user_id,
    const char *who);
/* chat_room_cap for user u joining room_id (invite): 0 if already a
 * member or under the cap, else -1 after replying. */
int chat_room_invite_cap(struct session *s, json_t *ref, int64_t room_id,
    const struct user *u);
/* 0 if the user may create one more room now (taking a token of
 * --max-rooms-per-hour), else -1 after replying rate_limited. */
int chat_room_create_ok(struct session *s, json_t *ref);
/* Carries out a committed ACT_JOIN, ACT_LEAVE, ACT_DM or ACT_READ. */
void chat_room_run(struct server *srv, struct action *a);
/* Request handlers (PROTOCOL.md): join, leave, dm, read. */
void chat_room_join(struct session *s, json_t *req, json_t *ref);
void chat_room_leave(struct session *s, json_t *req, json_t *ref);
void chat_room_dm(struct session *s, json_t *req, json_t *ref);
void chat_room_read(struct session *s, json_t *req, json_t *ref);
/* chat_room_states (chat.h) that also caches each room in the hub and
 * returns them in *rooms (n of them; free the array), in the states'
 * order, for hello's subscriptions. 0, or -1 on a database error (w
 * then holds part of the array). */
int chat_room_states_cached(struct server *srv, int64_t user_id,
    struct jsonw *w, struct hub_room ***rooms, size_t *n);

/* chat_role.c (the role table) and chat_mod.c (create, invite, kick,
 * unban, role, topic, notify): PROTOCOL.md v2 "Rooms, roles and
 * moderation". */

/* What a role may do to a room or to another member. */
enum chat_power {
	CHAT_INVITE,     /* invite a user who is not banned */
	CHAT_LIFT_BAN,   /* invite a banned user (lifting the ban) */
	CHAT_KICK,       /* kick or ban the target */
	CHAT_UNBAN,
	CHAT_TOPIC,
	CHAT_DELETE_ANY, /* delete anyone's message */
	CHAT_ROLE,       /* give the target a role */
};
#define CHAT_NO_ROLE (-1) /* not a member, or a DM room: no role */
/* Whether a member with role actor (CHAT_NO_ROLE: none) may do what to
 * a member with role target (ROLE_MEMBER for a non-member). The one
 * place the role table of PROTOCOL.md is decided: 1 may, 0 may not. */
int chat_role_may(int actor, enum chat_power what, int target);
/* The user's role in room: CHAT_NO_ROLE in a DM room or for a
 * non-member; -2 on a database error. */
int chat_role_of(struct server *srv, struct hub_room *room, int64_t user_id);
/* "owner", "moderator", "member". */
const char *chat_role_name(int role);
/* "public", "private", "dm". */
const char *chat_kind_name(int kind);
/* Carries out a committed ACT_INVITE, ACT_KICK, ACT_EVENT, ACT_NOTIFY or
 * ACT_ANSWER. */
void chat_mod_run(struct server *srv, struct action *a);
/* Request handlers (PROTOCOL.md v2). */
void chat_mod_create(struct session *s, json_t *req, json_t *ref);
void chat_mod_invite(struct session *s, json_t *req, json_t *ref);
void chat_mod_kick(struct session *s, json_t *req, json_t *ref);
void chat_mod_unban(struct session *s, json_t *req, json_t *ref);
void chat_mod_role(struct session *s, json_t *req, json_t *ref);
void chat_mod_topic(struct session *s, json_t *req, json_t *ref);
void chat_mod_notify(struct session *s, json_t *req, json_t *ref);

/* chat_message.c: messages. */

/* Writes a request's ref as the "ref" member of the object open in w. */
void chat_ref_write(struct jsonw *w, json_t *ref);
/* Carries out a committed ACT_SEND, ACT_CHANGE or ACT_REPLY. */
void chat_message_run(struct server *srv, struct action *a);
/* Request handlers (PROTOCOL.md): send, edit, delete, history. */
void chat_message_send(struct session *s, json_t *req, json_t *ref);
void chat_message_edit(struct session *s, json_t *req, json_t *ref);
void chat_message_delete(struct session *s, json_t *req, json_t *ref);
void chat_message_history(struct session *s, json_t *req, json_t *ref);
/* Queues the event (type) of a stored change seq of message id: edit,
 * delete, reaction. Replies internal if the message can't be read. */
void chat_message_changed(struct session *s, json_t *ref,
    struct hub_room *room, int64_t id, int64_t seq, const char *type);
/* message_cb keeping a copy (arg: struct message **, freed first). */
int chat_capture_message(void *arg, const struct message *m);

/* chat_json.c: the version 2 members of a live message object
 * (reply_to, mentions, mention_room, reactions), each omitted when
 * empty; chat_message.c's writer calls it. */
void chat_message_v2_members(struct jsonw *w, const struct message *m);

/* chat_mention.c: the mentions of a text, resolved. */

/* What chat_mentions_find allocates for the message it fills. */
struct chat_mentions {
	char *names;  /* m->mentions */
	int64_t *ids; /* m->mention_ids */
};
/* Finds the mentions of m->text among the members of room_id and sets
 * m->mentions, mention_room and mention_ids (owned by cm: free with
 * chat_mentions_free). 0 or -1 (database error). */
int chat_mentions_find(struct server *srv, int64_t room_id,
    struct message *m, struct chat_mentions *cm);
void chat_mentions_free(struct chat_mentions *cm);

/* chat_react.c: reactions. */

/* Request handler (PROTOCOL.md): react. */
void chat_react(struct session *s, json_t *req, json_t *ref);

/* chat_session.c: the session. */

/* The first message of an unauthenticated connection: auth. */
void chat_session_auth(struct session *s, json_t *req, json_t *ref);
/* Fails authentication: error unauthorized, close 1008. */
void chat_session_auth_fail(struct session *s, json_t *ref, const char *why);
/* Sends presence for u (online or offline) to the users sharing a room. */
void chat_session_presence(struct server *srv, struct hub_user *u,
    const char *status);
/* Closes the sessions of an online user whose account is gone
 * (hub_user_each callback, arg: the server). */
void chat_session_check_user(void *arg, struct hub_user *u);
/* Request handler (PROTOCOL.md): typing. */
void chat_session_typing(struct session *s, json_t *req, json_t *ref);

/* chat_message.c: the seq of the next change of room, in the open
 * transaction; -1 after replying. */
int64_t chat_next_seq(struct session *s, json_t *ref, struct hub_room *room);

/* chat_cluster.c: several nodes (issue 17). Each hook does the local
 * part, and with --redis tells the other nodes. */
struct chat_cluster;
struct redis_stats;
struct cluster_order_stats;
struct chat_cluster_stats {
	uint64_t received;      /* messages from other nodes */
	uint64_t bad_in;        /* undecodable messages */
	uint64_t bad_out;       /* messages that would not encode */
	uint64_t publish_errors; /* publishes refused or lost */
	uint64_t fills;         /* reads of a room back from the database */
	uint64_t fill_rows;     /* events those delivered */
	uint64_t fill_errors;
	uint64_t nodes_lost;    /* nodes gone silent */
	uint64_t outages;       /* Redis connection losses */
	uint64_t order_breaks;  /* own events delivered out of turn (bugs) */
	uint64_t gate_drops;    /* messages dropped: too many waited for the
	                           database (rooms read back instead) */
};
/* Starts the fan-out when --redis is set: 0 or -1 (printed). */
int chat_cluster_start(struct server *srv);
void chat_cluster_stop(struct server *srv);
/* Takes room's lock for the open transaction (PostgreSQL), once per
 * transaction, catching up with what other nodes stored before it. 0 or
 * -1. */
int64_t chat_cluster_lock_room(struct server *srv, struct hub_room *room);
/* A committed event of room (seq, after prev): delivered here in order
 * and published. */
void chat_cluster_event(struct server *srv, struct hub_room *room,
    int64_t prev, int64_t seq, struct frame *f, struct session *skip);
/* After each commit: the reads that waited for it. */
void chat_cluster_committed(struct server *srv);
/* f to room's connections (but user skip_user's, 0: none, and skip) on
 * every node. */
void chat_to_room(struct server *srv, struct hub_room *room, struct frame *f,
    int64_t skip_user, struct session *skip);
/* f to user_id's connections (but skip) on every node. */
void chat_to_user(struct server *srv, int64_t user_id, struct frame *f,
    struct session *skip);
/* Subscribes or unsubscribes user_id's connections on every node. */
void chat_subscribe_everywhere(struct server *srv, int64_t user_id,
    struct hub_room *room);
void chat_unsubscribe_everywhere(struct server *srv, int64_t user_id,
    struct hub_room *room);
/* A logout: that token's connections close on every node. */
void chat_cluster_logout(struct server *srv, const uint8_t hash[32]);
/* user_id's first connection here opened (1) or last closed (0). */
void chat_cluster_presence(struct server *srv, int64_t user_id, int online);
/* 1 if another node has a connection of user_id. */
int chat_cluster_online_elsewhere(struct server *srv, int64_t user_id);
/* The presence of other nodes' users sharing a room with s's user. */
void chat_cluster_snapshot(struct session *s);

#endif
