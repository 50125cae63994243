/* chatd/chat.c — the chat protocol over WebSocket (PROTOCOL.md): the
 * request dispatcher, the connection callbacks, replies, the group
 * commit and the session. Rooms are in chat_room.c, messages in
 * chat_message.c. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chatd/auth.h"
#include "chatd/chat.h"
#include "chatd/chat_int.h"
#include "chatd/conn.h"
#include "chatd/hub.h"
#include "chatd/jsonw.h"
#include "chatd/log.h"
#include "chatd/server.h"
#include "chatd/utf8.h"
#include "chatd/xmalloc.h"
#include "storage/storage.h"

#define CHAT_INDEX_DELAY_MS 200 /* search indexing lags commits by this */
#define CHAT_INDEX_CHUNK 500    /* messages indexed per loop pass */
#define CHAT_BATCH_MAX 1000     /* changes per group commit, at most */
#define CHAT_OUT_KEEP (256u * 1024) /* reply buffer kept between replies */

/* A request handler: validated fields are read from req. */
typedef void (*chat_handler)(struct session *s, json_t *req, json_t *ref);

/* Milliseconds now (shared clock with the server). */
int64_t
chat_now(void)
{
	return now_ms();
}

/* Sends obj (plus ref when not NULL) to one session; takes obj. */
void
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
struct frame *
chat_frame(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	struct frame *f = frame_new(text, strlen(text));

	free(text);
	json_decref(obj);
	return f;
}

/* An error reply (PROTOCOL.md Errors). */
void
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

/* The reply buffer, empty. */
struct jsonw *
chat_out(struct server *srv)
{
	struct jsonw *w = &srv->chat->out;

	jsonw_reset(w);
	return w;
}

/* Sends what the reply buffer holds to one session (none: discards it),
 * and lets a buffer that a big reply grew go. */
void
chat_out_send(struct session *s, struct jsonw *w)
{
	if (s != NULL)
		conn_ws_send_jsonw(s->conn, w);
	jsonw_reset(w);
	if (w->cap > CHAT_OUT_KEEP)
		jsonw_free(w);
}

/* Opens the group-commit transaction if needed; the commit runs once the
 * loop has handled everything that arrived in this pass. 0 or -1. */
int
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
struct action *
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

/* Carries out one committed action: in-memory state, replies, fan-out. */
static void
chat_action_run(struct server *srv, struct action *a)
{
	switch (a->type) {
	case ACT_SEND:
	case ACT_CHANGE:
	case ACT_REPLY:
		chat_message_run(srv, a);
		break;
	case ACT_JOIN:
	case ACT_LEAVE:
	case ACT_DM:
	case ACT_READ:
		chat_room_run(srv, a);
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
const char *
chat_str(json_t *req, const char *key)
{
	return json_string_value(json_object_get(req, key));
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

/* The requests of an authenticated session, by type. */
static const struct {
	const char *type;
	chat_handler fn;
} chat_handlers[] = {
	{"join", chat_room_join},
	{"leave", chat_room_leave},
	{"dm", chat_room_dm},
	{"send", chat_message_send},
	{"edit", chat_message_edit},
	{"delete", chat_message_delete},
	{"history", chat_message_history},
	{"read", chat_room_read},
	{"typing", chat_session_typing},
};

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
	hub_user_each(ch->hub, chat_session_check_user, srv);
}

/* One WebSocket message: auth first, then requests by their type. */
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
			chat_session_auth_fail(s, NULL,
			    "the first message must be auth");
			return 0;
		}
		chat_ref(req, &ref);
		chat_session_auth(s, req, ref);
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

/* A fresh WebSocket: its session, not yet authenticated. */
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
		chat_session_presence(srv, s->user, "offline");
	hub_user_detach(srv->chat->hub, s);
	free(s);
	c->app_data = NULL;
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

#define CHAT_RESYNC_MAX 1000 /* changes replayed before "truncated" */

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
		chat_session_presence(srv, s->user, "online");
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
	hub_broadcast(room, f, s->user, NULL);
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
