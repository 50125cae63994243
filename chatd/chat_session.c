/* chatd/chat_session.c — the session of a WebSocket: auth (a message
 * or a header), hello, resync, presence, typing, logout, and closing
 * the sessions of a deleted account. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/gate.h"
#include "chatd/hub.h"
#include "chatd/jsonw.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

#define CHAT_RESYNC_MAX 1000 /* changes replayed before "truncated" */
/* A replay that would leave more than this queued for the connection is
 * "truncated" instead: hello and its resync must fit under
 * CONN_OUTPUT_HIGH, and the client pages the rest in as it reads. 7 MiB:
 * one room's full replay of 1000 changes of 4000 ASCII characters
 * (~4.2 MB), as the contract promises, always fits. */
#define CHAT_RESYNC_BYTES (CONN_OUTPUT_HIGH - CONN_OUTPUT_HIGH / 8)

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
	    r.n != r.max || r.over ||
	    conn_output_len(s->conn) + jsonw_len(r.w) > CHAT_RESYNC_BYTES) {
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
void
chat_session_presence(struct server *srv, struct hub_user *u,
    const char *status)
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

static void chat_session_arm(struct session *s);

/* The session's token expired: close 4001, as for a logout. The timer
 * runs on the monotonic clock and the token's end is wall-clock time: a
 * timer early by a few ms waits for the rest, so that the token is
 * refused everywhere (HTTP too) once the socket is closed. */
static void
chat_session_expired(int fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (chat_now() < s->expires_at) {
		chat_session_arm(s);
		return;
	}
	conn_ws_close(s->conn, 4001, "token expired");
}

/* Arms s's timer for the rest of its token's life (at least 1 ms). */
static void
chat_session_arm(struct session *s)
{
	int64_t left = s->expires_at - chat_now();
	struct timeval tv;

	if (left < 1)
		left = 1;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000 * 1000);
	evtimer_add(s->expiry, &tv);
}

/*
 * Closes s with 4001 when its token expires: one libevent timer per
 * session (a heap: nothing scans the connections). 0, or -1 if the token
 * is gone already or on a database error.
 */
static int
chat_session_expiry(struct session *s, const uint8_t hash[32])
{
	struct server *srv = s->conn->srv;
	int64_t expires;

	if (session_expires(srv->db, hash, &expires) != 0)
		return -1;
	s->expires_at = expires;
	if (s->expiry == NULL)
		s->expiry = gate_event_new(srv->base, -1, 0,
		    chat_session_expired, s);
	chat_session_arm(s);
	return 0;
}

/* Signs a session in: hello, subscriptions, resync, presence. */
static void
chat_authenticate(struct session *s, const struct user *u,
    const uint8_t hash[32], json_t *since, json_t *ref)
{
	struct server *srv = s->conn->srv;
	struct chat *ch = srv->chat;
	struct hub_room **subs = NULL;
	struct jsonw *w;
	json_t *v;
	const char *key;
	size_t i, n = 0;
	int first;

	chat_flush(srv);
	/* hello, written straight into the reply buffer: a user may be in
	 * --max-rooms-per-user rooms. */
	w = chat_out(srv);
	jsonw_object_open(w);
	JSONW_KEY(w, "type");
	jsonw_string(w, "hello");
	JSONW_KEY(w, "user");
	jsonw_object_open(w);
	JSONW_KEY(w, "id");
	jsonw_int(w, u->id);
	JSONW_KEY(w, "username");
	jsonw_string(w, u->username);
	jsonw_object_close(w);
	JSONW_KEY(w, "epoch");
	jsonw_string(w, db_epoch(srv->db));
	JSONW_KEY(w, "rooms");
	if (chat_room_states_cached(srv, u->id, w, &subs, &n) != 0) {
		chat_out_send(NULL, w);
		chat_send_error(s, ref, "internal", "database error");
		conn_ws_close(s->conn, 1011, "database error");
		return;
	}
	if (chat_session_expiry(s, hash) != 0) {
		chat_out_send(NULL, w);
		free(subs);
		chat_session_auth_fail(s, ref, "invalid or expired token");
		return;
	}
	JSONW_KEY(w, "limits");
	jsonw_object_open(w);
	JSONW_KEY(w, "max_text_chars");
	jsonw_int(w, CHAT_MAX_TEXT);
	JSONW_KEY(w, "max_message_bytes");
	jsonw_int(w, WS_MAX_MESSAGE);
	jsonw_object_close(w);
	if (ref != NULL)
		chat_ref_write(w, ref);
	jsonw_object_close(w);
	memcpy(s->token_hash, hash, 32);
	s->conn->flags |= CONN_AUTHED;
	/* hello, the replay and the presence snapshot: one write. */
	conn_cork(s->conn, 1);
	first = hub_user_attach(ch->hub, s, u->id, u->username);
	/* The states carry each cached room's last_seq: subscribing from
	 * it, the live events follow hello without a gap. */
	for (i = 0; i < n; i++)
		hub_subscribe(s, subs[i], subs[i]->last_seq);
	free(subs);
	chat_out_send(s, w);
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
	chat_cluster_snapshot(s);
	conn_cork(s->conn, 0);
	if (first) {
		/* Online already for everyone if another node has them. */
		if (!chat_cluster_online_elsewhere(srv, s->user->id))
			chat_session_presence(srv, s->user, "online");
		chat_cluster_presence(srv, s->user->id, 1);
	}
}

/* A WebSocket that authenticated with a header at the upgrade. */
void
chat_ws_authenticated(struct conn *c, const struct user *u,
    const uint8_t hash[32])
{
	chat_authenticate(c->app_data, u, hash, NULL, NULL);
}

/* Fails authentication: error unauthorized, close 1008. */
void
chat_session_auth_fail(struct session *s, json_t *ref, const char *why)
{
	s->conn->srv->m.auth_failures++;
	log_info("%s: %s: %s", __func__, s->conn->client, why);
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
void
chat_session_auth(struct session *s, json_t *req, json_t *ref)
{
	struct server *srv = s->conn->srv;
	const char *type = chat_str(req, "type"), *token = chat_str(req, "token");
	json_t *since = json_object_get(req, "since");
	uint8_t hash[32];
	struct user u;
	int rc;

	if (type == NULL || strcmp(type, "auth") != 0) {
		chat_session_auth_fail(s, ref,
		    "the first message must be auth");
		return;
	}
	if (json_is_null(since))
		since = NULL;
	if (token == NULL || !chat_since_ok(since)) {
		chat_session_auth_fail(s, ref,
		    "auth needs a token and a valid since");
		return;
	}
	chat_flush(srv);
	auth_token_hash(token, strlen(token), hash);
	rc = session_lookup(srv->db, hash, chat_now(), &u);
	if (rc < 0) {
		/* Not the token's fault (a lock another process holds, say):
		 * the client must not drop it. */
		chat_send_error(s, ref, "internal", "database error");
		conn_ws_close(s->conn, 1011, "database error");
		return;
	}
	if (rc != 0) {
		chat_session_auth_fail(s, ref, "invalid or expired token");
		return;
	}
	chat_authenticate(s, &u, hash, since, ref);
}

/* Logout: the token's WebSockets close with 4001. */
void
chat_logout(struct server *srv, int64_t user_id, const uint8_t hash[32])
{
	struct hub_user *u = hub_user_find(srv->chat->hub, user_id);
	struct session *s, *next;

	chat_cluster_logout(srv, hash);
	if (u == NULL)
		return;
	for (s = LIST_FIRST(&u->sessions); s != NULL; s = next) {
		next = LIST_NEXT(s, user_link);
		if (memcmp(s->token_hash, hash, 32) == 0)
			conn_ws_close(s->conn, 4001, "logged out");
	}
}

/* typing: tells the room's other users, nothing stored. */
void
chat_session_typing(struct session *s, json_t *req, json_t *ref)
{
	struct hub_room *room;
	struct frame *f;

	if ((room = chat_room_member(s, req, ref)) == NULL)
		return;
	f = chat_frame(json_pack("{s:s,s:s,s:s}", "type", "typing", "room",
	    room->name, "user", s->user->username));
	chat_to_room(s->conn->srv, room, f, s->user->id, NULL);
	frame_unref(f);
}

/* Closes the sessions of an online user whose account is gone. */
void
chat_session_check_user(void *arg, struct hub_user *u)
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

int
chat_user_online(struct server *srv, int64_t user_id)
{
	return srv->chat != NULL &&
	    hub_user_find(srv->chat->hub, user_id) != NULL;
}
